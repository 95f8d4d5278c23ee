"""The page's estimates: the labels' precision and recall from exploration answers, and the stopping hint."""

from __future__ import annotations

import json
from pathlib import Path

from bootstrap.config import HandoffPolicy, SessionConfig
from bootstrap.estimates import label_quality
from bootstrap.session import Session
from bootstrap.store import Answer

ROOT = Path(__file__).resolve().parents[1]


def answer(i: int, text: str, verdict: str, probability: float, exploration: bool = True) -> Answer:
    return Answer(id=i, task_hash=i, input_hash=i, start=0, end=len(text), label="DISEASE", answer=verdict,
                  annotator="a", created=float(i), exploration=exploration, probability=probability, votes=None,
                  span_text=text)


def test_the_label_is_the_one_the_training_set_gave_just_before_the_answer():
    answers = [
        answer(1, "gout", "reject", 0.9, exploration=False),  # ranked: not scored, but decides "gout"
        answer(2, "Gout", "reject", 0.9),  # carried reject: labelled not an entity (though p = 0.9), rejected
        answer(3, "cancer", "accept", 0.8),  # no earlier decision: the aggregate's p > 0.5, accepted
        answer(4, "asthma", "accept", 0.2),  # p < 0.5: a missed entity
        answer(5, "flu", "ignore", 0.9),  # ignored: no evidence either way
    ]
    quality = label_quality(answers)
    assert (quality.n, quality.labelled, quality.accepted) == (3, 1, 2)
    assert quality.precision[0] == round(2 / 3, 4)  # 1 of 1 labelled entities right, Beta(1, 1) mean
    assert quality.recall[0] == 0.5  # 1 of 2 accepted ones were labelled: (1 + 1) / (2 + 2)
    assert quality.f[1] < quality.f[0] < quality.f[2]


def test_only_the_most_recent_exploration_answers_count():
    old = [answer(i, f"s{i}", "reject", 0.9) for i in range(50)]  # labels that were wrong then
    new = [answer(100 + i, f"t{i}", "accept", 0.9) for i in range(10)]  # right now
    assert label_quality(old + new, window=10).precision[1] > 0.7
    assert label_quality(old + new, window=60).precision[0] < 0.3


def test_the_stopping_hint_falls_as_decisions_settle_the_frequent_strings(shared_data, tmp_path):
    lines = (shared_data / "ncbi-disease/train.jsonl").read_text().splitlines()[:400]
    texts = tmp_path / "texts.jsonl"
    texts.write_text("\n".join(lines) + "\n")
    gold = {}
    for line in lines:
        record = json.loads(line)
        gold[record["text"]] = {(s["start"], s["end"], s["label"]) for s in record["spans"]}
    session = Session.from_files(
        [ROOT / "examples/diseases/patterns.jsonl"], texts, db=tmp_path / "d.db", dataset="d",
        config=SessionConfig(handoff=HandoffPolicy(mode="never"), background_refit=False, exploration=0.2))
    try:
        hints = [session.progress()["estimates"]["hint"]]
        for round_ in range(2):
            for _ in range(60):
                task = session.next_question("a")
                span = task["spans"][0]
                verdict = "accept" if (span["start"], span["end"], task["label"]) in gold[task["text"]] else "reject"
                session.answer("a", task["task_hash"], verdict)
            hints.append(session.progress()["estimates"]["hint"])
        changes = [hint["expected_changes"] for hint in hints]
        assert changes[0] > changes[1] > changes[2] > 0, changes
        quality = session.progress()["estimates"]["quality"]
        assert quality["n"] >= 12  # about 24 exploration answers in 120
        assert 0 < quality["precision"][1] < quality["precision"][0] < quality["precision"][2] < 1
    finally:
        session.close()

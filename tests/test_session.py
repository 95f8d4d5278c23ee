"""The annotation loop on the bundled example: answers, resume, undo, change, two annotators, refit."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.gold import gold_answer, load_gold
from bootstrap.session import AlreadyAnswered, Session, SessionConfig, UnknownAnswer, UnknownTask
from bootstrap.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diseases"


def open_session(db: Path, **config) -> Session:
    return Session.from_files(
        [EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=db, dataset="diseases",
        config=SessionConfig(background_refit=False, **config),
    )


@pytest.fixture
def session(tmp_path):
    session = open_session(tmp_path / "bootstrap.db")
    yield session
    session.close()


def test_a_question_is_a_task_with_its_span_votes_and_text(session):
    task = session.next_question("alice")
    [span] = task["spans"]
    assert task["text"][span["start"]:span["end"]] and span["label"] == task["label"] == "DISEASE"
    assert 0 <= task["probability"] <= 1 and task["votes"]
    assert all({"lf", "kind", "vote", "precision"} <= set(vote) for vote in task["votes"])
    # asking again before answering gives the same question
    assert session.next_question("alice")["task_hash"] == task["task_hash"]


def test_answers_are_stored_before_the_next_question(session, tmp_path):
    task = session.next_question("alice")
    result = session.answer("alice", task["task_hash"], "accept")
    with Store(tmp_path / "bootstrap.db") as other:  # a second connection sees it at once
        [stored] = list(other.answers("diseases"))
    assert stored.id == result["answer_id"] and stored.answer == "accept" and stored.task_hash == task["task_hash"]
    assert stored.votes == task["votes"] and stored.probability == pytest.approx(task["probability"])
    assert result["progress"]["answers"] == 1 and result["progress"]["accepts_per_label"]["DISEASE"] == 1


def test_bad_answers_are_refused_and_change_nothing(session):
    task = session.next_question("alice")
    with pytest.raises(UnknownTask):
        session.answer("alice", 12345, "accept")
    with pytest.raises(ValueError):
        session.answer("alice", task["task_hash"], "maybe")
    session.answer("alice", task["task_hash"], "reject")
    with pytest.raises(AlreadyAnswered):
        session.answer("alice", task["task_hash"], "accept")
    with pytest.raises(UnknownAnswer):
        session.change("bob", 1, "accept")
    assert session.progress()["answers"] == 1


def test_resume_never_asks_an_answered_question_again(tmp_path):
    db = tmp_path / "bootstrap.db"
    first = open_session(db)
    answered = []
    for i in range(12):
        task = first.next_question("alice")
        first.answer("alice", task["task_hash"], "accept" if i % 3 else "reject")
        answered.append(task["task_hash"])
    probabilities = first.aggregate.probabilities().copy()
    first.close()

    second = open_session(db)
    assert second.progress()["answers"] == 12
    assert second.ranker.remaining == second.table.n_questions - 12
    # the aggregate learnt the stored answers again (replay, then one refit with their class balance)
    assert not (second.aggregate.probabilities() == probabilities).all() or second.aggregate.method == "weighted vote"
    asked = set()
    while (task := second.next_question("alice")) is not None:
        asked.add(task["task_hash"])
        second.answer("alice", task["task_hash"], "ignore")
    assert not asked & set(answered)
    assert len(asked) == second.table.n_questions - 12
    second.close()


def test_undo_reopens_the_question_and_restores_probabilities(session):
    before = session.aggregate.probabilities().copy()
    task = session.next_question("alice")
    session.answer("alice", task["task_hash"], "reject")
    session.next_question("alice")
    undone = session.undo("alice")
    assert undone["task_hash"] == task["task_hash"]
    assert session.next_question("alice")["task_hash"] == task["task_hash"]  # back on screen
    assert session.progress()["answers"] == 0
    assert (session.aggregate.probabilities() == before).all()
    assert session.undo("bob") is None


def test_change_an_earlier_answer(session):
    first = session.next_question("alice")
    answer_id = session.answer("alice", first["task_hash"], "accept")["answer_id"]
    second = session.next_question("alice")
    session.answer("alice", second["task_hash"], "accept")
    session.change("alice", answer_id, "reject")
    recent = session.recent("alice")
    assert [(r["task_hash"], r["answer"]) for r in recent] == [(second["task_hash"], "accept"), (first["task_hash"], "reject")]
    assert recent[0]["text"] and recent[0]["span_text"] in recent[0]["text"]
    progress = session.progress()
    assert progress["by_answer"] == {"accept": 1, "reject": 1, "ignore": 0}


def test_two_annotators_never_share_an_open_question_and_both_answers_are_kept(session, tmp_path):
    alice, bob = session.next_question("alice"), session.next_question("bob")
    assert alice["task_hash"] != bob["task_hash"]
    session.answer("alice", alice["task_hash"], "accept")
    # bob may still answer the task alice answered (e.g. from a stale page): both answers stay
    session.answer("bob", alice["task_hash"], "reject")
    with Store(tmp_path / "bootstrap.db") as store:
        answers = [(a.annotator, a.answer) for a in store.answers("diseases") if a.task_hash == alice["task_hash"]]
    assert sorted(answers) == [("alice", "accept"), ("bob", "reject")]
    # bob's undo leaves alice's answer standing: the question stays closed
    session.undo("bob")
    assert not session.ranker.open[session._index_of[alice["task_hash"]]]


def test_two_processes_on_one_database_do_not_get_the_same_question(tmp_path):
    """Two sessions (as two server processes would be) share leases through the database."""
    db = tmp_path / "bootstrap.db"
    one, two = open_session(db), open_session(db)
    seen_one = {one.next_question("alice")["task_hash"]}
    seen_two = {two.next_question("bob")["task_hash"]}
    assert not seen_one & seen_two
    one.close()
    two.close()


def test_gold_answers_sharpen_the_ranking_and_refit_runs(tmp_path):
    session = open_session(tmp_path / "bootstrap.db", refit_every=25, exploration=0.2)
    gold = load_gold(EXAMPLE / "gold.jsonl")
    for _ in range(60):
        task = session.next_question("alice")
        span = task["spans"][0]
        answer = gold_answer(gold, task["input_hash"], span["start"], span["end"], task["label"])
        session.answer("alice", task["task_hash"], answer)
    stats = {s["name"]: s for s in session.lf_stats()}
    assert sum(s["from_decisions"]["n"] for s in stats.values()) >= 60
    assert session.aggregate.decisions_since_fit == 10  # refit after 25 and 50 decisions
    session.close()

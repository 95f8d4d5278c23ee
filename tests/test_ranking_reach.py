"""Reach: a question is worth the open questions its answer settles; decided strings leave the queue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bootstrap.aggregate import Aggregate
from bootstrap.corpus import Record
from bootstrap.estimates import describe
from bootstrap.hashing import input_hash
from bootstrap.labelmatrix import MODEL_COLUMN, ModelSpan, with_model
from bootstrap.ranking import SETTLED, Ranker, beyond_rules, disputed
from bootstrap.table import build_table
from bootstrap.views import votes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny(tmp_path):
    """"gout" in 5 texts, "cancer" in 3, "asthma" in 1: one rule, so every question is as uncertain."""
    patterns = tmp_path / "p.jsonl"
    patterns.write_text(json.dumps({"label": "DISEASE", "id": "words",
                                    "pattern": [{"LOWER": {"IN": ["gout", "cancer", "asthma"]}}]}) + "\n")
    texts = [f"Case {i}: gout." for i in range(5)] + [f"Case {i}: cancer." for i in range(3)] + ["Case 9: asthma."]
    table = build_table([patterns], [Record(t, input_hash(t), f"t:{i}") for i, t in enumerate(texts)])
    return table


def strings(table, indices) -> list[str]:
    return [table.text[int(table.question_row[i])] for i in indices]


def test_reach_counts_the_open_questions_of_a_string(tiny):
    ranker = Ranker(Aggregate(tiny), exploration=0.0)
    reach = dict(zip(strings(tiny, range(tiny.n_questions)), ranker.reach()))
    assert reach == {"gout": 5, "cancer": 3, "asthma": 1}
    assert strings(tiny, [ranker.next().index]) == ["gout"]  # the most frequent string first


def test_the_occurrence_asked_of_a_new_string_is_a_fair_draw(tmp_path):
    """The first answer on a string is carried to all its occurrences, so the one asked must be
    a fair sample: not always the most uncertain one (here the capitalised "Gout" a negative
    rule contradicts), which is the least typical."""
    patterns = tmp_path / "p.jsonl"
    patterns.write_text("\n".join(json.dumps(line) for line in (
        {"label": "DISEASE", "id": "words", "pattern": [{"LOWER": {"IN": ["gout", "cancer"]}}]},
        {"label": "DISEASE", "id": "not-title", "negative": True, "pattern": [{"TEXT": "Gout"}]})) + "\n")
    texts = ["Gout, said case 0."] + [f"Case {i}: gout." for i in range(1, 6)] + [f"Case {i}: cancer." for i in range(3)]
    table = build_table([patterns], [Record(t, input_hash(t), f"t:{i}") for i, t in enumerate(texts)])
    gout = [i for i in range(table.n_questions) if table.text[int(table.question_row[i])].lower() == "gout"]
    contradicted = next(i for i in gout if table.text[int(table.question_row[i])] == "Gout")
    scores = Ranker(Aggregate(table), exploration=0.0).scores()
    assert len({float(scores[i]) for i in gout}) == 1  # every occurrence of the new string ties
    asked = [Ranker(Aggregate(table), exploration=0.0, seed=seed).next().index for seed in range(30)]
    assert set(asked) <= set(gout) and len(set(asked)) >= 4, asked  # the string first, a different occurrence by seed
    assert asked.count(contradicted) < 15


def test_a_decided_strings_other_occurrences_leave_the_queue(tiny):
    aggregate = Aggregate(tiny)
    ranker = Ranker(aggregate, exploration=0.0)
    asked = []
    while (choice := ranker.next()) is not None:
        asked.append(tiny.text[choice.row])
        aggregate.observe(choice.row, tiny.class_of("DISEASE"), "reject")
        ranker.close(choice.index)
    # one question per string first; the settled occurrences come last, still reachable
    assert asked[:3] == ["gout", "cancer", "asthma"]
    assert sorted(asked[3:]) == ["cancer"] * 2 + ["gout"] * 4


def test_a_settled_occurrence_the_model_sees_otherwise_is_asked_again(tiny):
    aggregate = Aggregate(tiny)
    gout = [i for i in range(tiny.n_questions) if strings(tiny, [i]) == ["gout"]]
    row = int(tiny.question_row[gout[0]])
    aggregate.observe(row, tiny.class_of("DISEASE"), "reject")
    # a model that calls one other "gout" a disease, and the rest not
    other = int(tiny.question_row[gout[1]])
    spans = [ModelSpan(int(tiny.input_hash[other]), int(tiny.start[other]), int(tiny.end[other]),
                       int(tiny.token_start[other]), int(tiny.token_end[other]), "gout", "DISEASE", 0.9)]
    combined = with_model(tiny, spans, set(tiny.input_hash.tolist()))
    model_aggregate = Aggregate(combined)
    model_aggregate.observe(row, combined.class_of("DISEASE"), "reject")
    ranker = Ranker(model_aggregate, exploration=0.0)
    ranker.close(next(i for i in range(combined.n_questions) if int(combined.question_row[i]) == row))
    reach = ranker.reach()
    by_row = {int(combined.question_row[i]): reach[i] for i in range(combined.n_questions)}
    assert by_row[other] == 1.0  # the model disagrees with the decision there: worth asking
    rest = [r for r in (int(tiny.question_row[i]) for i in gout[2:])]
    assert all(by_row[r] == SETTLED for r in rest)


def test_a_disputed_occurrence_is_one_of_the_models_questions(tiny):
    """An occurrence of a decided string that the model sees otherwise is asked within the
    model's share: never before the rules' questions with no share (and still reachable,
    last), first when the share is everything."""
    gout = [i for i in range(tiny.n_questions) if strings(tiny, [i]) == ["gout"]]
    row, other = (int(tiny.question_row[i]) for i in gout[:2])
    spans = [ModelSpan(int(tiny.input_hash[other]), int(tiny.start[other]), int(tiny.end[other]),
                       int(tiny.token_start[other]), int(tiny.token_end[other]), "gout", "DISEASE", 0.9)]
    combined = with_model(tiny, spans, set(tiny.input_hash.tolist()))

    def order(model_share: float) -> list[int]:
        aggregate = Aggregate(combined)
        ranker = Ranker(aggregate, exploration=0.0, model_share=model_share)
        first = next(i for i in range(combined.n_questions) if int(combined.question_row[i]) == row)
        aggregate.observe(row, combined.class_of("DISEASE"), "reject")
        ranker.close(first)
        assert disputed(aggregate, ranker._group).sum() == 1
        rows = []
        while (choice := ranker.next()) is not None:
            rows.append(choice.row)
            ranker.close(choice.index)
        return rows

    assert order(0.0)[-1] == other and len(order(0.0)) == tiny.n_questions - 1
    assert order(1.0)[0] == other


def test_the_exploration_share_holds_over_1000_questions(shared_data):
    texts = [json.loads(line)["text"] for line in (shared_data / "ncbi-disease/train.jsonl").read_text().splitlines()[:200]]
    table = build_table([ROOT / "examples/diseases/patterns.jsonl"], [Record(t, input_hash(t), "t") for t in texts])
    assert table.n_questions > 1000
    ranker = Ranker(Aggregate(table), exploration=0.1, seed=3)
    flags = []
    for _ in range(1000):
        choice = ranker.next()
        flags.append(choice.exploration)
        ranker.close(choice.index)
    share = float(np.mean(flags))
    assert 0.075 < share < 0.125, share  # 10%, within 2.6 binomial standard deviations


def test_a_string_whose_answers_disagree_is_worth_one_question_an_occurrence(tiny):
    """Disagreeing answers carry nowhere: asking "gout" again settles that one question only, so
    the never-answered "cancer" (3 open) comes first, not the 3 open "gout"s of a mixed string."""
    aggregate = Aggregate(tiny)
    ranker = Ranker(aggregate, exploration=0.0)
    gout = [i for i in range(tiny.n_questions) if strings(tiny, [i]) == ["gout"]]
    disease = tiny.class_of("DISEASE")
    for index, answer in zip(gout[:2], ("accept", "reject")):
        aggregate.observe(int(tiny.question_row[index]), disease, answer)
        ranker.close(index)
    reach = ranker.reach()
    assert [reach[i] for i in gout[2:]] == [1.0, 1.0, 1.0]
    assert strings(tiny, [ranker.next().index]) == ["cancer"]


def test_spans_only_the_model_proposed_get_their_share_of_ranked_questions(tiny):
    """Model-only spans, however high they score, get ``model_share`` of the ranked questions:
    never all of them (they took half the questions on NCBI-disease), never none."""
    model_texts = [f"Case {i}: flu." for i in range(40)]
    records = [Record(t, input_hash(t), f"m:{i}") for i, t in enumerate(model_texts)]
    spans = [ModelSpan(r.input_hash, 8, 11, 2, 3, "flu", "DISEASE", 0.5) for r in records]  # as unsure as can be
    combined = with_model(tiny, spans, {r.input_hash for r in records} | set(tiny.input_hash.tolist()))
    beyond = beyond_rules(combined)
    assert beyond.sum() == 40 and not beyond[[int(r) < tiny.n_rows for r in combined.question_row]].any()
    aggregate = Aggregate(combined)
    ranker = Ranker(aggregate, exploration=0.0, model_share=0.25, seed=1)
    picks = []
    for _ in range(40):
        choice = ranker.next()
        picks.append(bool(beyond[choice.index]))
        aggregate.observe(choice.row, combined.class_of("DISEASE"), "reject")
        ranker.close(choice.index)
    rule_questions = tiny.n_questions
    # the rules' 9 questions all asked (their side is drawn 75% of the time), the rest model-only
    assert sum(not pick for pick in picks) == rule_questions
    first_twelve = picks[:12]
    assert 1 <= sum(first_twelve) <= 6, first_twelve  # about a quarter while both sides have questions
    unbounded = Ranker(Aggregate(combined), exploration=0.0, model_share=1.0)
    assert beyond[unbounded.next().index]  # ranked freely, the 40 unsure "flu" would come first
    rules_only = Ranker(Aggregate(combined), exploration=0.0, model_share=0.0)
    for _ in range(rule_questions):
        choice = rules_only.next()
        assert not beyond[choice.index]
        rules_only.close(choice.index)


def test_the_page_says_how_often_the_models_spans_and_the_rules_questions_were_accepted(tiny):
    model_texts = [f"Case {i}: flu." for i in range(40)]
    records = [Record(t, input_hash(t), f"m:{i}") for i, t in enumerate(model_texts)]
    spans = [ModelSpan(r.input_hash, 8, 11, 2, 3, "flu", "DISEASE", 0.5) for r in records]
    combined = with_model(tiny, spans, {r.input_hash for r in records} | set(tiny.input_hash.tolist()))
    beyond = beyond_rules(combined)
    disease = combined.class_of("DISEASE")
    model_rows = [int(combined.question_row[i]) for i in np.flatnonzero(beyond)]
    rule_rows = [int(combined.question_row[i]) for i in np.flatnonzero(~beyond)]
    aggregate = Aggregate(combined)
    answers = [*zip(model_rows, ["reject"] * 29 + ["accept"]), *zip(rule_rows, ["accept"] * 6 + ["reject"] * 2 + ["ignore"])]
    for row, answer in answers:
        aggregate.observe(row, disease, answer)
    aggregate.forget(model_rows[0], disease)  # an undone answer counts no more
    ranker = Ranker(aggregate, exploration=0.0, model_share=0.2)
    assert ranker.model_questions() == {"share": 0.2, "model_accepted": 1, "model_answered": 29,
                                        "rules_accepted": 6, "rules_answered": 8}  # (an ignore is neither)
    hint = {"next": 100, "expected_changes": 3.0, "candidates": 49, "share": 0.06, "worth_asking": True}
    line = describe({"quality": {"n": 0}, "hint": hint, "model_questions": ranker.model_questions()})[-1]
    assert line == ("The model's own spans get 20% of the ranked questions: theirs 3% of 29 accepted, "
                    "the rules' 75% of 8 accepted")
    assert Ranker(Aggregate(tiny)).model_questions() is None  # no model in the loop: nothing to say
    assert len(describe({"quality": {"n": 0}, "hint": hint, "model_questions": None})) == 2


def test_the_exploration_share_holds_when_a_new_table_replaces_the_ranker(shared_data, tmp_path):
    """A model's table replaces the ranker (``Session._install``); the exploration draws must go
    on, not restart from the seed each time (they did: 17 exploration questions of 400 on one run)."""
    from bootstrap.config import HandoffPolicy, SessionConfig
    from bootstrap.session import Session

    lines = (shared_data / "ncbi-disease/train.jsonl").read_text().splitlines()[:400]
    texts = tmp_path / "texts.jsonl"
    texts.write_text("\n".join(lines) + "\n")
    session = Session.from_files([ROOT / "examples/diseases/patterns.jsonl"], texts, db=tmp_path / "d.db", dataset="d",
                                 config=SessionConfig(handoff=HandoffPolicy(mode="never"), background_refit=False, seed=1))
    try:
        draws = session.ranker.rng
        flags = []
        for i in range(600):
            if i % 20 == 0:  # as often as a new table could come: the ranker is rebuilt, the draws go on
                session._install(session.table, session.aggregate)
                assert session.ranker.rng is draws
            task = session.next_question("a")
            flags.append(task["exploration"])
            session.answer("a", task["task_hash"], "reject")
        share = float(np.mean(flags))
        assert 0.07 < share < 0.13, share  # 10% within 3 binomial standard deviations
        blocks = {tuple(flags[i:i + 20]) for i in range(0, 600, 20)}
        assert len(blocks) > 5  # not the same 20 draws over and over
    finally:
        session.close()


def test_a_model_counts_on_its_own_spans_not_on_the_rules_candidates(tiny):
    """A model trained on the rules' labels repeats them on their candidates: its vote and belief
    there would count the rules twice. So the aggregate and the ranking see the rules' candidates
    as without it, while its own proposals carry its vote and its probability."""
    model_texts = ["Case 20: flu.", "Case 21: flu."]
    records = [Record(t, input_hash(t), f"m:{i}") for i, t in enumerate(model_texts)]
    gout = next(i for i in range(tiny.n_questions) if strings(tiny, [i]) == ["gout"])
    row = int(tiny.question_row[gout])
    spans = [ModelSpan(int(tiny.input_hash[row]), int(tiny.start[row]), int(tiny.end[row]),
                       int(tiny.token_start[row]), int(tiny.token_end[row]), "gout", "DISEASE", 0.99)]
    spans += [ModelSpan(r.input_hash, 9, 12, 2, 3, "flu", "DISEASE", 0.9) for r in records]
    combined = with_model(tiny, spans, {r.input_hash for r in records} | set(tiny.input_hash.tolist()))
    disease = combined.class_of("DISEASE")
    assert combined.L[row, -1] == disease  # the model's view is kept (the page shows it) ...
    without, with_it = Aggregate(tiny), Aggregate(combined)
    np.testing.assert_allclose(with_it.probabilities()[: tiny.n_rows], without.probabilities())  # ... but not counted
    own = np.flatnonzero(beyond_rules(combined))
    assert len(own) == 2
    own_rows = combined.question_row[own]
    assert (with_it.probabilities()[own_rows, disease] > 0.5).all()  # its vote is all there is on its own spans
    ranker, rules_only = Ranker(with_it, exploration=0.0), Ranker(without, exploration=0.0)
    np.testing.assert_allclose(ranker.belief()[: tiny.n_questions], rules_only.belief())
    np.testing.assert_allclose(ranker.belief()[own], (with_it.probabilities()[own_rows, disease] + 0.9) / 2)
    # the page shows the model's vote on a rule's candidate, marked as not counted
    shown = {vote["lf"]: vote for vote in votes(combined, with_it, row)}
    assert shown[MODEL_COLUMN]["vote"] == "DISEASE" and not shown[MODEL_COLUMN]["counted"]
    assert all(vote["counted"] for name, vote in shown.items() if name != MODEL_COLUMN)
    assert votes(combined, with_it, int(own_rows[0]))[0]["counted"]
    # and a decision on a rule candidate judges the rules alone
    with_it.observe(row, disease, "reject")
    assert with_it.wrong[-1] == 0 and with_it.wrong[:-1].sum() > 0

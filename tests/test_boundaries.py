"""Boundary questions: an accepted span settles the rivals it crosses or nests; a reject settles only itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bootstrap.aggregate import Aggregate
from bootstrap.boundaries import Rivals, rival_pairs
from bootstrap.corpus import Record
from bootstrap.hashing import input_hash
from bootstrap.labelmatrix import ModelSpan, with_model
from bootstrap.ranking import SETTLED, Ranker
from bootstrap.table import build_table

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "Duchenne muscular dystrophy was seen.",  # three nested spans: the long one, "muscular dystrophy", "dystrophy"
    "Duchenne muscular dystrophy was treated.",  # another text: its spans are not rivals of the first's
    "A dystrophy alone.",  # "dystrophy" standing alone: no rival
]


@pytest.fixture
def nested(tmp_path):
    patterns = tmp_path / "p.jsonl"
    lines = [
        {"label": "DISEASE", "id": "long", "pattern": "Duchenne muscular dystrophy"},
        {"label": "DISEASE", "id": "mid", "pattern": "muscular dystrophy"},
        {"label": "DISEASE", "id": "short", "pattern": [{"LOWER": "dystrophy"}]},
    ]
    patterns.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return build_table([patterns], [Record(t, input_hash(t), f"t:{i}") for i, t in enumerate(TEXTS)])


def row_of(table, text_index: int, span: str) -> int:
    h = input_hash(TEXTS[text_index])
    return next(r for r in range(table.n_rows) if table.input_hash[r] == h and table.text[r] == span)


def test_rivals_are_the_overlapping_spans_of_one_text_both_ways(nested):
    first, second = rival_pairs(nested)
    pairs = {(nested.text[a], nested.text[b], int(nested.input_hash[a] == nested.input_hash[b])) for a, b in zip(first, second)}
    names = ["Duchenne muscular dystrophy", "muscular dystrophy", "dystrophy"]
    assert pairs == {(a, b, 1) for a in names for b in names if a != b}  # the lone "dystrophy" has none
    # each text's rows are each other's rivals, never another text's: 2 texts × 3 spans × 2 rivals
    assert len(first) == 12
    rivals = Rivals(nested)
    long = row_of(nested, 0, "Duchenne muscular dystrophy")
    assert sorted(nested.text[r] for r in rivals.of(long)) == ["dystrophy", "muscular dystrophy"]
    assert all(nested.input_hash[r] == nested.input_hash[long] for r in rivals.of(long))
    assert len(rivals.of(row_of(nested, 2, "dystrophy"))) == 0


def test_rival_pairs_match_a_pairwise_comparison_on_real_data(shared_data):
    lines = (shared_data / "ncbi-disease/train.jsonl").read_text().splitlines()[:300]
    table = build_table([ROOT / "examples/diseases/patterns.jsonl"],
                        [Record(t, input_hash(t), "t") for t in (json.loads(line)["text"] for line in lines)])
    expected = set()
    for a in range(table.n_rows):
        same = np.flatnonzero(table.input_hash == table.input_hash[a])
        for b in same[(table.start[same] < table.end[a]) & (table.end[same] > table.start[a])]:
            if (table.start[a], table.end[a]) != (table.start[b], table.end[b]):
                expected.add((a, int(b)))
    first, second = rival_pairs(table)
    assert len(expected) > 20  # the example rules do nest on NCBI-disease
    assert set(zip(first.tolist(), second.tolist())) == expected and len(first) == len(expected)


def test_an_accept_rules_out_its_rivals_and_an_undo_brings_them_back(nested):
    aggregate = Aggregate(nested)
    disease = nested.class_of("DISEASE")
    long, mid, short = (row_of(nested, 0, s) for s in ("Duchenne muscular dystrophy", "muscular dystrophy", "dystrophy"))
    other_text_mid, alone = row_of(nested, 1, "muscular dystrophy"), row_of(nested, 2, "dystrophy")
    before = aggregate.probabilities()[:, disease].copy()
    assert before[mid] > 0.5 and before[short] > 0.5  # each proposed by a rule
    aggregate.observe(long, disease, "accept")
    p = aggregate.probabilities()[:, disease]
    assert p[long] == 1.0 and p[mid] == 0.0 and p[short] == 0.0
    assert p[other_text_mid] > 0  # the same text elsewhere is decided on its own
    assert p[alone] > 0  # and the lone "dystrophy" is no rival
    assert aggregate.boundary_settled()[[mid, short]].all() and not aggregate.boundary_settled()[long]
    aggregate.forget(long, disease)
    np.testing.assert_allclose(aggregate.probabilities()[:, disease], before)
    assert not aggregate.boundary_settled().any()


def test_a_reject_settles_only_its_own_span(nested):
    aggregate = Aggregate(nested)
    disease = nested.class_of("DISEASE")
    long, mid = row_of(nested, 0, "Duchenne muscular dystrophy"), row_of(nested, 0, "muscular dystrophy")
    before = aggregate.probabilities()[mid, disease]
    aggregate.observe(long, disease, "reject")
    assert aggregate.probabilities()[long, disease] == 0.0
    assert aggregate.probabilities()[mid, disease] == pytest.approx(before, abs=0.2) and not aggregate.boundary_settled().any()


def test_a_persons_own_accept_outranks_a_rivals(nested):
    """Both of two nested spans accepted (the person says so): each keeps its own answer."""
    aggregate = Aggregate(nested)
    disease = nested.class_of("DISEASE")
    long, mid = row_of(nested, 0, "Duchenne muscular dystrophy"), row_of(nested, 0, "muscular dystrophy")
    aggregate.observe(long, disease, "accept")
    aggregate.observe(mid, disease, "accept")
    p = aggregate.probabilities()[:, disease]
    assert p[long] == 1.0 and p[mid] == 1.0


def test_a_boundary_questions_reach_counts_the_rivals_a_yes_would_settle(nested):
    aggregate = Aggregate(nested)
    ranker = Ranker(aggregate, exploration=0.0)
    disease = nested.class_of("DISEASE")
    index = {int(nested.question_row[i]): i for i in range(nested.n_questions)}
    long, mid = row_of(nested, 0, "Duchenne muscular dystrophy"), row_of(nested, 0, "muscular dystrophy")
    alone = row_of(nested, 2, "dystrophy")
    belief, reach = ranker.belief(), ranker.reach()
    # "Duchenne muscular dystrophy" occurs in 2 texts; a yes also settles its 2 open rivals
    assert reach[index[long]] == pytest.approx(2 + 2 * belief[index[long]])
    assert reach[index[alone]] == 1.0  # the lone "dystrophy" is a group of its own, with no rival
    aggregate.observe(long, disease, "accept")
    ranker.close(index[long])
    reach = ranker.reach()
    assert reach[index[mid]] == SETTLED  # ruled out by its accepted rival: asked last
    asked = []
    while (choice := ranker.next()) is not None:
        asked.append(choice.row)
        ranker.close(choice.index)
    assert set(asked[-2:]) == {mid, row_of(nested, 0, "dystrophy")}  # the settled ones come last


def test_spans_overlap_when_nested_or_crossing_in_the_same_text_only():
    from bootstrap.labelmatrix import overlaps

    spans = [  # (text, start, end)
        (1, 0, 13), (1, 7, 13),  # "breast cancer" and its head: nested
        (1, 20, 25), (1, 25, 30),  # adjacent: no overlap
        (1, 40, 50), (1, 45, 55),  # crossing
        (1, 60, 70), (1, 60, 65),  # the same start
        (2, 7, 13),  # the same offsets as a span of text 1, in another text
    ]
    text, start, end = (np.array(column) for column in zip(*spans))
    assert overlaps(text, start, end).tolist() == [True, True, False, False, True, True, True, True, False]
    assert overlaps(*(np.array([], dtype=np.int64) for _ in range(3))).tolist() == []


def test_a_span_overlaps_others_when_nested_or_crossing_but_not_when_it_is_the_same_span():
    from bootstrap.labelmatrix import overlaps_with

    others = tuple(np.array(column) for column in zip((1, 7, 13), (1, 20, 30), (2, 0, 5)))
    spans = [(1, 0, 13), (1, 7, 13), (1, 8, 10), (1, 13, 20), (1, 25, 35), (1, 30, 40), (2, 4, 9), (3, 0, 5)]
    text, start, end = (np.array(column) for column in zip(*spans))
    # around, the same span, nested, adjacent on both sides, crossing, adjacent, crossing, no others in its text
    assert overlaps_with(text, start, end, others).tolist() == [True, False, True, False, True, False, True, False]


def test_a_models_spans_do_not_move_a_rule_candidate_to_another_setting(tmp_path):
    """The setting of a candidate (standing alone, or overlapping another) is the rules' own:
    the training set carries decisions by it. A model's "breast cancer" around a lone rule
    match "cancer" leaves that "cancer" standing alone; the model's span is a boundary span."""
    patterns = tmp_path / "p.jsonl"
    patterns.write_text(json.dumps({"label": "DISEASE", "id": "cancer", "pattern": [{"LOWER": "cancer"}]}) + "\n")
    texts = ["She had breast cancer.", "He had cancer."]
    table = build_table([patterns], [Record(t, input_hash(t), f"t:{i}") for i, t in enumerate(texts)])
    assert table.overlapping().tolist() == [False, False]
    model = [ModelSpan(input_hash(texts[0]), 8, 21, 2, 4, "breast cancer", "DISEASE", 0.9)]
    combined = with_model(table, model, {input_hash(t) for t in texts})
    assert combined.n_rows == 3
    assert combined.overlapping().tolist() == [False, False, True]

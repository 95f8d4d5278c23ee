"""A first accept reaches its string's occurrences beyond its own candidates: counted in the training sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
import spacy

from bootstrap.aggregate import Aggregate
from bootstrap.corpus import Record
from bootstrap.hashing import input_hash
from bootstrap.occurrences import StringCounts
from bootstrap.ranking import Ranker
from bootstrap.session import Session, SessionConfig
from bootstrap.table import build_table

TEXTS = [
    "Myotonic dystrophy (DM) is inherited.",  # the only text where a rule proposes the whole string
    "Families with myotonic dystrophy were seen.",
    "Myotonic dystrophy again, and a dystrophy of the muscle.",
    "Gout and gout, but never myotonic dystrophy here: MYOTONIC DYSTROPHY.",
]


@pytest.fixture
def patterns(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in (
        {"label": "DISEASE", "id": "dystrophy", "pattern": [{"LOWER": "dystrophy"}]},
        {"label": "DISEASE", "id": "gout", "pattern": [{"LOWER": "gout"}]},
        {"label": "DISEASE", "id": "defined", "regex": "(?i)myotonic dystrophy(?= \\(DM\\))"})) + "\n")
    return path


def records(texts):
    return [Record(text, input_hash(text), f"t:{i}") for i, text in enumerate(texts)]


def test_strings_are_counted_with_the_case_their_key_keeps():
    """Case-blind, except strings with a capital after the first letter ("WAS" is not "was")."""
    counts = StringCounts(spacy.blank("en"), [(i, text) for i, text in enumerate(
        ["WAS was Was.", "The WAS gene, myotonic dystrophy and Myotonic Dystrophy."])])
    assert counts.counts(["WAS", "was", "myotonic dystrophy", "asthma"]) == {
        "WAS": 2, "was": 2, "myotonic dystrophy": 1, "asthma": 0}
    assert counts.counts(["Myotonic Dystrophy"]) == {"Myotonic Dystrophy": 1}  # counted on demand, later too


def test_a_groups_occurrences_beyond_its_candidates_come_from_the_sample(patterns):
    table = build_table([patterns], records(TEXTS))
    aggregate = Aggregate(table)
    group, _ = aggregate.question_groups()
    keys = aggregate.group_keys()
    beyond = StringCounts(spacy.blank("en"), [(r.input_hash, r.text) for r in records(TEXTS)]).beyond_candidates(
        table, group, keys)
    long_form = keys.index(("myotonic dystrophy", 1, True))
    # 4 occurrences ("MYOTONIC DYSTROPHY" is another key), 1 of them its own question
    assert beyond[long_form] == 3
    assert beyond[keys.index(("gout", 1, False))] == 0  # every occurrence is a question already
    # only the sampled texts count: a sample without the last text loses its occurrence
    sample = [(r.input_hash, r.text) for r in records(TEXTS)][:3]
    fewer = StringCounts(spacy.blank("en"), sample).beyond_candidates(table, group, keys)
    assert fewer[long_form] == 2


def test_a_new_strings_reach_adds_its_other_occurrences_times_the_chance_of_a_yes(patterns):
    table = build_table([patterns], records(TEXTS))
    aggregate = Aggregate(table)
    group, n_groups = aggregate.question_groups()
    occurrences = np.zeros(n_groups)
    long_form = aggregate.group_keys().index(("myotonic dystrophy", 1, True))
    occurrences[long_form] = 3
    plain, counted = Ranker(aggregate, exploration=0.0), Ranker(aggregate, exploration=0.0, occurrences=occurrences)
    question = int(np.flatnonzero(group == long_form)[0])
    belief = counted.belief()[question]
    assert counted.reach()[question] == pytest.approx(plain.reach()[question] + 3 * belief)
    others = group != long_form
    assert np.allclose(counted.reach()[others], plain.reach()[others])
    aggregate.observe(int(table.question_row[question]), int(table.question_class[question]), "accept")
    counted.close(question)
    assert counted.reach()[question] == pytest.approx(plain.reach()[question])  # answered: nothing more to reach


@pytest.mark.parametrize("background", [False, True])
def test_a_session_counts_the_occurrences_in_its_texts(patterns, tmp_path, background):
    """With refits in the foreground (a simulation) or the background (the page) alike: before the first question."""
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": text}) + "\n" for text in TEXTS))
    session = Session.from_files([patterns], texts, db=tmp_path / "d.db", dataset="d",
                                 config=SessionConfig(background_refit=background))
    try:
        long_form = session.aggregate.group_keys().index(("myotonic dystrophy", 1, True))
        question = int(np.flatnonzero(session.aggregate.question_groups()[0] == long_form)[0])
        belief = session.ranker.belief()[question]
        without = Ranker(session.aggregate, exploration=0.0).reach()[question]  # (its nested rival counts too)
        assert session.ranker.reach()[question] == pytest.approx(without + 3 * belief)
    finally:
        session.close()

"""Labeling functions, the label matrix, the aggregate and the ranking, on made-up and real text."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from bootstrap.aggregate import Aggregate
from bootstrap.candidates import generate_candidates
from bootstrap.corpus import Record, read_texts
from bootstrap.errors import InputError
from bootstrap.gold import gold_answer, load_gold
from bootstrap.hashing import input_hash
from bootstrap.labelmatrix import ABSTAIN, NOT_ENTITY, build_candidate_table
from bootstrap.lfs import load_lfs
from bootstrap.matching import RuleMatcher
from bootstrap.ranking import Ranker
from bootstrap.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf8")
    return path


def table_for(nlp, patterns: Path, texts: list[str], lfs=(), labels=None):
    rules = load_rules(patterns, nlp.vocab)
    records = [Record(text, input_hash(text), f"t:{i}") for i, text in enumerate(texts)]
    return build_candidate_table(generate_candidates(nlp, RuleMatcher(nlp, rules), records), rules, lfs, labels)


def real_table(nlp, patterns: Path, texts: Path, limit: int):
    rules = load_rules(patterns, nlp.vocab)
    records = islice(read_texts(texts), limit)
    return build_candidate_table(generate_candidates(nlp, RuleMatcher(nlp, rules), records), rules)


def row_of(table, text: str) -> int:
    rows = [i for i, surface in enumerate(table.text) if surface == text]
    assert len(rows) == 1, f"{text!r} is on rows {rows}"
    return rows[0]


@pytest.fixture
def disease_patterns(tmp_path):
    return write_jsonl(tmp_path / "patterns.jsonl", [
        {"label": "DISEASE", "id": "organ-cancer", "pattern": [{"LOWER": "breast"}, {"LOWER": "cancer"}]},
        {"label": "DISEASE", "id": "cancer", "pattern": [{"LOWER": "cancer"}]},
        {"label": "DISEASE", "id": "not-lone-cancer", "negative": True, "pattern": [{"LOWER": "cancer"}]},
        {"label": "GENE", "id": "gene-symbol", "regex": r"\b[A-Z]{3,5}\d\b"},
        {"label": "DISEASE", "id": "symbol-disease", "regex": r"\bBRCA\d\b"},
    ])


# -- labeling functions ---------------------------------------------------------------------------


LF_FILE = '''
from bootstrap.lfs import labeling_function, span_proposer

@labeling_function(label="DISEASE")
def before_patients(span):
    doc = span.doc
    if span.end < len(doc) and doc[span.end].lower_ == "patients":
        return True
    return None

@labeling_function(label="DISEASE")
def gene_like(span):
    return False if any(c.isdigit() for c in span.text) else None

@labeling_function()
def says_gene(span):
    return "GENE" if span.text.startswith("BRCA") else None

@labeling_function(label="DISEASE")
def broken(span):
    return 1 / 0

@span_proposer(label="DISEASE")
def syndromes(doc):
    for token in doc:
        if token.lower_ == "syndrome" and token.i > 0:
            yield doc[token.i - 1 : token.i + 1]
'''


def test_load_lfs_returns_functions_in_file_order(tmp_path):
    path = tmp_path / "lfs.py"
    path.write_text(LF_FILE)
    lfs = load_lfs(path)
    assert [lf.name for lf in lfs] == ["before_patients", "gene_like", "says_gene", "broken", "syndromes"]
    assert [lf.kind for lf in lfs] == ["vote"] * 4 + ["propose"]
    assert lfs[0].id == "lf:before_patients" and lfs[0].label == "DISEASE" and lfs[2].label is None


@pytest.mark.parametrize("source, line, message", [
    ("x = 1\ndef f(:\n", 2, "SyntaxError"),
    ("import os\n\nraise RuntimeError('no model here')\n", 3, "RuntimeError: no model here"),
    ("import no_such_module_anywhere\n", 1, "ModuleNotFoundError"),
    ("x = 1\n", None, "defines no @labeling_function"),
])
def test_lf_file_that_fails_to_import_names_file_and_line(tmp_path, source, line, message):
    path = tmp_path / "my_lfs.py"
    path.write_text(source)
    with pytest.raises(InputError) as caught:
        load_lfs(path)
    problem = caught.value.problems[0]
    assert problem.path == str(path) and problem.line == line and message in problem.message
    assert str(problem).startswith(f"{path}:{line}:" if line else f"{path}:")


def test_lf_votes_proposals_and_errors_enter_the_matrix(nlp, tmp_path, disease_patterns):
    path = tmp_path / "lfs.py"
    path.write_text(LF_FILE)
    lfs = load_lfs(path)
    texts = [
        "Breast cancer patients carry BRCA1 mutations.",
        "Rett syndrome is rare.",
    ]
    table = table_for(nlp, disease_patterns, texts, lfs)
    column = {c.name: j for j, c in enumerate(table.columns)}
    disease, gene = table.class_of("DISEASE"), table.class_of("GENE")

    breast = row_of(table, "Breast cancer")
    assert table.L[breast, column["lf:before_patients"]] == disease
    brca = row_of(table, "BRCA1")
    assert table.L[brca, column["lf:gene_like"]] == NOT_ENTITY
    assert table.L[brca, column["lf:says_gene"]] == gene
    # a proposer's span becomes a row no rule found, with the proposer's vote and a question
    rett = row_of(table, "Rett syndrome")
    assert table.L[rett, column["lf:syndromes"]] == disease
    questions = {table.question(i)[1:] for i in range(table.n_questions)}
    rett_start = texts[1].index("Rett")
    assert (rett_start, rett_start + len("Rett syndrome"), "DISEASE") in questions
    # the function that raises abstains everywhere; the error is counted once per call, named
    assert (table.L[:, column["lf:broken"]] == ABSTAIN).all()
    assert table.errors.counts["broken"] == table.n_rows
    [message] = table.errors.messages()
    assert "'broken'" in message and "ZeroDivisionError" in message and "t:0" in message


# -- label matrix ---------------------------------------------------------------------------------


def test_rows_votes_boundaries_and_questions(nlp, disease_patterns):
    text = "Breast cancer and BRCA1 are linked; cancer is common."
    table = table_for(nlp, disease_patterns, [text])
    column = {c.name: j for j, c in enumerate(table.columns)}
    disease, gene = table.class_of("DISEASE"), table.class_of("GENE")
    assert table.cardinality == 3

    breast = row_of(table, "Breast cancer")
    assert table.L[breast, column["organ-cancer"]] == disease
    # "cancer" inside "Breast cancer" is a row of its own, where the longer match disagrees on boundaries
    nested = [i for i, s in enumerate(table.text) if s == "cancer" and table.start[i] == text.index("cancer")]
    assert len(nested) == 1
    assert table.L[nested[0], column["cancer"]] == disease
    assert table.L[nested[0], column["not-lone-cancer"]] == NOT_ENTITY
    assert table.L[nested[0], column["organ-cancer#boundary"]] == NOT_ENTITY
    assert table.L[breast, column["cancer#boundary"]] == NOT_ENTITY
    assert table.columns[column["organ-cancer#boundary"]].kind == "boundary"
    # one span, two labels: one row, two questions
    brca = row_of(table, "BRCA1")
    assert table.L[brca, column["gene-symbol"]] == gene and table.L[brca, column["symbol-disease"]] == disease
    brca_questions = {table.label_of(int(c)) for r, c in zip(table.question_row, table.question_class) if r == brca}
    assert brca_questions == {"GENE", "DISEASE"}
    # every question's offsets are the text's
    for i in range(table.n_questions):
        _, start, end, _ = table.question(i)
        assert text[start:end] == table.text[int(table.question_row[i])]


def test_label_restriction_keeps_only_those_questions(nlp, disease_patterns):
    table = table_for(nlp, disease_patterns, ["BRCA1 and breast cancer."], labels=["GENE"])
    assert table.labels == ["GENE"]
    assert {table.question(i)[3] for i in range(table.n_questions)} == {"GENE"}
    assert table.text == ["BRCA1"]


def test_real_candidates_are_rows_at_gold_offsets(nlp, shared_data):
    """On NCBI abstracts, the rows a rule proposes sit at the characters the gold data uses."""
    table = real_table(nlp, ROOT / "examples/diseases/patterns.jsonl", shared_data / "ncbi-disease/dev.jsonl", 40)
    gold = load_gold(shared_data / "ncbi-disease/dev.jsonl")
    texts = {r.input_hash: r.text for r in islice(read_texts(shared_data / "ncbi-disease/dev.jsonl"), 40)}
    hits = 0
    for i in range(table.n_questions):
        ih, start, end, label = table.question(i)
        assert texts[ih][start:end] == table.text[int(table.question_row[i])]
        hits += gold_answer(gold, ih, start, end, label) == "accept"
    assert table.n_questions > 100 and hits > 30


# -- aggregate ------------------------------------------------------------------------------------


def test_fewer_than_three_voting_lfs_fall_back_to_weighted_vote(nlp, tmp_path):
    patterns = write_jsonl(tmp_path / "p.jsonl", [
        {"label": "DISEASE", "pattern": "asthma"}, {"label": "DISEASE", "pattern": "gout"},
    ])
    table = table_for(nlp, patterns, ["Asthma and asthma and gout."] * 3)
    aggregate = Aggregate(table)
    assert aggregate.method == "weighted vote"
    p = aggregate.question_probabilities()
    assert np.allclose(p, 0.7)  # one vote of an LF trusted at fallback_accuracy, two classes


def test_label_model_on_real_data_and_decisions_move_the_voters(nlp, shared_data):
    table = real_table(nlp, ROOT / "examples/diseases/patterns.jsonl", shared_data / "ncbi-disease/dev.jsonl", 100)
    aggregate = Aggregate(table, method="LabelModel")
    assert aggregate.method == "LabelModel"
    before = aggregate.probabilities().copy()
    disease = table.class_of("DISEASE")
    # the positive rule whose candidates are most uncertain, so that a move is visible
    rules = [j for j, c in enumerate(table.columns) if c.kind == "rule" and not c.negative and (table.L[:, j] == disease).any()]
    rule = min(rules, key=lambda j: abs(np.median(before[table.L[:, j] == disease, disease]) - 0.5))
    voted = np.flatnonzero(table.L[:, rule] == disease)
    row = int(voted[0])
    aggregate.observe(row, disease, "reject")
    after = aggregate.probabilities()
    # the rejected row is decided; the rule's other rows lose probability; rows of another string
    # that no LF of the decided row voted on do not move
    assert after[row, disease] == 0
    others = voted[1:]
    assert (after[others, disease] <= before[others, disease] + 1e-12).all()
    assert (after[others, disease] < before[others, disease]).mean() > 0.9
    same_string = np.char.lower(np.array(table.text)) == table.text[row].lower()
    voters = table.L[row] != ABSTAIN
    untouched = (table.L[:, voters] == ABSTAIN).all(axis=1) & ~same_string
    assert untouched.sum() > 50
    assert np.allclose(after[untouched], before[untouched])
    # undo restores every probability exactly
    aggregate.forget(row, table.class_of("DISEASE"))
    assert np.allclose(aggregate.probabilities(), before)


def test_rejecting_a_string_lowers_its_other_occurrences(nlp, tmp_path):
    patterns = write_jsonl(tmp_path / "p.jsonl", [
        {"label": "DISEASE", "id": "words", "pattern": [{"LOWER": {"IN": ["cancer", "gout", "tumor"]}}]},
    ])
    table = table_for(nlp, patterns, [f"Case {i}: cancer, gout and tumor." for i in range(5)])
    aggregate = Aggregate(table)
    cancer_rows = [i for i, s in enumerate(table.text) if s == "cancer"]
    gout_rows = [i for i, s in enumerate(table.text) if s == "gout"]
    before = aggregate.probabilities()[:, 1].copy()
    aggregate.observe(cancer_rows[0], 1, "reject")
    after = aggregate.probabilities()[:, 1]
    drop_cancer = before[cancer_rows[1:]] - after[cancer_rows[1:]]
    drop_gout = before[gout_rows] - after[gout_rows]
    assert (drop_cancer > 0).all() and (drop_gout >= 0).all()
    assert drop_cancer.min() > drop_gout.max() + 0.05


def test_true_decisions_make_the_rest_better_calibrated(nlp, shared_data):
    """Brier score of the unanswered candidates falls as gold decisions come in; fails if they are ignored."""
    path = shared_data / "ncbi-disease/train.jsonl"
    table = real_table(nlp, ROOT / "examples/diseases/patterns.jsonl", path, 150)
    gold = load_gold(path)
    truth = np.array([gold_answer(gold, *table.question(i)) == "accept" for i in range(table.n_questions)])
    order = np.random.default_rng(0).permutation(table.n_questions)
    asked, rest = order[:150], order[150:]
    aggregate = Aggregate(table)
    brier_before = np.mean((aggregate.question_probabilities()[rest] - truth[rest]) ** 2)
    for i in asked:
        aggregate.observe(int(table.question_row[i]), int(table.question_class[i]), "accept" if truth[i] else "reject")
    brier_after = np.mean((aggregate.question_probabilities()[rest] - truth[rest]) ** 2)
    assert brier_after < brier_before - 0.02, (brier_before, brier_after)


def test_lf_stats_count_coverage_conflicts_and_decisions(nlp, disease_patterns):
    table = table_for(nlp, disease_patterns, ["Breast cancer and BRCA1; cancer again."] * 4)
    aggregate = Aggregate(table)
    stats = {s.name: s for s in aggregate.lf_stats()}
    cancer = stats["cancer"]
    assert cancer.coverage == int((table.L[:, [c.name for c in table.columns].index("cancer")] != ABSTAIN).sum())
    assert cancer.conflicts == cancer.coverage  # the negative rule fights it on every match
    assert cancer.from_decisions.n == 0 and cancer.from_decisions.estimate is None
    row = [i for i, s in enumerate(table.text) if s == "cancer"][0]
    aggregate.observe(row, table.class_of("DISEASE"), "reject", exploration=True)
    stats = {s.name: s for s in aggregate.lf_stats()}
    assert stats["cancer"].from_decisions.n == 1 and stats["cancer"].from_exploration.n == 1
    assert stats["cancer"].from_decisions.estimate == pytest.approx(1 / 3)
    assert stats["not-lone-cancer"].from_decisions.estimate == pytest.approx(2 / 3)
    assert stats["cancer"].precision < stats["cancer"].label_model_accuracy if stats["cancer"].label_model_accuracy else True
    low, high = stats["cancer"].from_decisions.low, stats["cancer"].from_decisions.high
    assert 0 < low < 1 / 3 < high < 1


# -- ranking --------------------------------------------------------------------------------------


def test_ranking_never_drops_a_question(nlp, shared_data):
    table = real_table(nlp, ROOT / "examples/social-media/patterns.jsonl", shared_data / "wnut17/dev.jsonl", 150)
    ranker = Ranker(Aggregate(table), exploration=0.2, seed=1)
    seen = []
    while (choice := ranker.next()) is not None:
        seen.append(choice.index)
        ranker.close(choice.index)
    assert sorted(seen) == list(range(table.n_questions))


def test_most_uncertain_first_and_exploration_share(nlp, shared_data):
    table = real_table(nlp, ROOT / "examples/diseases/patterns.jsonl", shared_data / "ncbi-disease/dev.jsonl", 60)
    aggregate = Aggregate(table)
    greedy = Ranker(aggregate, exploration=0.0)
    first = greedy.next()
    assert first.score == pytest.approx(greedy.scores().max())
    assert not first.exploration
    explorer = Ranker(aggregate, exploration=0.3, seed=7)
    flags = []
    for _ in range(300):
        choice = explorer.next()
        flags.append(choice.exploration)
    assert 0.2 < np.mean(flags) < 0.4


def test_excluded_questions_are_not_offered(nlp, disease_patterns):
    table = table_for(nlp, disease_patterns, ["Breast cancer and BRCA1."])
    ranker = Ranker(Aggregate(table), exploration=0.0)
    everything = set(range(table.n_questions))
    first = ranker.next()
    assert ranker.next(exclude={first.index}).index != first.index
    assert ranker.next(exclude=everything) is None
    ranker.close(first.index)
    ranker.reopen(first.index)
    assert ranker.remaining == table.n_questions


def test_every_label_gets_a_share_of_early_questions(nlp, shared_data):
    """WNUT rules propose PERSON ten times more than the rest; each label still comes up early."""
    table = real_table(nlp, ROOT / "examples/social-media/patterns.jsonl", shared_data / "wnut17/dev.jsonl", 400)
    ranker = Ranker(Aggregate(table), exploration=0.0)
    labels = []
    for _ in range(60):
        choice = ranker.next()
        labels.append(choice.label)
        ranker.close(choice.index)
    present = set(table.labels)
    assert set(labels) == present
    for label in present:
        assert labels.count(label) >= 0.5 * 60 / len(present) - 1


def test_example_lfs_find_what_no_rule_covers():
    """The bundled example's lfs.py: its proposer adds whole long forms the token patterns miss."""
    from bootstrap.table import build_table

    example = ROOT / "examples" / "diseases"
    rules_only = build_table([example / "patterns.jsonl"], example / "texts.jsonl")
    with_lfs = build_table([example / "patterns.jsonl"], example / "texts.jsonl", lfs=example / "lfs.py")
    gold = load_gold(example / "gold.jsonl")

    def hits(table):
        return {table.question(i) for i in range(table.n_questions) if gold_answer(gold, *table.question(i)) == "accept"}

    new = hits(with_lfs) - hits(rules_only)
    assert "Duchenne muscular dystrophy" in {with_lfs.text[with_lfs.question_row[i]] for i in range(with_lfs.n_questions)}
    assert len(new) >= 5
    assert not with_lfs.errors


def test_label_model_on_distinct_rows_equals_snorkels_on_every_row(nlp, shared_data):
    """The aggregate fits on distinct rows with counts; Snorkel's own fit on all rows gives the same."""
    from snorkel.labeling.model import LabelModel

    from bootstrap.aggregate import counted_label_model, distinct_rows

    table = real_table(nlp, ROOT / "examples/social-media/patterns.jsonl", shared_data / "wnut17/dev.jsonl", 600)
    L = table.L[:, (table.L != ABSTAIN).any(axis=0)].astype(np.int64)
    distinct, inverse, counts = distinct_rows(L)
    assert len(distinct) < len(L) / 5 and (distinct[inverse] == L).all()
    reference = LabelModel(cardinality=table.cardinality, verbose=False)
    reference.fit(L, n_epochs=200, seed=0, progress_bar=False)
    counted = counted_label_model(cardinality=table.cardinality, verbose=False)
    counted.fit_counted(distinct, counts, n_epochs=200, seed=0, progress_bar=False)
    assert np.allclose(counted.predict_proba(distinct)[inverse], reference.predict_proba(L), atol=1e-6)
    assert np.allclose(counted.get_weights(), reference.get_weights(), atol=1e-6)

"""The example projects load as the README says, their gold is exact, and the cold start runs end to end.

A broken example is the first thing a new user meets, so every file of every example is read
here with the package's own loaders, and ``examples/cold_start.py`` is run as a user runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from bootstrap.corpus import read_texts
from bootstrap.lfs import load_lfs
from bootstrap.rules import load_rules
from bootstrap.store import Store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROJECTS = sorted(path for path in EXAMPLES.iterdir() if (path / "patterns.jsonl").is_file())
WITH_TEXTS = [path for path in PROJECTS if (path / "texts.jsonl").is_file()]
WITH_LFS = [path for path in PROJECTS if (path / "lfs.py").is_file()]


def test_there_are_at_least_two_runnable_examples_with_their_own_texts_and_gold():
    names = {path.name for path in WITH_TEXTS if (path / "gold.jsonl").is_file()}
    assert {"diseases", "products"} <= names


@pytest.mark.parametrize("example", PROJECTS, ids=lambda path: path.name)
def test_rules_load_and_every_example_has_a_readme(example, nlp):
    rules = load_rules(example / "patterns.jsonl", nlp.vocab)
    assert len(rules.rules) >= 5
    assert any(rule.negative for rule in rules.rules), "an example's rules should disagree from the start"
    assert (example / "README.md").read_text(encoding="utf8").strip()


@pytest.mark.parametrize("example", WITH_LFS, ids=lambda path: path.name)
def test_labeling_functions_load(example):
    functions = load_lfs(example / "lfs.py")
    assert {lf.kind for lf in functions} == {"vote", "propose"}


@pytest.mark.parametrize("example", WITH_TEXTS, ids=lambda path: path.name)
def test_gold_spans_are_exact_token_aligned_and_cover_the_same_texts_in_order(example):
    nlp = spacy.blank("en")
    texts = list(read_texts(example / "texts.jsonl"))
    gold = list(read_texts(example / "gold.jsonl"))
    assert len(texts) >= 150
    assert [record.text for record in texts] == [record.text for record in gold]
    assert len({record.input_hash for record in texts}) == len(texts), "duplicate texts"
    spans = 0
    for record in gold:
        doc = nlp.make_doc(record.text)
        previous_end = -1
        for span in sorted(record.task["spans"], key=lambda s: s["start"]):
            where = f"{record.source}: {span}"
            assert record.text[span["start"]:span["end"]] == span["text"], where
            assert doc.char_span(span["start"], span["end"], alignment_mode="strict") is not None, where
            assert span["start"] >= previous_end, f"overlapping spans in {where}"
            previous_end = span["end"]
            spans += 1
    assert spans >= 150
    assert any(not record.task["spans"] for record in gold), "some texts should mention no entity"


def test_products_rules_cover_the_traps_they_are_about(nlp):
    """The negative rules vote against what the README says they do, on the example's own texts."""
    from bootstrap.check import check_rules
    from bootstrap.candidates import generate_candidates
    from bootstrap.matching import RuleMatcher

    example = EXAMPLES / "products"
    rules = load_rules(example / "patterns.jsonl", nlp.vocab)
    report = check_rules(rules, generate_candidates(nlp, RuleMatcher(nlp, rules), read_texts(example / "texts.jsonl")))
    by_id = {stats.rule_id: stats for stats in report.rules}
    assert by_id["not-software-version"].matches >= 5  # "Version 2", "Android 14", "Firmware 2.1", ...
    assert by_id["not-spec-or-standard"].matches >= 5  # "DDR5", "IP68", "USB-C", "M4 screws", ...
    assert not report.unmatched, [stats.rule_id for stats in report.unmatched]


def test_cold_start_runs_end_to_end_on_the_bundled_example(tmp_path):
    """Rules -> a first model at the start -> 60 gold-answered decisions through the Session -> a pipeline
    trained on every text (weak labels corrected by the decisions) that spacy.load opens."""
    report = tmp_path / "report.json"
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "cold_start.py"), str(EXAMPLES / "diseases"), "--decisions", "60",
         "--min-accepts", "10", "--every", "1000", "--max-epochs", "2", "--output", str(tmp_path / "run"),
         "--report", str(report)],
        capture_output=True, text=True, timeout=420, env={**os.environ, "COLUMNS": "160"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    result = json.loads(report.read_text(encoding="utf8"))

    with Store(tmp_path / "run" / "decisions.db", create=False) as store:
        assert store.counts("diseases")["total"] == 60
    assert result["decisions"] == 60
    assert len(result["runs"]) == 1 and result["runs"][0]["decisions"] == 0  # the first model, at the start
    assert result["runs"][0]["adopted"]  # nothing to compare it on yet: it proposes, the decisions judge it
    assert result["scorer"] in ("rules", "model") and f"ranked by: {result['scorer']}" in out

    nlp = spacy.load(result["model"])  # the pipeline the training handed over: it opens, and is the one named
    assert result["pipeline"]["name"] in ("ner", "rules + ner", "rules")
    assert ("ner" in nlp.pipe_names) == (result["pipeline"]["name"] != "rules")
    assert ("bootstrap_rules" in nlp.pipe_names) == (result["pipeline"]["name"] != "ner")
    assert set(result["pipeline"]["held_out_f"]) == {"ner", "rules + ner", "rules"}  # the rules' files were given
    assert result["shown"] and all(f"-> {[tuple(e) for e in shown['entities']]}" in out for shown in result["shown"])
    handed_over = {"ner": "ner", "rules + ner": "corrected rules + ner", "rules": "corrected rules"}[result["pipeline"]["name"]]
    assert result["scores"][handed_over] == result["scores"]["model"]  # every choice scored, the one handed over among them
    for name in ("rules", "labelmodel", "aggregate", "model", "ner", "corrected rules + ner", "corrected rules"):
        scores = result["scores"][name]
        assert all(0.0 <= scores[key] <= 1.0 for key in ("precision", "recall", "f")), (name, scores)
    assert result["scores"]["rules"]["f"] > 0  # the rules alone find some gold spans of the test split
    assert "trained pipeline (60 decisions)" in out and "rules alone" in out and "its ner model alone" in out


def test_products_functions_find_unlisted_brands_and_vote_against_companies(nlp):
    """The proposer finds names no rule lists; the functions vote for owned things and against announcers."""
    functions = {lf.name: lf for lf in load_lfs(EXAMPLES / "products" / "lfs.py")}
    doc = nlp("Test drove the Kia EV6 and my old Nissan Leaf; Samsung Electronics reported a drop and I kept the Elgato.")
    proposed = [span.text for span in functions["determiner_then_name"](doc)]
    assert proposed == ["Kia EV6", "Nissan Leaf", "Elgato"]  # "old" is a determiner here, "I" is never a name
    company = doc.char_span(doc.text.index("Samsung"), doc.text.index(" reported"))
    assert functions["acts_like_a_company"](company) is False
    assert functions["owned_or_bought"](doc.char_span(doc.text.index("Nissan"), doc.text.index(";"))) is True
    assert functions["owned_or_bought"](company) is None

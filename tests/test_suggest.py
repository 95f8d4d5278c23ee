"""suggest-patterns: pattern lines learned back from real decisions on the bundled DISEASE example.

Every question of the example (its rules plus one bad rule that calls the word "gene" a
disease) is answered from gold through a real Session. Then the suggestions are asked for
under rules without "common-diseases": the accepted spans only that rule matched are now
spans no rule covers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.errors import InputError
from bootstrap.gold import load_gold
from bootstrap.handoff import HandoffPolicy
from bootstrap.rules import load_rules
from bootstrap.session import Session, SessionConfig
from bootstrap.store import Store, UnknownDataset
from bootstrap.suggest import suggest_patterns

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diseases"
DATASET = "diseases"
BAD_RULE = {"label": "DISEASE", "id": "gene-word", "pattern": [{"LOWER": {"IN": ["gene", "genes"]}}]}


@pytest.fixture(scope="module")
def answered(tmp_path_factory, answer_from_gold):
    """(db, all rules, the rules without common-diseases, that rule's phrases) after every question is answered."""
    root = tmp_path_factory.mktemp("suggest")
    lines = (EXAMPLE / "patterns.jsonl").read_text(encoding="utf8").splitlines()
    full = root / "patterns.jsonl"
    full.write_text("\n".join([*lines, json.dumps(BAD_RULE)]) + "\n", encoding="utf8")
    reduced = root / "reduced.jsonl"
    reduced.write_text("\n".join(line for line in [*lines, json.dumps(BAD_RULE)] if '"common-diseases"' not in line) + "\n")
    phrases = [json.loads(line)["pattern"] for line in lines if '"common-diseases"' in line]
    db = root / "bootstrap.db"
    config = SessionConfig(background_refit=False, handoff=HandoffPolicy(mode="never"))
    session = Session.from_files([full], EXAMPLE / "texts.jsonl", db=db, dataset=DATASET, config=config)
    gold = load_gold(EXAMPLE / "gold.jsonl")
    answer_from_gold(session, gold)  # every question
    session.close()
    return db, full, reduced, phrases


def decisions_on(db: Path, text: str) -> Counter:
    """Accept and reject decisions on spans whose text is exactly ``text``, straight from the store."""
    with Store(db, create=False) as store:
        return Counter(a.answer for a in store.answers(DATASET) if a.span_text == text and a.label == "DISEASE")


def test_an_accepted_span_no_rule_covers_becomes_a_phrase_with_its_counts(answered):
    db, _, reduced, phrases = answered
    with Store(db, create=False) as store:
        suggestions = suggest_patterns(store, DATASET, [reduced], min_count=2)
    assert json.loads(json.dumps(suggestions)) == suggestions  # plain values, as a page's JSON API sends them
    positive = {s["pattern"]["pattern"]: s for s in suggestions if not s["negative"] and s["kind"] == "phrase"}
    expected = [phrase for phrase in phrases if decisions_on(db, phrase)["accept"] >= 2]
    assert expected, "the example has common-disease phrases accepted twice or more"
    for phrase in expected:
        counts = decisions_on(db, phrase)
        suggestion = positive[phrase]
        assert suggestion["pattern"] == {"label": "DISEASE", "pattern": phrase, "comment": suggestion["pattern"]["comment"]}
        assert (suggestion["accepts"], suggestion["rejects"]) == (counts["accept"], counts["reject"])
        assert suggestion["fixes"] == counts["accept"] and suggestion["examples"] == [phrase]
        assert f"matches {counts['accept']} accepted, {counts['reject']} rejected" in suggestion["pattern"]["comment"]
    # a phrase accepted only once is below --min-count 2, and appears with --min-count 1
    once = [phrase for phrase in phrases if decisions_on(db, phrase)["accept"] == 1 and decisions_on(db, phrase)["reject"] == 0]
    for phrase in once:
        assert phrase not in positive
    if once:
        with Store(db, create=False) as store:
            loose = suggest_patterns(store, DATASET, [reduced], min_count=1)
        assert set(once) <= {s["pattern"]["pattern"] for s in loose if s["kind"] == "phrase"}


def test_with_every_rule_in_place_nothing_accepted_is_uncovered(answered):
    """Every question came from the rules, so under the same rules no positive pattern is missing."""
    db, full, _, _ = answered
    with Store(db, create=False) as store:
        suggestions = suggest_patterns(store, DATASET, [full], min_count=1)
    assert suggestions and all(s["negative"] for s in suggestions)


def test_a_rule_whose_matches_were_rejected_yields_a_negative_pattern(answered):
    db, full, _, _ = answered
    gene = decisions_on(db, "gene")
    assert gene["reject"] >= 5 and gene["accept"] == 0  # the bad rule's matches were all rejected
    with Store(db, create=False) as store:
        suggestions = suggest_patterns(store, DATASET, [full])
    negative = {json.dumps(s["pattern"]["pattern"]): s for s in suggestions if s["negative"]}
    phrase = negative['"gene"']
    assert phrase["pattern"]["negative"] is True and phrase["rules"] == ["gene-word"]
    assert (phrase["rejects"], phrase["accepts"], phrase["fixes"]) == (gene["reject"], 0, gene["reject"])
    both = decisions_on(db, "gene")["reject"] + decisions_on(db, "genes")["reject"]
    lemma = negative[json.dumps([{"LOWER": {"IN": ["gene", "genes"]}}])]  # "gene" and "genes" share a lemma
    assert lemma["basis"] == "lemma" and lemma["fixes"] == both and lemma["precision"] == 1.0
    for suggestion in suggestions:  # every suggestion earns its place
        right, wrong = (suggestion["rejects"], suggestion["accepts"]) if suggestion["negative"] else (suggestion["accepts"], suggestion["rejects"])
        assert suggestion["fixes"] >= 2 and right > wrong


def test_suggestions_are_pattern_lines_load_rules_accepts(answered, tmp_path):
    db, _, reduced, _ = answered
    with Store(db, create=False) as store:
        suggestions = suggest_patterns(store, DATASET, [reduced], min_count=1)
    kinds = Counter((s["kind"], s["negative"]) for s in suggestions)
    assert kinds[("phrase", False)] and kinds[("phrase", True)] and kinds[("tokens", False)] + kinds[("tokens", True)]
    path = tmp_path / "suggested.jsonl"
    path.write_text("".join(json.dumps(s["pattern"]) + "\n" for s in suggestions), encoding="utf8")
    rules = load_rules(path)
    assert len(rules) == len(suggestions)
    assert len(load_rules([reduced, path])) == len(load_rules(reduced)) + len(suggestions)  # they add to the user's file


def test_an_added_suggestion_is_not_suggested_again(answered, tmp_path):
    db, _, reduced, _ = answered
    with Store(db, create=False) as store:
        first = suggest_patterns(store, DATASET, [reduced])
        added = tmp_path / "added.jsonl"
        added.write_text(json.dumps(first[0]["pattern"]) + "\n", encoding="utf8")
        again = suggest_patterns(store, DATASET, [reduced, added])
    assert first[0]["pattern"] not in [s["pattern"] for s in again]
    assert len(again) < len(first)


def test_suggest_patterns_command(answered, tmp_path):
    db, _, reduced, _ = answered
    runner = CliRunner()
    output = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["suggest-patterns", DATASET, str(reduced), "--db", str(db), "--output", str(output)])
    assert result.exit_code == 0, result.output
    with Store(db, create=False) as store:
        expected = [s["pattern"] for s in suggest_patterns(store, DATASET, [reduced])]
    assert [json.loads(line) for line in output.read_text(encoding="utf8").splitlines()] == expected
    stdout = runner.invoke(app, ["suggest-patterns", DATASET, str(reduced), "--db", str(db), "--min-count", "3"])
    with Store(db, create=False) as store:
        stricter = [s["pattern"] for s in suggest_patterns(store, DATASET, [reduced], min_count=3)]
    assert stdout.exit_code == 0 and 0 < len(stricter) < len(expected)
    assert [json.loads(line) for line in stdout.stdout.splitlines() if line.startswith("{")] == stricter
    missing = runner.invoke(app, ["suggest-patterns", "nope", str(reduced), "--db", str(db)])
    assert missing.exit_code == 1 and "no dataset 'nope'" in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "DISEASE", "pattern": 3}\n', encoding="utf8")
    broken = runner.invoke(app, ["suggest-patterns", DATASET, str(bad), "--db", str(db)])
    assert broken.exit_code == 1 and f"{bad}:1:" in broken.output and "Traceback" not in broken.output


def test_library_errors(answered, tmp_path):
    db, _, reduced, _ = answered
    with Store(db, create=False) as store:
        with pytest.raises(UnknownDataset):
            suggest_patterns(store, "nope", [reduced])
        with pytest.raises(InputError):
            suggest_patterns(store, DATASET, [tmp_path / "missing.jsonl"])

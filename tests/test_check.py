"""``bootstrap check``: the per-rule report (check_rules) and the command line around it."""

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from bootstrap.candidates import generate_candidates
from bootstrap.check import check_rules
from bootstrap.cli import app
from bootstrap.corpus import read_texts
from bootstrap.matching import RuleMatcher
from bootstrap.rules import load_rules

PATTERNS = [
    {"label": "DISEASE", "pattern": "heart failure", "id": "hf"},
    {"label": "DISEASE", "regex": "heart failure", "id": "hf-regex"},                        # agrees with hf
    {"label": "SYMPTOM", "pattern": "heart failure", "id": "symptom"},                      # other label, same span
    {"label": "DISEASE", "pattern": [{"LOWER": "heart"}, {"LOWER": "failure"}], "negative": True, "id": "not-hf"},
    {"label": "GENE", "pattern": "heart failure", "negative": True, "id": "not-gene"},      # no disagreement
    {"label": "DISEASE", "pattern": "failure", "id": "failure"},                            # nested
    {"label": "DISEASE", "pattern": "zzz", "id": "never"},
]
TEXTS = [{"text": "acute heart failure"}, {"text": "heart failure again, and heart failure"}, {"text": "no match"}]


def run_check(nlp, pattern_path, texts_path, phrase_attr="ORTH"):
    rules = load_rules(pattern_path, nlp.vocab)
    results = list(generate_candidates(nlp, RuleMatcher(nlp, rules, phrase_attr), read_texts(texts_path)))
    return rules, results, check_rules(rules, results)


@pytest.fixture
def files(write):
    return write("patterns.jsonl", PATTERNS), write("texts.jsonl", TEXTS)


def test_per_rule_counts(nlp, files):
    _, _, report = run_check(nlp, *files)
    stats = {s.rule_id: s for s in report.rules}
    hf = stats["hf"]
    assert (hf.matches, hf.texts, hf.agreements, hf.label_conflicts, hf.negative_conflicts, hf.overlaps) == (3, 2, 3, 3, 3, 3)
    assert hf.conflicts_with == Counter({"symptom": 3, "not-hf": 3, "failure": 3})
    assert (stats["not-hf"].negative_conflicts, stats["not-hf"].conflicts_with["hf-regex"]) == (6, 3)
    # "not GENE" beside a DISEASE or SYMPTOM vote on a span is no conflict; it only overlaps "failure".
    assert (stats["not-gene"].label_conflicts, stats["not-gene"].negative_conflicts, stats["not-gene"].overlaps) == (0, 0, 3)
    assert stats["failure"].overlaps == 3 * 5  # hf, hf-regex, symptom, not-hf, not-gene
    assert [s.rule_id for s in report.unmatched] == ["never"]
    assert (report.texts, report.texts_with_candidates, report.candidates) == (3, 2, 9)
    assert report.candidates_per_label == Counter({"DISEASE": 6, "SYMPTOM": 3})
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["unmatched_rules"] == ["never"] and data["rules"][0]["conflicts_with"]["symptom"] == 3


def test_votes_are_the_votes_the_label_matrix_gets(nlp, files, write):
    """`check` and `stats` count the same votes: a negative rule's match where no positive rule
    matched is a match in `check` and no vote in the label matrix `stats` counts."""
    from bootstrap.labelmatrix import build_candidate_table

    texts = write("more.jsonl", [*TEXTS, {"text": "heart failure"}, {"text": "a failure of the heart"}])
    lonely = write("lonely.jsonl", [*PATTERNS, {"label": "DISEASE", "pattern": "heart", "negative": True, "id": "not-heart"}])
    rules, results, report = run_check(nlp, lonely, texts)
    table = build_candidate_table(results, rules, [], None)
    coverage = {column.name: int((table.L[:, j] != -1).sum()) for j, column in enumerate(table.columns) if column.kind == "rule"}
    votes = {s.rule_id: s.votes for s in report.rules}
    assert votes == {rule_id: coverage.get(rule_id, 0) for rule_id in votes}
    # "heart" matches inside every "heart failure" and alone once; no positive rule matches "heart"
    assert (report.to_dict()["rules"][-1]["matches"], votes["not-heart"]) == (5, 0)


def test_report_is_consistent_with_the_candidate_stream_on_real_data(write, nlp, gold_tasks):
    tasks = gold_tasks("ncbi-disease/dev.jsonl", 30)
    mentions = sorted({t["text"][s["start"]:s["end"]] for t in tasks for s in t["spans"]})
    patterns = write("p.jsonl", [
        *({"label": "DISEASE", "pattern": m} for m in mentions),
        {"label": "DISEASE", "regex": r"(?i)\w*(cancer|tumou?rs?|carcinomas?)\b", "id": "regex"},
        {"label": "DISEASE", "pattern": [{"LOWER": {"IN": ["cancer", "tumor", "tumors"]}}], "negative": True, "id": "not"},
        {"label": "GENE", "regex": r"\b[A-Z]{2,5}\d*\b", "id": "gene"},
        {"label": "DISEASE", "pattern": "no such disease", "id": "never"},
    ])
    rules, results, report = run_check(nlp, patterns, write("t.jsonl", tasks))
    stats = {s.rule_id: s for s in report.rules}
    matches = Counter(m.rule_id for r in results for m in r.matches)
    texts = Counter(rule_id for r in results for rule_id in {m.rule_id for m in r.matches})
    assert {i: s.matches for i, s in stats.items()} == {rule.id: matches[rule.id] for rule in rules}
    assert {i: s.texts for i, s in stats.items()} == {rule.id: texts[rule.id] for rule in rules}
    assert report.texts == len(tasks) == len(results)
    candidates = [c for r in results for c in r.candidates]
    assert report.candidates == len(candidates)
    assert report.texts_with_candidates == sum(bool(r.candidates) for r in results)
    assert report.candidates_per_label == Counter(c.label for c in candidates)
    assert {s.rule_id for s in report.unmatched} == {rule.id for rule in rules if not matches[rule.id]} >= {"never"}
    # Agreements and conflicts on one span can be counted from the candidates' votes alone.
    assert sum(s.agreements for s in report.rules) == sum(len(c.votes_for) * (len(c.votes_for) - 1) for c in candidates)
    assert sum(s.negative_conflicts for s in report.rules) == 2 * sum(len(c.votes_for) * len(c.votes_against) for c in candidates)
    by_span = {}
    for c in candidates:
        by_span.setdefault((c.input_hash, c.start, c.end), []).append(len(c.votes_for))
    assert sum(s.label_conflicts for s in report.rules) == sum(n * (sum(ns) - n) for ns in by_span.values() for n in ns)
    for s in report.rules:  # disagreement is mutual
        assert all(stats[other].conflicts_with[s.rule_id] == n for other, n in s.conflicts_with.items())
    assert all(sum(getattr(s, kind) for s in report.rules) > 0 for kind in ("agreements", "label_conflicts", "negative_conflicts", "overlaps"))


# The command line.

runner = CliRunner()


def invoke(*args, env=None):
    result = runner.invoke(app, ["check", *map(str, args)], env=env)
    # Whatever happens, the user never sees a traceback: any exit is a deliberate one.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def test_cli_prints_the_table(files):
    result = invoke(*files)
    assert result.exit_code == 0
    assert "Rules on 3 texts" in result.stdout
    assert "9 candidates (DISEASE 6, SYMPTOM 3) in 2 of 3 texts." in result.stdout
    assert "1 rules never match:  never" in result.stdout
    assert "not DISEASE" in result.stdout


@pytest.mark.parametrize("columns", [80, 140])
def test_cli_table_shows_every_column_within_the_terminal(files, columns):
    result = invoke(*files, env={"COLUMNS": str(columns)})
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns
    header = next(line for line in lines if "matches" in line).split()
    assert header == ["rule", "label", "matches", "votes", "texts", "agree", "label≠", "neg.", "overlap"] + ["pattern"] * (columns > 100)
    hf = next(line for line in lines if line.split() and line.split()[0] == "hf").split()
    assert hf[1:9] == ["DISEASE", "3", "3", "2", "3", "3", "3", "3"]


def test_cli_json_is_the_library_report(nlp, files):
    result = invoke(*files, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == run_check(nlp, *files)[2].to_dict()


def test_cli_phrase_attr_lower(write, files):
    patterns, _ = files
    texts = write("upper.jsonl", [{"text": "Heart Failure"}])
    exact = json.loads(invoke(patterns, texts, "--json").stdout)
    lower = json.loads(invoke(patterns, texts, "--json", "--phrase-attr", "LOWER").stdout)
    assert exact["candidates"] == 0
    assert lower["candidates_per_label"] == {"DISEASE": 2, "SYMPTOM": 1}  # "Heart Failure" twice, "Failure"
    assert {r["rule_id"] for r in lower["rules"] if r["matches"]} == {"hf", "symptom", "not-gene", "failure", "not-hf"}


def test_cli_combines_several_pattern_files(write, files):
    _, texts = files
    first = write("a.jsonl", PATTERNS[:3])
    second = write("more/b.jsonl", PATTERNS[3:])
    combined = json.loads(invoke(first, second, texts, "--json").stdout)
    assert combined == json.loads(invoke(*files, "--json").stdout)


def test_cli_patterns_only(files):
    patterns, _ = files
    table = invoke(patterns)
    assert table.exit_code == 0
    assert "7 rules, labels: DISEASE, SYMPTOM, GENE" in table.stdout
    as_json = json.loads(invoke(patterns, "--json").stdout)
    assert [(r["rule_id"], r["negative"]) for r in as_json["rules"]] == [(p["id"], p.get("negative", False)) for p in PATTERNS]


def test_cli_reports_every_pattern_problem_of_every_file(write, files):
    _, texts = files
    bad = write("bad.jsonl", [
        PATTERNS[0],
        '{"label": "X", "pattern": "a"',
        {"pattern": "a"},
        {"label": "X", "pattern": [{"LOWR": "a"}]},
        {"label": "X", "regex": "(", "negative": "[/x]"},  # user text is never read as rich markup
    ])
    empty = write("empty.jsonl", [])
    result = invoke(bad, empty, texts)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"error {bad}:2", f"error {bad}:3", f"error {bad}:4", f"error {bad}:5", f"error {bad}:5", f"error {empty}",
    ]
    assert 'got "[/x]"' in result.stderr
    assert "invalid JSON" in lines[0] and 'missing "label"' in lines[1] and "LOWR" in lines[2] and "invalid regex" in lines[4]


def test_cli_reports_every_bad_text_line(write, files):
    patterns, _ = files
    texts = write("texts.jsonl", [{"text": "heart failure"}, {"txt": "x"}, "{oops", {"text": 3}])
    result = invoke(patterns, texts)
    assert result.exit_code == 1
    assert [line.split(": ")[0] for line in result.stderr.splitlines()] == [f"error {texts}:{n}" for n in (2, 3, 4)]


def test_cli_input_errors_about_whole_paths(tmp_path, files):
    patterns, texts = files
    missing_texts = invoke(patterns, tmp_path / "nope.jsonl")
    assert missing_texts.exit_code == 1
    assert f"{tmp_path / 'nope.jsonl'}: no such file or folder" in missing_texts.stderr
    missing_patterns = invoke(tmp_path / "nope.jsonl", texts)
    assert missing_patterns.exit_code == 1 and "nope.jsonl: no such file" in missing_patterns.stderr


@pytest.mark.parametrize("option", [["--lang", "zz"], ["--phrase-attr", "BOGUS"], ["--phrase-attr", "POS"]])
def test_cli_bad_options_are_usage_errors(files, option):
    result = invoke(*files, *option)
    assert result.exit_code == 2
    assert option[0] in result.output


def test_cli_on_real_data(write, shared_data, nlp, gold_tasks):
    tasks = gold_tasks("ncbi-disease/dev.jsonl", 100)
    mentions = sorted({t["text"][s["start"]:s["end"]] for t in tasks[:20] for s in t["spans"]})
    patterns = write("p.jsonl", [{"label": "DISEASE", "pattern": m} for m in mentions])
    texts = shared_data / "ncbi-disease" / "dev.jsonl"
    report = json.loads(invoke(patterns, texts, "--json").stdout)
    assert report == run_check(nlp, patterns, texts)[2].to_dict()
    assert report["texts"] == 100 and report["texts_with_candidates"] >= 20
    assert report["candidates"] >= sum(len(t["spans"]) for t in tasks[:20])

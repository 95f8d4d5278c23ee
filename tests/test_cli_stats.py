"""``bootstrap stats PATTERNS TEXTS``: a table that fits the terminal, numbers never cut, and the
same votes as ``bootstrap check``. On the bundled example with 40 decisions answered from gold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.gold import load_gold
from bootstrap.handoff import HandoffPolicy
from bootstrap.session import Session, SessionConfig

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diseases"
FILES = [str(EXAMPLE / "patterns.jsonl"), str(EXAMPLE / "texts.jsonl")]
DATASET = "diseases"


@pytest.fixture(scope="module")
def db(tmp_path_factory, answer_from_gold) -> str:
    """40 of the example's questions answered from its gold file, in the loop's order."""
    path = tmp_path_factory.mktemp("stats") / "bootstrap.db"
    config = SessionConfig(handoff=HandoffPolicy(mode="never"), background_refit=False)
    session = Session.from_files([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=path, dataset=DATASET,
                                 lfs=EXAMPLE / "lfs.py", config=config)
    gold = load_gold(EXAMPLE / "gold.jsonl")
    answer_from_gold(session, gold, 40)
    session.close()
    return str(path)


def stats(db: str, *options: str, columns: int = 80) -> str:
    result = CliRunner().invoke(app, ["stats", *FILES, "--lfs", str(EXAMPLE / "lfs.py"), "--db", db,
                                      "--dataset", DATASET, *options], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def report(db) -> dict:
    return json.loads(stats(db, "--json"))


def rows_of(output: str, names: list[str]) -> dict[str, list[str]]:
    """Each rule's table row, as words, by its name (put together again where it was folded:
    the rest of a folded name is the only word on the lines below it)."""
    lines = [line.split() for line in output.splitlines()]
    rows = {}
    for i, words in enumerate(lines):
        if len(words) < 2:
            continue
        name = words[0]
        for rest in lines[i + 1:]:
            if len(rest) != 1:
                break
            name += rest[0]
        if name in names:
            rows[name] = [name, *words[1:]]
    return rows


@pytest.mark.parametrize("columns", [80, 150])
def test_the_table_fits_the_terminal_and_cuts_no_number(db, report, columns):
    output = stats(db, columns=columns)
    lines = output.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= columns
    assert "…" not in output  # nothing shortened with an ellipsis, headers included
    header = " ".join(lines)
    for word in ("votes", "conflicts", "right", "precision", "(posterior)"):
        assert word in header
    lfs = report["rules"]["lfs"]
    rows = rows_of(output, [lf["name"] for lf in lfs])
    assert len(rows) == len(lfs)
    for lf in lfs:
        words = rows[lf["name"]]
        assert f"{lf['coverage']:,}" in words and f"{lf['conflicts']:,}" in words
        decided = lf["from_decisions"]["n"]
        assert (f"{lf['right']}/{decided}" in words) == bool(decided)


def test_wide_adds_the_other_columns_and_still_cuts_no_number(db, report):
    output = stats(db, "--wide", columns=80)
    assert "…" not in output
    for word in ("kind", "LabelModel", "accuracy", "estimate", "exploration"):
        assert word in output
    for lf in report["rules"]["lfs"]:
        if lf["label_model_accuracy"] is not None:
            assert f"{lf['label_model_accuracy']:.2f}" in output


def test_precision_after_decisions_shows_the_observed_share_beside_the_posterior(db, report):
    decided = next(lf for lf in report["rules"]["lfs"] if lf["from_decisions"]["n"])
    interval = decided["from_decisions"]
    assert decided["right"] == round(interval["estimate"] * (interval["n"] + 2)) - 1  # (k + 1) / (n + 2)
    assert 0 <= decided["right"] <= interval["n"] == decided["decided"]
    words = rows_of(stats(db, columns=150), [decided["name"]])[decided["name"]]
    assert f"{decided['right']}/{interval['n']}" in words
    assert f"{interval['estimate']:.2f}" in words and f"[{interval['low']:.2f}–{interval['high']:.2f}]" in words
    assert "not a measured" in stats(db, columns=150)  # the note says what the posterior is


def test_check_and_stats_count_the_same_votes(db):
    """Without functions, every rule's votes in `stats` are its votes in `check`, and where they
    differ from its matches (negative rules matching spans nothing proposes) `check` says why."""
    checked = CliRunner().invoke(app, ["check", *FILES, "--json"])
    assert checked.exit_code == 0, checked.output
    votes = {rule["rule_id"]: rule["votes"] for rule in json.loads(checked.stdout)["rules"]}
    matches = {rule["rule_id"]: rule["matches"] for rule in json.loads(checked.stdout)["rules"]}
    result = CliRunner().invoke(app, ["stats", *FILES, "--db", db, "--dataset", DATASET, "--json"])
    assert result.exit_code == 0, result.output
    coverage = {lf["name"]: lf["coverage"] for lf in json.loads(result.stdout)["rules"]["lfs"] if lf["kind"] == "rule"}
    assert coverage == votes
    assert any(votes[rule] < matches[rule] for rule in votes)  # the example has such a rule
    table = CliRunner().invoke(app, ["check", *FILES], env={"COLUMNS": "150"}).stdout
    assert "the votes `bootstrap stats` counts" in table


def test_stats_gives_the_labels_estimated_quality_and_the_stopping_hint(db, report):
    """The page's estimates, read back without a session: the same figures from the same stored answers."""
    from bootstrap.estimates import label_quality
    from bootstrap.store import Store

    with Store(db) as store:
        expected = label_quality(store.answers(DATASET)).to_dict()
    found = report["rules"]["estimates"]
    assert found["quality"] == json.loads(json.dumps(expected))
    hint = found["hint"]
    assert hint["candidates"] > 0 and 0 < hint["expected_changes"] <= hint["candidates"]
    output = " ".join(stats(db, columns=150).split())
    if expected["n"]:
        assert f"from the last {expected['n']} exploration answers" in output
        assert f"precision {expected['precision'][0]:.2f} [{expected['precision'][1]:.2f}, {expected['precision'][2]:.2f}]" in output
    assert f"The next 100 decisions would change about {hint['expected_changes']:,.0f} of {hint['candidates']:,}" in output


def test_the_history_names_each_pipeline_handed_over_and_how_sure(db, tmp_path):
    import shutil

    from bootstrap.store import Store

    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    runs = [("rules + ner", {"rules + ner": ("rules", 0.93), "ner": ("rules + ner", 0.41)}, True),
            ("rules", {"rules + ner": ("rules", 0.55), "ner": ("rules", 0.2)}, False)]
    with Store(copy, create=False) as store:
        for name, trials, adopted in runs:
            store.add_model_run(DATASET, 40, tmp_path / "model", {
                "model": {"f": 0.5}, "rules": {"f": 0.4},
                "pipeline": {"name": name, "path": str(tmp_path / "pipeline"), "trials": {
                    challenger: {"against": against, "confidence": sure} for challenger, (against, sure) in trials.items()}}},
                adopted=adopted)
    output = " ".join(stats(str(copy), columns=150).split())
    assert "rules + ner (93% sure)" in output  # a pipeline other than the rules says how sure the choice was
    assert "(55% sure)" not in output and "(20% sure)" not in output  # the rules kept: no challenger's share
    assert "The last training's pipeline, rules: spacy.load(" in output

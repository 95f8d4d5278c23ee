"""``bootstrap import``, ``export`` and ``stats`` as a user runs them, on real NCBI abstracts."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.hashing import input_hash

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(arg) for arg in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def prodigy_file(shared_data, tmp_path):
    """Three dev abstracts as Prodigy binary decisions: every gold span accepted, the first word rejected."""
    tasks = []
    with (shared_data / "ncbi-disease" / "dev.jsonl").open(encoding="utf8") as file:
        for line, _ in zip(file, range(3)):
            gold = json.loads(line)
            for span in gold["spans"]:
                tasks.append({"text": gold["text"], "spans": [span], "answer": "accept", "_annotator_id": "ncbi-gold"})
            first_word = {"start": 0, "end": len(gold["text"].split()[0]), "label": "DISEASE"}
            tasks.append({"text": gold["text"], "spans": [first_word], "answer": "reject", "_annotator_id": "ncbi-gold"})
    path = tmp_path / "prodigy.jsonl"
    path.write_text("".join(json.dumps(task) + "\n" for task in tasks), encoding="utf8")
    return path, tasks


def test_import_stats_export(prodigy_file, tmp_path):
    path, tasks = prodigy_file
    db = tmp_path / "project" / "bootstrap.db"
    result = invoke("import", "ncbi", path, "--db", db)
    assert result.exit_code == 0
    assert f"Imported {len(tasks)} decisions from {len(tasks)} tasks into 'ncbi'" in result.stderr

    stats = json.loads(invoke("stats", "--db", db, "--json").stdout)["datasets"]
    accepts = sum(task["answer"] == "accept" for task in tasks)
    assert [(s["name"], s["examples"], s["accept"], s["reject"], s["annotators"]) for s in stats] == [
        ("ncbi", 3, accepts, len(tasks) - accepts, ["gold"])
    ]
    table = invoke("db-stats", "--db", db).stdout
    assert "ncbi" in table and f"{accepts}" in table

    out = tmp_path / "out.jsonl"
    result = invoke("export", "ncbi", "--db", db, "--output", out)
    assert result.exit_code == 0 and f"Exported {len(tasks)} decisions" in result.stderr
    exported = [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]
    assert [(t["text"], t["spans"][0]["start"], t["spans"][0]["end"], t["answer"]) for t in exported] == [
        (t["text"], t["spans"][0]["start"], t["spans"][0]["end"], t["answer"]) for t in tasks
    ]
    assert all(t["_input_hash"] == input_hash(t["text"]) and t["_annotator_id"] == "ncbi-gold" for t in exported)

    rejects = invoke("export", "ncbi", "--db", db, "--answer", "reject").stdout.splitlines()
    assert [json.loads(line)["answer"] for line in rejects] == ["reject"] * 3


def test_bad_import_file_lists_every_problem_and_stores_nothing(prodigy_file, tmp_path):
    path, tasks = prodigy_file
    lines = path.read_text(encoding="utf8").splitlines()
    lines[1] = json.dumps({**tasks[1], "answer": "yes"})
    lines[3] = "{broken"
    lines[4] = json.dumps({**tasks[4], "spans": [{"start": 29, "end": 14, "label": "DISEASE"}]})  # issue 15, 8
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    db = tmp_path / "bootstrap.db"
    result = invoke("import", "ncbi", path, "--db", db)
    assert result.exit_code == 1
    assert f"{path}:2: \"answer\" must be one of accept, reject, ignore, got 'yes'" in result.stderr
    assert f"{path}:4: invalid JSON" in result.stderr
    assert f"{path}:5: span 0 (29, 14) ends before it starts" in result.stderr and "outside" not in result.stderr
    assert json.loads(invoke("stats", "--db", db, "--json").stdout)["datasets"] == []


def test_unknown_dataset_database_and_answer_are_one_line_errors(prodigy_file, tmp_path):
    path, _ = prodigy_file
    db = tmp_path / "bootstrap.db"
    missing = tmp_path / "typo.db"
    result = invoke("stats", "--db", missing)
    assert result.exit_code == 1 and f"no database at {missing}" in result.stderr
    assert not missing.exists()
    invoke("import", "ncbi", path, "--db", db)
    result = invoke("export", "nbci", "--db", db)
    assert result.exit_code == 1 and "no dataset 'nbci'" in result.stderr and "(datasets: ncbi)" in result.stderr
    result = invoke("export", "ncbi", "--db", db, "--answer", "maybe")
    assert result.exit_code == 2 and "maybe" in result.stderr
    result = invoke("import", "ncbi", path, "--db", db, "--lang", "xx-nope")
    assert result.exit_code == 2 and "xx-nope" in result.stderr

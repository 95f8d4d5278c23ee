"""``bootstrap PATTERNS TEXTS`` refuses a session with nothing to ask; decision files name a reversed span."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.errors import InputError
from bootstrap.train import read_decisions

ROOT = Path(__file__).resolve().parents[1]


def test_rules_that_match_nothing_are_an_error_not_an_empty_page(write, tmp_path):
    patterns = write("p.jsonl", [{"label": "DISEASE", "pattern": "xylophonitis"}])
    texts = write("t.jsonl", [{"text": "Nothing to see here."}, {"text": "Nor here."}])
    result = CliRunner().invoke(app, [str(patterns), str(texts), "--db", str(tmp_path / "b.db"), "--handoff", "never"])
    assert result.exit_code == 1
    assert "nothing to ask" in result.output and "bootstrap check" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"", b"\n  \n", b'{"text": ""}\n'])
def test_a_texts_file_with_nothing_to_annotate_is_an_error_not_an_empty_page(write, tmp_path, content):
    """Issue 15, 7: it exited 0 and served a session with nothing to ask."""
    patterns = write("p.jsonl", [{"label": "DISEASE", "pattern": "asthma"}])
    texts = write("t.jsonl", content)
    result = CliRunner().invoke(app, [str(patterns), str(texts), "--db", str(tmp_path / "b.db"), "--handoff", "never"])
    assert result.exit_code == 1
    assert f"error {texts}: no texts to annotate: no line has a text" in " ".join(result.output.split())
    assert "Traceback" not in result.output and "Uvicorn" not in result.output


def test_skipped_lines_and_ignored_files_are_warning_lines_of_the_command(write, tmp_path):
    """Issue 15, 7: what the reader counts reaches the person, one ``warning`` line each (a fresh
    process: pytest records warnings instead of letting the command show them)."""
    patterns = write("p.jsonl", [{"label": "DISEASE", "pattern": "asthma"}])
    write("corpus/a.jsonl", [{"text": "asthma here."}, "", {"text": "  "}, {"text": "More asthma."}])
    write("corpus/table.csv", ["text,label", "asthma,DISEASE"])
    corpus = tmp_path / "corpus"
    done = subprocess.run([sys.executable, "-m", "bootstrap", "check", str(patterns), str(corpus)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("warning ")] == [
        f"warning {corpus}: 1 file ignored, not .txt, .jsonl, .ndjson: table.csv",
        f"warning {corpus / 'a.jsonl'}: 2 lines without a text skipped (lines 2, 3)",
    ]
    assert "2 candidates (DISEASE 2) in 2 of 2 texts." in done.stdout


@pytest.mark.parametrize("span, message", [
    ({"start": 9, "end": 4, "label": "X"}, "span 0 (9, 4) ends before it starts"),
    ({"start": 4, "end": 4, "label": "X"}, "span 0 (4, 4) is empty"),
])
def test_a_decision_file_says_what_is_wrong_with_a_span(write, span, message):
    path = write("d.jsonl", [{"text": "Some text here.", "answer": "accept", "spans": [span]}])
    with pytest.raises(InputError) as error:
        read_decisions(path)
    assert f"{path}:1: {message}" in str(error.value)

"""``bootstrap PATTERNS TEXTS`` refuses a session with nothing to ask; decision files name a reversed span."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.errors import InputError
from bootstrap.train import read_decisions


def test_rules_that_match_nothing_are_an_error_not_an_empty_page(write, tmp_path):
    patterns = write("p.jsonl", [{"label": "DISEASE", "pattern": "xylophonitis"}])
    texts = write("t.jsonl", [{"text": "Nothing to see here."}, {"text": "Nor here."}])
    result = CliRunner().invoke(app, [str(patterns), str(texts), "--db", str(tmp_path / "b.db"), "--handoff", "never"])
    assert result.exit_code == 1
    assert "nothing to ask" in result.output and "bootstrap check" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("span, message", [
    ({"start": 9, "end": 4, "label": "X"}, "span 0 (9, 4) ends before it starts"),
    ({"start": 4, "end": 4, "label": "X"}, "span 0 (4, 4) is empty"),
])
def test_a_decision_file_says_what_is_wrong_with_a_span(write, span, message):
    path = write("d.jsonl", [{"text": "Some text here.", "answer": "accept", "spans": [span]}])
    with pytest.raises(InputError) as error:
        read_decisions(path)
    assert f"{path}:1: {message}" in str(error.value)

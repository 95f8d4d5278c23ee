"""Every ``--help`` reads as plain usage: names people write (``PATTERNS... TEXTS``, ``--lang
TEXT``), none of Typer's type placeholders, and the top level says what ``bootstrap FILES`` does."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from bootstrap.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)
PLACEHOLDER = re.compile(r"\{\w+\}|<(bool|str|int|float|path|list\[\w+\])>|\w+ range\b")


def help_of(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_has_no_typer_placeholders(command):
    text = help_of(*([command] if command else []))
    assert not PLACEHOLDER.search(text), PLACEHOLDER.search(text).group()


def test_the_top_level_help_says_that_bootstrap_files_is_annotate():
    assert "`bootstrap PATTERNS... TEXTS` is `bootstrap annotate PATTERNS... TEXTS`" in " ".join(help_of().split())


@pytest.mark.parametrize("command, usage", [
    ("annotate", "annotate [OPTIONS] PATTERNS... TEXTS"),
    ("check", "check [OPTIONS] PATTERNS... [TEXTS]"),
    ("stats", "stats [OPTIONS] [PATTERNS... TEXTS]"),
    ("export", "export [OPTIONS] DATASET"),
    ("train", "train [OPTIONS] [DATASET]"),
])
def test_usage_names_the_arguments_as_the_readme_does(command, usage):
    assert usage in help_of(command)


def test_an_option_value_is_named_by_its_type_and_a_flag_by_nothing():
    text = " ".join(help_of("check").split())
    assert "--lang TEXT" in text and "--batch-size INTEGER" in text and "--json Print" in text


def test_a_command_description_is_whole_sentences_in_the_list():
    """The list of commands shows each description's first paragraph: never cut mid-sentence."""
    listing = " ".join(help_of().split())
    assert "The datasets in a database, with texts, questions, answers and annotators." in listing
    assert "PATTERNS... TEXTS, also" not in listing


def test_the_scheme_option_is_one_line_pointing_at_the_readme():
    text = " ".join(help_of("train").split())
    assert 'README: "Training schemes"' in text and "reviewed-outside-beam" not in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_help_is_shown_whole(command):
    """Rich reads ``[...]`` in a help text as markup and drops it ("needs bootstrap[dask]" showed
    as "needs bootstrap"): every help text must come out word for word."""
    shown = " ".join(help_of(command).replace("│", " ").split())
    for param in typer.main.get_command(app).commands[command].params:
        if param.help:
            assert " ".join(param.help.replace("\\[", "[").split()) in shown, param.help

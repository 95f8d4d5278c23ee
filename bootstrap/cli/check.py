"""``bootstrap check PATTERNS... [TEXTS]``: validate rules and show how they behave on a corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..candidates import generate_candidates
from ..check import CheckReport, check_rules
from ..corpus import read_texts
from ..errors import InputError, Problem
from ..matching import RuleMatcher
from ..rules import RuleSet, load_rules, polarity
from ._util import (
    app, blank_nlp, count_lines, reports_input_errors, split_patterns_and_texts, validate_phrase_attr, with_progress,
)


@app.command("check")
@reports_input_errors
def check_cli(
    files: Annotated[list[Path], typer.Argument(help="Pattern files, then the texts (JSONL, .txt or a folder). One file: validate patterns only.")],
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() used to tokenize.")] = "en",
    phrase_attr: Annotated[str, typer.Option(help="Token attribute phrase patterns match on (EntityRuler's phrase_matcher_attr).", callback=validate_phrase_attr)] = "ORTH",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per nlp.pipe batch.")] = 256,
) -> None:
    """Validate pattern files and report, per rule, matches, coverage, overlaps and conflicts."""
    pattern_files, texts_path = split_patterns_and_texts(files)
    nlp = blank_nlp(lang)
    rules = load_rules(pattern_files, nlp.vocab)
    if texts_path is None:
        _print_rules_only(rules, as_json)
        return
    report = run_check(nlp, rules, texts_path, phrase_attr, batch_size)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_report(report, Console())


def run_check(nlp, rules: RuleSet, texts_path: Path, phrase_attr: str = "ORTH", batch_size: int = 256) -> CheckReport:
    """Read the whole corpus; every bad line of it is reported at the end, together."""
    problems: list[Problem] = []
    records = read_texts(texts_path, on_problem=problems.append)
    records = with_progress(records, f"Matching {texts_path.name}", count_lines(texts_path))
    report = check_rules(rules, generate_candidates(nlp, RuleMatcher(nlp, rules, phrase_attr), records, batch_size))
    if problems:
        raise InputError(problems)
    return report


def _print_rules_only(rules: RuleSet, as_json: bool) -> None:
    if as_json:
        rows = [{"rule_id": r.id, "label": r.label, "negative": r.negative, "pattern": r.describe()} for r in rules]
        typer.echo(json.dumps({"rules": rows}, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{len(rules)} rules, labels: {', '.join(rules.labels)}")
    for column in ("rule", "label", "pattern"):
        table.add_column(column)
    for rule in rules:
        table.add_row(Text(rule.id), Text(polarity(rule.label, rule.negative)), Text(rule.describe()))
    Console().print(table)


def print_report(report: CheckReport, console: Console) -> None:
    table = Table(title=f"Rules on {report.texts:,} texts")
    table.add_column("rule", no_wrap=True, overflow="ellipsis", max_width=22)
    table.add_column("label", no_wrap=True, min_width=7)
    headers = {"matches": "matches", "texts": "texts", "agree": "agree", "label": "label≠", "neg": "neg.", "overlaps": "overlap"}
    for header in headers.values():
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    show_pattern = console.width >= 110  # on a narrow terminal the numbers matter more
    if show_pattern:
        table.add_column("pattern", no_wrap=True, overflow="ellipsis", max_width=console.width - 100)
    for stats in sorted(report.rules, key=lambda s: -s.matches):
        table.add_row(
            Text(stats.rule_id), Text(polarity(stats.label, stats.negative)),
            f"{stats.matches:,}", f"{stats.texts:,}", f"{stats.agreements:,}",
            _warn(stats.label_conflicts), _warn(stats.negative_conflicts), f"{stats.overlaps:,}",
            *([Text(stats.pattern)] if show_pattern else []),
            style="dim" if stats.matches == 0 else None,
        )
    console.print(table)
    per_label = escape(", ".join(f"{label} {count:,}" for label, count in report.candidates_per_label.most_common()))
    console.print(
        f"{report.candidates:,} candidates ({per_label or 'none'}) in {report.texts_with_candidates:,} "
        f"of {report.texts:,} texts.",
        highlight=False,
    )
    if report.unmatched:
        console.print(f"[yellow]{len(report.unmatched)} rules never match:[/] ", Text(", ".join(s.rule_id for s in report.unmatched)))


def _warn(count: int) -> str:
    return f"[yellow]{count:,}[/]" if count else "0"

"""``bootstrap check PATTERNS... [TEXTS]``: validate rules and show how they behave on a corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..config import LANG, PHRASE_ATTR
from ..errors import InputError, Problem
from ._util import (
    app, blank_nlp, console, count_lines, reports_input_errors, split_patterns_and_texts, validate_phrase_attr,
    with_progress,
)

if TYPE_CHECKING:
    from ..check import CheckReport
    from ..rules import RuleSet


@app.command("check")
@reports_input_errors
def check_cli(
    files: Annotated[list[Path], typer.Argument(metavar="PATTERNS... [TEXTS]", help="Pattern files, then the texts (JSONL, .txt or a folder). Pattern files alone: only validate them.")],
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() used to tokenize.")] = LANG,
    phrase_attr: Annotated[str, typer.Option(help="Token attribute phrase patterns match on (EntityRuler's phrase_matcher_attr).", callback=validate_phrase_attr)] = PHRASE_ATTR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    batch_size: Annotated[int, typer.Option(help="Texts per nlp.pipe batch.")] = 256,
) -> None:
    """Validate pattern files and report, per rule, matches, coverage, overlaps and conflicts."""
    from ..rules import load_rules

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


def run_check(nlp, rules: RuleSet, texts_path: Path, phrase_attr: str = PHRASE_ATTR, batch_size: int = 256) -> CheckReport:
    """Read the whole corpus; every bad line of it is reported at the end, together. A rule that
    ran out of time (a catastrophic regex) is a ``warning`` line, as the session prints it: its
    file:line, the text's, how often, and whether it was switched off."""
    from ..candidates import generate_candidates
    from ..check import check_rules
    from ..corpus import read_texts
    from ..lfs import LFErrors
    from ..matching import RuleMatcher

    problems: list[Problem] = []
    timeouts = LFErrors()

    def noting_timeouts(results):
        for result in results:
            for failure in result.failures:
                timeouts.record_named(*failure)
            yield result

    records = read_texts(texts_path, on_problem=problems.append)
    records = with_progress(records, f"Matching {texts_path.name}", count_lines(texts_path))
    matched = generate_candidates(nlp, RuleMatcher(nlp, rules, phrase_attr), records, batch_size)
    report = check_rules(rules, noting_timeouts(matched))
    if problems:
        raise InputError(problems)
    for message in timeouts.messages():
        console.print(f"[yellow]warning[/] {escape(message)}", highlight=False, soft_wrap=True)
    return report


def _print_rules_only(rules: RuleSet, as_json: bool) -> None:
    from ..rules import polarity

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
    from ..rules import polarity

    headers = ["matches", "votes", "texts", "agree", "label≠", "neg.", "overlap"]
    rows = []
    for stats in sorted(report.rules, key=lambda s: -s.matches):
        numbers = [stats.matches, stats.votes, stats.texts, stats.agreements, stats.label_conflicts,
                   stats.negative_conflicts, stats.overlaps]
        cells = [Text(f"{n:,}", style="yellow" if n and header in ("label≠", "neg.") else "") for n, header in zip(numbers, headers)]
        rows.append((stats, Text(stats.rule_id), Text(polarity(stats.label, stats.negative)), cells))
    # Rich shrinks columns badly when none may wrap: the last ones were cut off on an
    # 80-column terminal. So the numbers and labels keep their width, the rule ids get the
    # room left, and the pattern column is shown only when there is room after the full ids.
    widths = [max(len(header), *(cells[i].cell_len for *_, cells in rows)) for i, header in enumerate(headers)]
    label_width = max(len("label"), *(label.cell_len for _, _, label, _ in rows))
    id_width = max(len("rule"), *(rule_id.cell_len for _, rule_id, _, _ in rows))
    room = console.width - (2 * (len(headers) + 2) + 1) - label_width - sum(widths)  # 2: a space either side
    show_pattern = room - id_width - 2 >= 12
    table = Table(title=f"Rules on {report.texts:,} texts", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("rule", no_wrap=True, overflow="ellipsis", width=id_width if show_pattern else max(8, min(id_width, room)))
    table.add_column("label", no_wrap=True, width=label_width)
    for header, width in zip(headers, widths):
        table.add_column(header, justify="right", no_wrap=True, width=width)
    if show_pattern:
        table.add_column("pattern", no_wrap=True, overflow="ellipsis", max_width=room - id_width - 2)
    for stats, rule_id, label, cells in rows:
        table.add_row(rule_id, label, *cells, *([Text(stats.pattern)] if show_pattern else []), style="dim" if stats.matches == 0 else None)
    console.print(table)
    per_label = escape(", ".join(f"{label} {count:,}" for label, count in report.candidates_per_label.most_common()))
    console.print(
        f"{report.candidates:,} candidates ({per_label or 'none'}) in {report.texts_with_candidates:,} "
        f"of {report.texts:,} texts.",
        highlight=False,
    )
    if any(stats.votes != stats.matches for stats in report.rules):
        console.print("votes: matches on a span some positive rule matched, the votes `bootstrap stats` counts; a "
                      "negative rule's other matches ask nothing.", highlight=False, style="dim")
    if report.unmatched:
        console.print(f"[yellow]{len(report.unmatched)} rules never match:[/] ", Text(", ".join(s.rule_id for s in report.unmatched)))

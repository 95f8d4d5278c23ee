"""``bootstrap stats``: the datasets of a database and their counts (alias ``db-stats``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..comparison import HANDOVER_CONFIDENCE
from ..config import DEFAULT_DB, LANG
from ..store import DatasetStats, Store, UnknownDataset
from ._util import DB_OPTION, app, fail, reports_input_errors, split_patterns_and_texts


@app.command("stats")
@reports_input_errors
def stats_cli(
    files: Annotated[Optional[list[Path]], typer.Argument(metavar="[PATTERNS... TEXTS]", help="Pattern files, then the texts: adds the table of rules and functions.", show_default=False)] = None,
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    dataset: Annotated[str, typer.Option(help="Dataset whose decisions the rules are scored on.")] = "bootstrap",
    lfs: Annotated[Optional[Path], typer.Option("--lfs", help="Python file of labeling functions, as given to the session.")] = None,
    label: Annotated[Optional[list[str]], typer.Option("--label", help="Only these labels, as given to the session.")] = None,
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() used to tokenize.")] = LANG,
    wide: Annotated[bool, typer.Option("--wide", help="Every column: kind, LabelModel accuracy, the loop's estimate, exploration only.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON on stdout.")] = False,
) -> None:
    """The datasets in a database, with texts, questions, answers and annotators.

    With PATTERNS... TEXTS, also how each rule and labeling function votes and how often your
    decisions proved it right, with a 95% interval."""
    try:
        with Store(db, create=False) as store:
            stats = store.datasets()
            lf_stats = _lf_stats(store, files, dataset, lfs, label, lang) if files else None
    except (FileNotFoundError, UnknownDataset) as error:
        fail(str(error))
    if as_json:
        payload = {"db": db, "datasets": [s.to_dict() for s in stats]}
        if lf_stats is not None:
            payload["rules"] = lf_stats
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    console = Console()
    print_stats(db, stats, console)
    if lf_stats is not None:
        print_lf_stats(dataset, lf_stats, console, wide=wide)


def _lf_stats(store: Store, files: list[Path], dataset: str, lfs, labels, lang: str) -> dict:
    from ..replay import replay_dataset
    from ..table import build_table

    pattern_files, texts = split_patterns_and_texts(files)
    if texts is None:
        fail("give the pattern files, then the texts")
    store.dataset_id(dataset, create=False)
    table = build_table(pattern_files, texts, lfs=lfs, labels=labels, lang=lang)
    replayed = replay_dataset(store, dataset, table)  # the dataset's decisions (and its adopted model), read only
    lf_stats = [{**lf, "decided": lf["from_decisions"]["n"], "right": right_of(lf["from_decisions"])}
                for lf in replayed.lf_stats()]
    return {"method": replayed.aggregate.method, "method_reason": replayed.aggregate.method_reason, "lfs": lf_stats,
            "accepts_per_label": replayed.accepts_per_label, "handoff": replayed.handoff,
            "estimates": replayed.estimates()}


def right_of(interval: dict) -> int:
    """Decisions that agreed with the votes, from the Beta(1, 1) posterior mean of ``k`` right of
    ``n``, (k + 1) / (n + 2): the interval carries the mean, and the table shows ``k/n`` beside it."""
    n = interval["n"]
    return round(interval["estimate"] * (n + 2)) - 1 if n else 0


# (header, justify, cell): the default table has the columns a newcomer needs; --wide adds the rest.
def _columns(wide: bool) -> list[tuple[str, str, Callable[[dict], Text | str]]]:
    columns = [
        ("rule or function", "left", lambda lf: Text(lf["name"])),
        ("says", "left", lambda lf: Text(_says(lf))),
        ("votes", "right", lambda lf: f"{lf['coverage']:,}"),
        ("conflicts", "right", lambda lf: f"{lf['conflicts']:,}"),
        ("right", "right", lambda lf: _right(lf["from_decisions"])),
        ("precision\n(posterior)", "right", lambda lf: _posterior(lf["from_decisions"])),
    ]
    if wide:
        accuracy = lambda lf: "–" if lf["label_model_accuracy"] is None else f"{lf['label_model_accuracy']:.2f}"  # noqa: E731
        columns[2:2] = [("kind", "left", lambda lf: lf["kind"])]
        columns += [
            ("LabelModel\naccuracy", "right", accuracy),
            ("loop's\nestimate", "right", lambda lf: f"{lf['precision']:.2f}"),
            ("exploration\nonly: right", "right", lambda lf: _right(lf["from_exploration"])),
            ("exploration only:\nprecision", "right", lambda lf: _posterior(lf["from_exploration"])),
        ]
    return columns


def _says(lf: dict) -> str:
    if lf["kind"] == "boundary":
        return "another span"  # its match overlaps the candidate with other boundaries
    if lf["negative"]:
        return f"not {lf['label']}"
    return lf["label"] or "(its label)"


def _right(interval: dict) -> str:
    return f"{right_of(interval):,}/{interval['n']:,}" if interval["n"] else "–"


def _posterior(interval: dict) -> str:
    if not interval["n"]:
        return "–"
    return f"{interval['estimate']:.2f} [{interval['low']:.2f}–{interval['high']:.2f}]"


LF_TABLE_NOTES = (
    "votes: candidates voted on, as `bootstrap check` counts them (plus any on spans your functions "
    "propose). A negative rule votes only where a positive one matched; a #boundary row is its rule "
    "saying the entity is another span, one overlapping its match.\n"
    "right: decisions that agreed with the vote, of those decided. precision (posterior): mean and 95% "
    "interval of a Beta(1, 1) posterior from those decisions: 1/1 right reads 0.67, not a measured 67%."
)
WIDE_NOTES = (
    "\nLabelModel accuracy: what Snorkel's LabelModel estimated from the votes alone. loop's estimate: the "
    "precision that weighs the votes now, that estimate moved by your decisions. exploration only: the "
    "decisions on questions drawn at random, an unbiased sample."
)


def print_lf_stats(dataset: str, report: dict, console: Console, wide: bool = False) -> None:
    from ..estimates import describe

    columns = _columns(wide)
    table = plain_table(f"Rules and functions ({report['method']}), decisions of {dataset!r}")
    for header, justify, _ in columns:
        numeric = justify == "right"
        table.add_column(header, justify=justify, no_wrap=numeric, overflow="fold", min_width=None if numeric else 8)
    for lf in report["lfs"]:
        table.add_row(*(cell(lf) for _, _, cell in columns))
    print_whole(table, console)
    console.print(LF_TABLE_NOTES + (WIDE_NOTES if wide else " --wide shows every column, --json everything."),
                  highlight=False, style="dim")
    accepts = ", ".join(f"{label} {n:,}" for label, n in report["accepts_per_label"].items())
    console.print(f"Accepts per label: {accepts}. Questions are ranked by the {report['handoff']['scorer']}. "
                  f"Probabilities: {report.get('method_reason') or report['method']}.", highlight=False)
    for line in describe(report["estimates"]):
        console.print(line, highlight=False)
    runs = report["handoff"]["runs"]
    if runs:
        history = plain_table("Models trained from the decisions, scored with the rules on the same held-out texts "
                             "(F estimated over the spans either predicts)")
        for header in ("decisions", "model F", "rules F", "model acc.", "rules acc.", "model's own spans (asked)",
                       "entered the loop", "pipeline to use"):
            history.add_column(header, justify="right", no_wrap=True)
        for run in runs:
            history.add_row(f"{run['decisions']:,}", _share(run["model_f"]), _share(run["rules_f"]),
                            _share(run["model_accuracy"]), _share(run["rules_accuracy"]), _own_spans(run),
                            _entered(run), _pipeline(run))
        print_whole(history, console)
        last = runs[-1]
        if last.get("pipeline_path"):
            console.print(f"The last training's pipeline, {_pipeline(last)}: spacy.load({last['pipeline_path']!r}). The "
                          "corrected rules are handed over unless the model after them, then alone, beats the choice so "
                          f"far on the held-out texts in {HANDOVER_CONFIDENCE:.0%} of resamples (the share is shown).",
                          highlight=False)


def _pipeline(run: dict[str, Any]) -> str:
    """The pipeline a training handed over, with how sure the held-out texts made the choice."""
    sure = run.get("pipeline_confidence")
    return (run.get("pipeline") or "") + ("" if sure is None else f" ({sure:.0%} sure)")


def _own_spans(run: dict[str, Any]) -> str:
    """The held-out spans only the model predicts, and how many of them have a decision."""
    own = run.get("model_only")
    return "" if not own else f"{own['size']:,} ({own['decided']:,})"


def _entered(run: dict[str, Any]) -> str:
    """Whether a model entered the loop, and on what grounds."""
    if not run["adopted"]:
        return "no"
    return "yes" if run.get("compared", True) else "yes (too few held-out accepts to compare)"


def plain_table(title: str) -> Table:
    """A table without side borders and one space between columns: room for the numbers."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)


def print_whole(table: Table, console: Console) -> None:
    """Print a table whose numbers are never cut: wider than the terminal if they need it.

    Text columns fold to make room; when even that is not enough (``--wide`` on 80 columns)
    the lines are longer than the terminal, which wraps them, rather than Rich cutting a number.
    """
    width = console.width
    needed = needed_width(table)
    # No point folding the names once the lines are longer than the terminal anyway.
    console.width = width if needed <= width else needed_width(table, natural=True)  # print(width=) is capped at it
    try:
        console.print(table)
    finally:
        console.width = width


def needed_width(table: Table, natural: bool = False) -> int:
    """The narrowest a :func:`plain_table` can be with every unwrappable cell whole: those
    columns at their widest cell, text columns at their ``min_width`` (or widest too, if
    ``natural``), and per column a space of padding and one of border (Rich's ``SIMPLE_HEAD``
    box draws spaces), two at the edges."""
    widths = []
    for column in table.columns:
        if column.no_wrap or natural:
            lines = (line for cell in [column.header, *column.cells] for line in str(cell).split("\n"))
            widths.append(max(Text(line).cell_len for line in lines))
        else:
            widths.append(column.min_width or 1)
    return sum(widths) + 2 * len(widths)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


# Prodigy's name for the same command.
app.command("db-stats", help="Alias of `stats`.")(stats_cli)


def print_stats(db: str, stats: list[DatasetStats], console: Console) -> None:
    if not stats:
        console.print(f"No datasets in {db}.", highlight=False)
        return
    table = plain_table(f"Datasets in {db}")
    table.add_column("dataset", overflow="fold", min_width=8)
    table.add_column("created", no_wrap=True)
    for header in ("texts", "questions", "accept", "reject", "ignore"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("annotators", overflow="fold", min_width=10)
    for s in stats:
        table.add_row(
            Text(s.name), datetime.fromtimestamp(s.created).strftime("%Y-%m-%d"),
            f"{s.examples:,}", f"{s.questions:,}", f"{s.accept:,}", f"{s.reject:,}", f"{s.ignore:,}",
            Text(", ".join(s.annotators)),
        )
    print_whole(table, console)

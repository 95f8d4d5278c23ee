"""``bootstrap stats``: the datasets of a database and their counts (alias ``db-stats``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..store import DEFAULT_DB, DatasetStats, Store, UnknownDataset
from ._util import DB_OPTION, app, fail, reports_input_errors, split_patterns_and_texts


@app.command("stats")
@reports_input_errors
def stats_cli(
    files: Annotated[Optional[list[Path]], typer.Argument(help="Pattern files, then the texts: adds the per-rule table.")] = None,
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    dataset: Annotated[str, typer.Option(help="Dataset whose decisions the per-rule table counts.")] = "bootstrap",
    lfs: Annotated[Optional[Path], typer.Option("--lfs", help="Python file of labeling functions, as given to the session.")] = None,
    label: Annotated[Optional[list[str]], typer.Option("--label", help="Only these labels, as given to the session.")] = None,
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() used to tokenize.")] = "en",
    as_json: Annotated[bool, typer.Option("--json", help="Print the datasets (and rules) as JSON on stdout.")] = False,
) -> None:
    """List the datasets with their texts, questions, answers and annotators; with PATTERNS... TEXTS,
    also every rule and labeling function: coverage, conflicts, LabelModel accuracy and precision
    from the dataset's decisions (all, and exploration only: unbiased), with 95% intervals."""
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
        print_lf_stats(dataset, lf_stats, console)


def _lf_stats(store: Store, files: list[Path], dataset: str, lfs, labels, lang: str) -> dict:
    from ..session import Session, build_table

    pattern_files, texts = split_patterns_and_texts(files)
    if texts is None:
        fail("give the pattern files, then the texts")
    store.dataset_id(dataset, create=False)
    table = build_table(pattern_files, texts, lfs=lfs, labels=labels, lang=lang)
    session = Session(store, dataset, table)  # replays the dataset's decisions (and its adopted model)
    progress = session.progress()
    return {"method": session.aggregate.method, "lfs": session.lf_stats(),
            "accepts_per_label": progress["accepts_per_label"], "handoff": progress["handoff"]}


def print_lf_stats(dataset: str, report: dict, console: Console) -> None:
    from ..aggregate import format_interval

    table = Table(title=f"Rules and functions ({report['method']}), decisions of {dataset!r}")
    for header, justify in (("name", "left"), ("kind", "left"), ("label", "left"), ("votes", "right"),
                            ("conflicts", "right"), ("LM acc.", "right"), ("precision", "right"),
                            ("from decisions", "right"), ("exploration only", "right")):
        table.add_column(header, justify=justify, no_wrap=True)
    for lf in report["lfs"]:
        accuracy = lf["label_model_accuracy"]
        table.add_row(
            Text(lf["name"]), lf["kind"], Text(("not " if lf["negative"] else "") + (lf["label"] or "")),
            f"{lf['coverage']:,}", f"{lf['conflicts']:,}", "–" if accuracy is None else f"{accuracy:.2f}",
            f"{lf['precision']:.2f}", format_interval(lf["from_decisions"]), format_interval(lf["from_exploration"]),
        )
    console.print(table)
    accepts = ", ".join(f"{label} {n:,}" for label, n in report["accepts_per_label"].items())
    console.print(f"Accepts per label: {accepts}. Questions are ranked by the {report['handoff']['scorer']}.",
                  highlight=False)
    runs = report["handoff"]["runs"]
    if runs:
        history = Table(title="Models trained from the decisions, scored with the rules on the same held-out decisions")
        for header in ("decisions", "model F", "rules F", "model acc.", "rules acc.", "entered the loop"):
            history.add_column(header, justify="right")
        for run in runs:
            history.add_row(f"{run['decisions']:,}", _share(run["model_f"]), _share(run["rules_f"]),
                            _share(run["model_accuracy"]), _share(run["rules_accuracy"]), "yes" if run["adopted"] else "no")
        console.print(history)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


# Prodigy's name for the same command.
app.command("db-stats", help="Alias of `stats`.")(stats_cli)


def print_stats(db: str, stats: list[DatasetStats], console: Console) -> None:
    if not stats:
        console.print(f"No datasets in {db}.", highlight=False)
        return
    table = Table(title=f"Datasets in {db}")
    table.add_column("dataset", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for header in ("texts", "questions", "accept", "reject", "ignore"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("annotators", min_width=10)
    for s in stats:
        table.add_row(
            s.name, datetime.fromtimestamp(s.created).strftime("%Y-%m-%d"),
            f"{s.examples:,}", f"{s.questions:,}", f"{s.accept:,}", f"{s.reject:,}", f"{s.ignore:,}",
            ", ".join(s.annotators),
        )
    console.print(table)

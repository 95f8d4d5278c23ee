"""``bootstrap stats``: the datasets of a database and their counts (alias ``db-stats``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..store import DEFAULT_DB, DatasetStats, Store
from ._util import DB_OPTION, app, fail


@app.command("stats")
def stats_cli(
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="Print the datasets as JSON on stdout.")] = False,
) -> None:
    """List the datasets with their texts, questions, answers and annotators."""
    try:
        with Store(db, create=False) as store:
            stats = store.datasets()
    except FileNotFoundError as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps({"db": db, "datasets": [s.to_dict() for s in stats]}, indent=2, ensure_ascii=False))
    else:
        print_stats(db, stats, Console())


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

"""``bootstrap export DATASET``: the decisions as JSONL in Prodigy's task format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Iterable, TextIO

import typer

from ..config import DEFAULT_DB
from ..store import Store, UnknownDataset
from ..tasks import ANSWERS, dumps_task
from ._util import DB_OPTION, app, console, fail


@app.command("export")
def export_cli(
    dataset: Annotated[str, typer.Argument(help="The dataset whose decisions to write.")],
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    output: Annotated[str, typer.Option("--output", "-o", help="JSONL file to write, or - for stdout.")] = "-",
    answer: Annotated[list[str], typer.Option(help="Only these answers (repeat the option): accept, reject, ignore.")] = list(ANSWERS),
) -> None:
    """Write every live decision of DATASET as a Prodigy binary NER task, one JSON object a line."""
    unknown = [value for value in answer if value not in ANSWERS]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)} (choose from {', '.join(ANSWERS)})", param_hint="'--answer'")
    try:
        with Store(db, create=False) as store:
            if output == "-":
                count = export_decisions(store, dataset, answer, typer.get_text_stream("stdout"))
            else:
                with Path(output).open("w", encoding="utf8") as file:
                    count = export_decisions(store, dataset, answer, file)
    except (FileNotFoundError, UnknownDataset) as error:
        fail(str(error))
    console.print(f"Exported {count:,} decisions of {dataset!r}" + ("" if output == "-" else f" to {output}"), highlight=False)


def export_decisions(store: Store, dataset: str, answers: Iterable[str], file: TextIO) -> int:
    """Write the tasks as JSONL; returns how many."""
    count = 0
    for task in store.export_tasks(dataset, answers):
        file.write(dumps_task(task) + "\n")
        count += 1
    return count

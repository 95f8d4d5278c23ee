"""``bootstrap import DATASET FILE``: decisions in Prodigy's task format into a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import DEFAULT_DB, LANG
from ..store import Store
from ._util import DB_OPTION, app, blank_nlp, console, reports_input_errors


@app.command("import")
@reports_input_errors
def import_cli(
    dataset: Annotated[str, typer.Argument(help="The dataset to add the decisions to (created if new).")],
    file: Annotated[Path, typer.Argument(help="JSONL of Prodigy NER tasks with an \"answer\" (e.g. from prodigy db-out).")],
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() that gives token offsets a task lacks.")] = LANG,
    annotator: Annotated[Optional[str], typer.Option(help="Store every decision under this annotator (default: the task's _annotator_id).")] = None,
    skip_misaligned: Annotated[bool, typer.Option(help="Leave out tasks whose span cuts a token, instead of stopping.")] = False,
) -> None:
    """Add existing decisions (Prodigy binary or manual NER datasets) to DATASET, all or nothing."""
    nlp = blank_nlp(lang)
    with Store(db) as store:
        result = store.import_tasks(dataset, file, nlp=nlp, annotator=annotator, skip_misaligned=skip_misaligned)
    console.print(
        f"Imported {result.answers:,} decisions from {result.tasks:,} tasks into {dataset!r}"
        f" ({result.duplicates:,} already stored, {result.reviewed:,} texts fully reviewed,"
        f" {result.skipped_manual:,} rejected or ignored manual tasks skipped"
        + (f", {result.skipped_misaligned:,} tasks with spans off token boundaries left out" if skip_misaligned else "")
        + ").",
        highlight=False,
    )

"""``bootstrap suggest-patterns DATASET PATTERNS...``: pattern lines learned back from the decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..config import DEFAULT_DB, LANG, PHRASE_ATTR
from ..store import Store, UnknownDataset
from ._util import DB_OPTION, app, blank_nlp, console, fail, reports_input_errors, validate_phrase_attr


@app.command("suggest-patterns")
@reports_input_errors
def suggest_cli(
    dataset: Annotated[str, typer.Argument(help="The dataset whose decisions to learn from.")],
    patterns: Annotated[list[Path], typer.Argument(metavar="PATTERNS...", help="The pattern files the decisions are compared with.")],
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    min_count: Annotated[int, typer.Option(min=1, help="Decisions a suggestion must get right that the rules get wrong.")] = 2,
    output: Annotated[str, typer.Option("--output", "-o", help="JSONL file to write the pattern lines to, or - for stdout.")] = "-",
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() used to tokenize, as given to the session.")] = LANG,
    phrase_attr: Annotated[str, typer.Option(callback=validate_phrase_attr, help="Token attribute phrase patterns match on, as given to the session.")] = PHRASE_ATTR,
) -> None:
    """Propose pattern lines learned back from DATASET's decisions, to review and add to your rules.

    Accepted spans no rule matches become phrase patterns (and groups of them token patterns),
    rejected matches of rules negative ones. Each line's "comment" says how many accepted and
    rejected decisions it would have matched."""
    from ..suggest import suggest_patterns

    blank_nlp(lang)
    try:
        with Store(db, create=False) as store:
            suggestions = suggest_patterns(store, dataset, patterns, min_count=min_count, lang=lang, phrase_attr=phrase_attr)
    except (FileNotFoundError, UnknownDataset) as error:
        fail(str(error))
    lines = "".join(json.dumps(s["pattern"], ensure_ascii=False) + "\n" for s in suggestions)
    if output == "-":
        typer.echo(lines, nl=False)
    else:
        Path(output).write_text(lines, encoding="utf8")
    positive = sum(not s["negative"] for s in suggestions)
    console.print(
        f"{len(suggestions)} suggestions from the decisions of {dataset!r} ({positive} patterns, "
        f"{len(suggestions) - positive} negative patterns)" + ("" if output == "-" else f" written to {output}"),
        highlight=False,
    )

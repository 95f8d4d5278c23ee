"""``bootstrap report DATASET PATTERNS... TEXTS --output report.html``: one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import DEFAULT_DB, LANG, PHRASE_ATTR, SEED
from ..store import Store, UnknownDataset
from ._util import DB_OPTION, app, blank_nlp, console, fail, reports_input_errors, split_patterns_and_texts, validate_phrase_attr


@app.command("report")
@reports_input_errors
def report_cli(
    dataset: Annotated[str, typer.Argument(help="The dataset to report on.")],
    files: Annotated[list[Path], typer.Argument(metavar="PATTERNS... TEXTS", help="Pattern files, then the texts, as given to the session.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path("report.html"),
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    lfs: Annotated[Optional[Path], typer.Option("--lfs", help="Python file of labeling functions, as given to the session.")] = None,
    label: Annotated[Optional[list[str]], typer.Option("--label", help="Only these labels, as given to the session.")] = None,
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() used to tokenize.")] = LANG,
    phrase_attr: Annotated[str, typer.Option(callback=validate_phrase_attr, help="Token attribute phrase patterns match on.")] = PHRASE_ATTR,
    sample: Annotated[int, typer.Option(min=0, help="Texts shown with the rules' and the model's entities.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the sample of texts.")] = SEED,
    min_count: Annotated[int, typer.Option(min=1, help="Decisions a suggested pattern must fix (see suggest-patterns).")] = 2,
) -> None:
    """Write one self-contained HTML page about DATASET: counts, rules, models, suggestions, sample texts.

    No network is needed to view it: the dataset's counts per label and annotator, every rule's
    coverage, conflicts and precision with intervals, the handoff's models over the decisions,
    decisions over time, suggested patterns and a sample of texts as the rules and the model see them."""
    from ..report import ReportOptions, write_report

    pattern_files, texts = split_patterns_and_texts(files)
    if texts is None:
        raise typer.BadParameter("give the pattern files, then the texts", param_hint="FILES")
    blank_nlp(lang)
    options = ReportOptions(sample=sample, seed=seed, min_count=min_count, lang=lang, phrase_attr=phrase_attr)
    try:
        with Store(db, create=False) as store:
            data = write_report(store, dataset, pattern_files, texts, output, lfs=lfs, labels=label, options=options)
    except (FileNotFoundError, UnknownDataset) as error:
        fail(str(error))
    console.print(
        f"Wrote {output}: {data['counts']['total']:,} decisions, {len(data['lfs'])} rules and functions, "
        f"{len(data['runs'])} model runs, {len(data['samples'])} sample texts.",
        highlight=False,
    )

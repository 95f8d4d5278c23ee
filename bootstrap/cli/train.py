"""``bootstrap train DATASET --output DIR``: a spaCy NER pipeline from the dataset's decisions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..store import DEFAULT_DB, Store, UnknownDataset
from ._util import DB_OPTION, app, blank_nlp, console, fail, reports_input_errors

# ``bootstrap.train.DEFAULT_SCHEME``, written out so that ``--help`` need not import spaCy;
# tests/test_cli_startup.py checks that the two agree.
DEFAULT_SCHEME = "sparse-outside"
SCHEME_HELP = 'Which tokens no decision covers count as "not an entity" in training (README: "Training schemes").'


@app.command("train")
@reports_input_errors
def train_cli(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for config.cfg, train/dev .spacy and model-best/.")],
    dataset: Annotated[Optional[str], typer.Argument(help="The dataset whose decisions to train on.")] = None,
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    from_jsonl: Annotated[Optional[Path], typer.Option("--from-jsonl", help="Train from a Prodigy JSONL file of decisions instead of a dataset.")] = None,
    scheme: Annotated[str, typer.Option(help=SCHEME_HELP)] = DEFAULT_SCHEME,
    eval_path: Annotated[Optional[Path], typer.Option("--eval", help="JSONL with complete annotations ({text, spans}) to score the model on.")] = None,
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() the pipeline starts from.")] = "en",
    seed: Annotated[int, typer.Option(help="Random seed: the same decisions and seed give the same model.")] = 0,
    max_epochs: Annotated[int, typer.Option(help="Passes over the training decisions at most.")] = 20,
    patience: Annotated[int, typer.Option(help="Stop after this many evaluations (about one an epoch) without improvement.")] = 3,
    dev_share: Annotated[float, typer.Option(help="Share of texts held out to pick the best model and score it.")] = 0.2,
) -> None:
    """Train a spaCy NER pipeline from binary decisions; `spacy.load(OUTPUT/model-best)` opens it."""
    from ..train import SCHEMES, read_decisions, train_from_decisions

    if (dataset is None) == (from_jsonl is None):
        raise typer.BadParameter("give a DATASET or --from-jsonl FILE (one of them)")
    if scheme not in SCHEMES:
        raise typer.BadParameter(f"{scheme!r} (choose from {', '.join(SCHEMES)})", param_hint="'--scheme'")
    nlp = blank_nlp(lang)
    if from_jsonl is not None:
        tasks, proposed = read_decisions(from_jsonl), None
    else:
        try:
            with Store(db, create=False) as store:
                tasks = list(store.export_tasks(dataset))
                proposed = store.proposed_spans(dataset)
        except (FileNotFoundError, UnknownDataset) as error:
            fail(str(error))
    try:
        result = train_from_decisions(
            nlp, tasks, output, proposed=proposed, scheme=scheme, gold=eval_path, seed=seed,
            max_epochs=max_epochs, patience=patience, dev_share=dev_share, progress=True, log=console.print,
        )
    except ValueError as error:
        fail(str(error))
    typer.echo(json.dumps(result["scores"], indent=2))
    console.print(f"Saved the pipeline to {result['model']} (spacy.load opens it); config.cfg and the .spacy files "
                  f"are in {output}", highlight=False)

"""``bootstrap train DATASET --rules PATTERNS --output DIR``: the pipeline the session's handoff trains.

With ``--rules`` (and ``--lfs`` if the session had them), the model is trained on every stored
text of the dataset, weakly labelled by those rules and corrected by every decision
(``bootstrap.weak_labels``): the same training set, and so the same model for the same seed,
as the session's handoff. Without them, only the decided texts can be used (``--scheme``), and
such a model caps below the rules (README, "Training").
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Iterable, Iterator, Optional

import typer
from rich.markup import escape

from ..config import DEFAULT_DB, LANG, MAX_EPOCHS, SEED
from ..store import Store, UnknownDataset
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
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() the pipeline starts from.")] = LANG,
    seed: Annotated[int, typer.Option(help="Random seed: the same decisions and seed give the same model.")] = SEED,
    max_epochs: Annotated[int, typer.Option(help="Passes over the training data at most (with --rules, more for a small corpus, as the handoff does).")] = MAX_EPOCHS,
    patience: Annotated[Optional[int], typer.Option(help="Stop after this many evaluations (about one an epoch) without improvement. \\[default: the handoff's with --rules, else 3]")] = None,
    dev_share: Annotated[float, typer.Option(help="Share of texts held out to pick the best model and score it.")] = 0.2,
    rules: Annotated[Optional[list[Path]], typer.Option("--rules", help="The session's pattern file(s): train on every stored text, weakly labelled by them and corrected by the decisions, as the handoff does (repeat for several files).")] = None,
    lfs: Annotated[Optional[Path], typer.Option("--lfs", help="The session's labeling functions (with --rules).")] = None,
    max_texts: Annotated[Optional[int], typer.Option(help="With --rules: texts in the training set at most (every decided one is in). \\[default: the handoff's]")] = None,
) -> None:
    """Train a spaCy NER pipeline from binary decisions; `spacy.load(OUTPUT/model-best)` opens it."""
    from ..train import SCHEMES, read_decisions, train_from_decisions

    if (dataset is None) == (from_jsonl is None):
        raise typer.BadParameter("give a DATASET or --from-jsonl FILE (one of them)")
    if rules:
        if dataset is None:
            raise typer.BadParameter("--rules trains on a dataset's stored texts: give the DATASET", param_hint="'--rules'")
        return _train_whole_corpus(output, dataset, db, rules, lfs, eval_path, lang, seed, max_epochs, patience,
                                   max_texts)
    if lfs is not None:
        raise typer.BadParameter("--lfs goes with --rules", param_hint="'--lfs'")
    patience = 3 if patience is None else patience
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
        with colour_only_on_a_terminal():
            result = train_from_decisions(
                nlp, tasks, output, proposed=proposed, scheme=scheme, gold=eval_path, seed=seed,
                max_epochs=max_epochs, patience=patience, dev_share=dev_share, progress=True, log=console.print,
            )
    except ValueError as error:
        fail(str(error))
    typer.echo(json.dumps(result["scores"], indent=2))
    console.print(f"Saved the pipeline to {result['model']} (spacy.load opens it); config.cfg and the .spacy files "
                  f"are in {output}", highlight=False)
    warn_if_it_learned_nothing(result["model"], tasks, result["scores"]["held_out_decisions"])



def _train_whole_corpus(
    output: Path, dataset: str, db: str, rules: list[Path], lfs: Path | None, eval_path: Path | None, lang: str,
    seed: int, max_epochs: int, patience: int | None, max_texts: int | None,
) -> None:
    """The handoff's training, from the store: rules over the stored texts, decisions, weak labels."""
    import dataclasses
    import time

    import spacy

    from ..config import PipelineRules, SessionConfig
    from ..train import evaluate_gold
    from ..weak_labels import train_model, training_set_from_store

    config = SessionConfig(lang=lang, seed=seed)
    patience = config.handoff.patience if patience is None else patience
    weak = config.weak_labels if max_texts is None else dataclasses.replace(config.weak_labels, max_texts=max_texts)
    nlp = blank_nlp(lang)
    try:
        with Store(db, create=False) as store:
            started = time.process_time()
            training_set = training_set_from_store(nlp, store, dataset, rules, lfs=lfs, config=weak, seed=seed,
                                                   aggregate_options=config.aggregate)
    except (FileNotFoundError, UnknownDataset) as error:
        fail(str(error))
    stats = training_set.stats
    console.print(
        f"Training on {stats['train_texts']:,} texts ({stats['decided_texts']:,} with decisions; "
        f"{sum(stats['entities'].values()):,} entities: {stats['entities']['decision']:,} decided, "
        f"{stats['entities']['carried']:,} carried, {stats['entities']['weak']:,} weak — {training_set.method_reason}); "
        f"{stats['held_out_texts']:,} texts with {stats['held_out_decisions']:,} decisions held out "
        f"({time.process_time() - started:.1f} CPU s to build)", highlight=False)
    try:
        with colour_only_on_a_terminal():
            result = train_model(training_set, output, lang=lang, seed=seed, max_epochs=max_epochs, patience=patience,
                                 progress=True, rules=PipelineRules(tuple(str(path) for path in rules)))
    except ValueError as error:
        fail(str(error))
    scores = dict(result["scores"])  # "comparison": model and rules on the held-out texts, as the handoff scores them
    pipeline = scores["pipeline"]
    if eval_path is not None:
        scores["gold"] = evaluate_gold(spacy.load(result["pipeline"]), eval_path)
    typer.echo(json.dumps(scores, indent=2))
    chosen = "" if "held_out_f" not in pipeline else (
        ", chosen on the held-out texts from " + ", ".join(
            f"{name} (F {_f(f)}" + _trial(pipeline["trials"].get(name)) + ")" for name, f in pipeline["held_out_f"].items()))
    console.print(f"Saved the pipeline to {result['pipeline']} (spacy.load opens it: {pipeline['name']}{chosen}) after "
                  f"{result['scores']['train_cpu_seconds']:.0f} CPU s of training; the model alone is {result['model']}, "
                  f"config.cfg and the .spacy files are in {output}", highlight=False)
    with Store(db, create=False) as store:
        tasks = list(store.export_tasks(dataset))
    warn_if_it_learned_nothing(result["model"], tasks, result["scores"].get("held_out_decisions") or {}, with_rules=True)


def _f(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _trial(trial: dict[str, Any] | None) -> str:
    """How a pipeline fared against the choice before it (``comparison.choose``)."""
    return "" if trial is None else f", beats {trial['against']} in {_f(trial['confidence'], '.0%')} of resamples"


@contextlib.contextmanager
def colour_only_on_a_terminal() -> Iterator[None]:
    """spaCy's training table (wasabi) colours its lines whatever stderr is; a log file or a pipe
    should get plain text. ``ANSI_COLORS_DISABLED`` is wasabi's switch, read when the table starts."""
    if sys.stderr.isatty() or "ANSI_COLORS_DISABLED" in os.environ:
        yield
        return
    os.environ["ANSI_COLORS_DISABLED"] = "1"
    try:
        yield
    finally:
        del os.environ["ANSI_COLORS_DISABLED"]


def warn_if_it_learned_nothing(model: Path, tasks: Iterable[dict], held_out: dict, sample: int = 200, *,
                               with_rules: bool = False) -> None:
    """Say so when the pipeline finds none of the held-out accepted spans (or, with none held out,
    none of those it was trained on): with a few decisions (30, in the case that prompted this)
    every epoch scores F 0.00 and the saved model returns ``()`` or stray spans, which looks like
    success unless someone says otherwise."""
    from ..handoff import HandoffPolicy

    accepted: dict[str, set[tuple[int, int, str]]] = {}
    for task in tasks:
        if task.get("answer") == "accept":
            spans = {(span["start"], span["end"], span.get("label", "")) for span in task.get("spans", [])}
            accepted.setdefault(task["text"], set()).update(spans)
    if held_out.get("accepted"):
        if held_out.get("accept_accuracy"):
            return
        where = f"none of the {held_out['accepted']:,} held-out accepted spans"
    elif _finds_any(model, accepted, sample):
        return
    else:
        where = "none of the accepted spans it was trained on"
    per_label: dict[str, int] = {}
    for spans in accepted.values():
        for *_, label in spans:
            per_label[label] = per_label.get(label, 0) + 1
    counts = ", ".join(f"{label} {n:,}" for label, n in sorted(per_label.items())) or "none"
    advice = ("answer more questions, and see with `bootstrap check` whether the rules match the entities (their "
              "votes label every text it trains on)." if with_rules else
              "with fewer, answer more questions, or train with --rules PATTERNS, which also learns from the rules' "
              "votes on every stored text.")
    console.print(
        f"[bold yellow]warning[/] The model finds {where}: it has learned nothing useful yet (accepted spans per "
        f"label: {escape(counts)}). The session's handoff waits for {HandoffPolicy().min_accepts} accepts per label "
        f"before its first model; {advice}",
        highlight=False,
    )


def _finds_any(model: Path, accepted: dict[str, set[tuple[int, int, str]]], sample: int) -> bool:
    import spacy

    texts = list(accepted)[:sample]
    return any(accepted[doc.text] & {(e.start_char, e.end_char, e.label_) for e in doc.ents}
               for doc in spacy.load(model).pipe(texts))

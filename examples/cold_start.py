"""The full cold start on one example: rules only -> decisions -> handoff -> a pipeline spacy.load opens.

    python examples/cold_start.py [examples/diseases] [--decisions 150] [--output DIR]

What it does, in the order a team would:

1. Holds out a stable 20% of the example's gold texts as a test split (the split ``bootstrap
   simulate`` uses): no question is ever asked about them, so the scores at the end are not
   measured on texts the model was taught from.
2. Starts the real :class:`bootstrap.session.Session` over the example's ``patterns.jsonl``, the
   other texts and ``lfs.py`` when the example has one, with an ``auto`` handoff sized for a
   small example (the page's default waits for 20 accepts and retrains every 200 decisions),
   and lets it train its first model at once on the rules' weak labels, as the CLI does.
3. Answers its questions from ``gold.jsonl`` the way a person does on the page: ``next_question``,
   then ``answer`` with accept when gold has exactly that span and label, reject otherwise. It
   waits for a background refit or training before the next question, as a person (seconds per
   answer, not milliseconds) would give it time to.
4. Prints each handoff run's model-vs-rules F on held-out decisions and which scorer ranks the
   questions, then trains the final pipeline the way the handoff and ``bootstrap train --rules``
   do — on every text, weakly labelled by the rules and corrected by the decisions
   (:mod:`bootstrap.weak_labels`) — opens it with ``spacy.load``, shows the entities it finds in
   a few test texts, and scores it and the rules alone against the test split's gold.

The script lives outside the package on purpose: it only calls public pieces of ``bootstrap``.
Running it again with the same ``--output`` resumes the same dataset (answered questions are not
asked again); ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import spacy
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from spacy.language import Language
from spacy.tokens import Doc

from bootstrap.config import PipelineRules
from bootstrap.handoff import HandoffPolicy
from bootstrap.session import Session, SessionConfig
from bootstrap.simulate import GoldAnnotator, SimulationData, prepare_data, rules_scores, settle
from bootstrap.train import evaluate_gold, gold_docs
from bootstrap.weak_labels import build_training_set, train_model

EXAMPLES = Path(__file__).resolve().parent
ANNOTATOR = "cold-start"
console = Console()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("example", nargs="?", type=Path, default=EXAMPLES / "diseases",
                        help="Example folder with patterns.jsonl, texts.jsonl, gold.jsonl and optionally lfs.py.")
    parser.add_argument("--decisions", type=int, default=150, help="Questions to answer (default 150).")
    parser.add_argument("--output", type=Path, default=None,
                        help="Folder for the database, the handoff's models and the final pipeline "
                             "(default ./cold-start/<example>).")
    parser.add_argument("--min-accepts", type=int, default=15,
                        help="Accepts per label before the first handoff training (the page's default is 20).")
    parser.add_argument("--every", type=int, default=50,
                        help="Decisions between two handoff trainings (the page's default is 200).")
    parser.add_argument("--max-epochs", type=int, default=10, help="Epochs at most, per handoff model and for the final one.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=5, help="Test texts whose entities are printed.")
    parser.add_argument("--fresh", action="store_true", help="Delete OUTPUT's database and models first.")
    parser.add_argument("--report", type=Path, default=None,
                        help="Also write the figures (handoff runs, scorer, P/R/F, entities shown) to this JSON file.")
    args = parser.parse_args(argv)
    if args.decisions < 1:
        parser.error("--decisions must be at least 1")
    for name in ("patterns.jsonl", "texts.jsonl", "gold.jsonl"):
        if not (args.example / name).is_file():
            parser.error(f"{args.example} has no {name}")
    if args.output is None:
        args.output = Path("cold-start") / args.example.resolve().name
    return args


def answer_questions(session: Session, annotator: GoldAnnotator, decisions: int) -> None:
    """Ask and answer until ``decisions`` answers are stored (or no question is left), with a progress bar."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=console, transient=False) as bar:
        done = session.progress()["answers"]
        task_id = bar.add_task("answering", total=decisions, completed=min(done, decisions), status="")
        while done < decisions:
            settle(session)  # a refit or a handoff training finishes before the next question, as for a person
            task = session.next_question(ANNOTATOR)
            if task is None:
                bar.update(task_id, description="no question left")
                break
            done = session.answer(ANNOTATOR, task["task_hash"], annotator(task))["progress"]["answers"]
            bar.update(task_id, completed=min(done, decisions), status=status_line(session.progress()))
        settle(session)
        bar.update(task_id, status=status_line(session.progress()))


def status_line(progress: dict[str, Any]) -> str:
    """What the page's progress row says: answers by kind, who ranks, whether a model is training."""
    handoff = progress["handoff"]
    by = progress["by_answer"]
    training = ", training a model" if handoff["training"] else ""
    return (f"{by['accept']} accept / {by['reject']} reject, {progress['remaining']} open; "
            f"{handoff['scorer']} rank{training}")


def runs_table(progress: dict[str, Any]) -> Table:
    """Each handoff run: model vs rules F on the same held-out decisions, and whether it won."""
    table = Table(title="Handoff runs (F on held-out decisions; '-': none to compare on yet)")
    for column in ("at decisions", "model", "rules", "model in the loop"):
        table.add_column(column, justify="right")
    for run in progress["handoff"]["runs"]:
        table.add_row(str(run["decisions"]), fmt(run["model_f"]), fmt(run["rules_f"]),
                      "yes" if run["adopted"] else "no")
    return table


def scores_table(rows: dict[str, dict[str, Any]], texts: int) -> Table:
    table = Table(title=f"Against gold on {texts} held-out test texts (no question asked about them)")
    table.add_column("")
    for column in ("precision", "recall", "F"):
        table.add_column(column, justify="right")
    for name, scores in rows.items():
        table.add_row(name, fmt(scores["precision"]), fmt(scores["recall"]), fmt(scores["f"]))
    return table


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run_session(args: argparse.Namespace, data: SimulationData, lfs: Path | None) -> dict[str, Any]:
    """Rules only, then decisions and handoffs: the part a person does on the page."""
    policy = HandoffPolicy(mode="auto", min_accepts=args.min_accepts, every=args.every,
                           max_epochs=args.max_epochs, models_dir=str(args.output / "handoff-models"))
    session = Session.from_files([args.example / "patterns.jsonl"], data.pool, db=args.output / "decisions.db",
                                 dataset=args.example.name, lfs=lfs, config=SessionConfig(seed=args.seed, handoff=policy))
    try:
        progress = session.progress()
        console.print(f"{progress['total']} questions from {len(session.table.lf_names)} rules and functions; "
                      f"aggregate: {session.aggregate.method_reason}; handoff: auto, a first model now, then "
                      f"after {policy.min_accepts} accepts every {policy.every} decisions")
        session.start_handoff()
        answer_questions(session, GoldAnnotator(data.gold, seed=args.seed), args.decisions)
        session.wait_for_handoff()
        progress = session.progress()
        console.print(runs_table(progress))
        console.print(f"Questions are ranked by: [bold]{progress['handoff']['scorer']}[/] ({scorer_reason(progress)})")
        tasks = list(session.store.export_tasks(session.dataset))
        training_set = build_training_set(spacy.blank("en"), session.rules_table, tasks,
                                          session.store.texts(session.dataset), session.config.weak_labels,
                                          seed=args.seed, aggregate_options=session.config.aggregate)
        return {"progress": progress, "tasks": tasks, "training_set": training_set,
                "questions": session.rules_table.n_questions}
    finally:
        session.close()


def scorer_reason(progress: dict[str, Any]) -> str:
    handoff = progress["handoff"]
    if handoff["scorer"] == "model":
        adopted = [run for run in handoff["runs"] if run["adopted"]]
        if adopted and not adopted[-1].get("compared", True):
            return "a model entered as a proposer: too few held-out accepts to compare it with the rules yet"
        return "a model beat the rules on held-out decisions and entered the loop"
    if not handoff["runs"]:
        return "no model trained"
    return "no model beat the rules on held-out decisions"


def show_entities(nlp: Language, texts: list[str]) -> list[dict[str, Any]]:
    """Print and return what the trained pipeline finds in a few texts."""
    shown = []
    for doc in nlp.pipe(texts):
        shown.append({"text": doc.text, "entities": [[ent.text, ent.label_] for ent in doc.ents]})
        console.print(f"  {doc.text[:90]}{'...' if len(doc.text) > 90 else ''}", highlight=False)
        console.print(f"    -> {[(ent.text, ent.label_) for ent in doc.ents]}", highlight=False)
    return shown


CHOICES = {"rules + ner": ("corrected rules + ner", "  the corrected rules before its ner"),  # key, row
           "rules": ("corrected rules", "  the corrected rules alone")}


def compare_with_rules(args: argparse.Namespace, data: SimulationData, reference: list[Doc], lfs: Path | None,
                       trained: Language, decisions: int, model: Language,
                       choices: dict[str, str]) -> dict[str, dict[str, Any]]:
    """P/R/F on the test split: the "rules alone" lines of ``bootstrap simulate``, the pipeline
    the training handed over, its model alone and the other pipelines it chose from (``choices``:
    name -> path), keyed by :data:`CHOICES` in what it returns."""
    baseline = rules_scores([args.example / "patterns.jsonl"], data.test, reference, lfs=lfs, lang="en",
                            phrase_attr="ORTH", seed=args.seed)
    voters = "rules and lfs.py" if lfs else "rules"
    rows = {  # key -> (row, scores)
        "rules": ("rules alone (positive matches no negative rule votes against)", baseline["rules"]),
        "labelmodel": (f"{voters}, no decisions (Snorkel's LabelModel p > 0.5)", baseline["labelmodel"]),
        "aggregate": (f"{voters}, no decisions (the loop's aggregate, {baseline['aggregate']['method']}, p > 0.5)",
                      baseline["aggregate"]),
        "model": (f"trained pipeline ({decisions} decisions)", evaluate_gold(trained, reference)),
        "ner": ("  its ner model alone", evaluate_gold(model, reference)),
        **{CHOICES[name][0]: (CHOICES[name][1], evaluate_gold(spacy.load(path), reference))
           for name, path in choices.items() if name in CHOICES},
    }
    console.print(scores_table(dict(rows.values()), len(reference)))
    return {key: scores for key, (_, scores) in rows.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fresh:
        shutil.rmtree(args.output, ignore_errors=True)
    args.output.mkdir(parents=True, exist_ok=True)
    lfs = args.example / "lfs.py" if (args.example / "lfs.py").is_file() else None
    nlp = spacy.blank("en")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        data = prepare_data(args.example / "texts.jsonl", args.example / "gold.jsonl", None, Path(tmp))
        reference = gold_docs(nlp, data.test)
        console.rule(f"[bold]{args.example.name}[/]: rules only, {len(data.pool_hashes)} texts to ask about, "
                     f"{len(reference)} held out for the final scores")
        session = run_session(args, data, lfs)

        console.rule("[bold]The final pipeline[/]")
        tasks = session["tasks"]
        stats = session["training_set"].stats
        console.print(f"Training on {stats['train_texts']} texts: weak labels corrected by {len(tasks)} decisions "
                      f"({stats['entities']['decision']} decided, {stats['entities']['carried']} carried, "
                      f"{stats['entities']['weak']} weak entities; bootstrap.weak_labels) ...")
        result = train_model(session["training_set"], args.output / "model", seed=args.seed, max_epochs=args.max_epochs,
                             rules=PipelineRules((str(args.example / "patterns.jsonl"),)))
        model_path, pipeline = Path(result["pipeline"]), result["scores"]["pipeline"]
        trained = spacy.load(model_path)
        trials = pipeline.get("trials") or {}
        held_out = ", ".join((f"{name} {f:.2f}" if f is not None else f"{name} -")
                             + (f" (beats {trials[name]['against']} in {trials[name]['confidence']:.0%} of resamples)"
                                if (trials.get(name) or {}).get("confidence") is not None else "")
                             for name, f in (pipeline.get("held_out_f") or {}).items())
        console.print(f"spacy.load({str(model_path)!r}): pipeline {trained.pipe_names}, the {pipeline['name']!r} one "
                      + (f"(F on the held-out texts: {held_out})" if held_out else "(nothing held out to choose by)"))
        shown = show_entities(trained, [doc.text for doc in reference[: args.show]])
        scores = compare_with_rules(args, data, reference, lfs, trained, len(tasks), spacy.load(result["model"]),
                                    pipeline.get("choices") or {})
    if args.report is not None:
        handoff = session["progress"]["handoff"]
        args.report.write_text(json.dumps({
            "example": args.example.name, "decisions": len(tasks), "test_texts": len(reference),
            "questions": session["questions"], "by_answer": session["progress"]["by_answer"],
            "runs": handoff["runs"], "scorer": handoff["scorer"], "model": str(model_path), "pipeline": pipeline,
            "scores": {name: {key: value[key] for key in ("precision", "recall", "f")} for name, value in scores.items()},
            "shown": shown,
        }, indent=2) + "\n", encoding="utf8")
    db = args.output / "decisions.db"
    console.print(f"Model in {model_path}; decisions in {db} (bootstrap export {args.example.name} --db {db}); "
                  f"{time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":  # the handoff trains in a spawned process, which imports this file again
    sys.exit(main())

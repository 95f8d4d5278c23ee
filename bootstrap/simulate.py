"""Learning curves from gold data: does the loop reach a good model with fewer decisions than random order?

``bootstrap simulate`` runs the real loop — a :class:`~bootstrap.session.Session` over its own
store and ranking, the object the annotation page drives, not a copy — with an annotator that
answers from gold (:func:`bootstrap.gold.gold_answer`: accept exactly the gold span and label,
reject everything else; optionally a share of answers flipped, to see what annotator mistakes
do). Strategies, all with the same budget of decisions and the same seed:

* ``active``: the product's ranking, with whatever the session does (refits, handoff);
* ``random``: the same session and candidates with ``exploration=1.0``: every question drawn
  uniformly from the open ones, i.e. annotation in random order;
* ``rules``: no decisions at all: the rules' own predictions (every positive match no negative
  rule of its label votes against, longest first without overlaps) and the LabelModel's
  labels (``aggregate.labelled``), two flat lines;
* ``gold``: a model trained on the pool's texts fully annotated: the ceiling, a flat line.

At 0 decisions and every ``checkpoint`` decisions after, the decision strategies train a model
the way ``bootstrap train`` and the session's handoff do — on the whole pool, weakly labelled by
the rules and corrected by every decision so far (:func:`bootstrap.weak_labels.build_training_set`)
— and score the pipeline the training hands over (the model, or the rules corrected by the
decisions with or without it: :func:`bootstrap.weak_labels.train_model`), and the model alone
beside it (``ner``), on a gold test split no question is ever asked about. The model at 0 decisions
is the rules, learned; what the curves add over it is what the decisions taught. A checkpoint
whose training set holds no entity trains nothing and scores 0, marked untrained.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans

from .aggregate import Aggregate, labelled
from .candidates import DocCandidates
from .config import LANG, MAX_EPOCHS, PHRASE_ATTR, SEED, HandoffMode, SessionConfig
from .corpus import read_texts
from .errors import InputError
from .gold import Gold, load_gold, task_answer
from .hashing import input_hash as hash_text
from .labelmatrix import CandidateTable
from .session import Session
from .table import build_table
from .train import dev_bucket, evaluate_gold, gold_docs, score_ents, token_span, train_ner
from .weak_labels import WeakLabelConfig, build_training_set, question_index, train_model

STRATEGIES = ("active", "random", "rules", "gold")
DECISION_STRATEGIES = ("active", "random")
ANNOTATOR = "simulated"
TEST_SHARE = 0.2
DEV_SHARE = 0.2  # what the training set holds out of the decisions; the ceiling holds out as much
REACH_LEVELS = (0.8, 0.9)

Answerer = Callable[[dict[str, Any]], str]


# --- the simulated annotator -----------------------------------------------------------------


@dataclass
class GoldAnnotator:
    """Answers a session's task from gold; with ``noise`` > 0 flips that share of its answers.

    Flips are drawn from ``random.Random(seed)``, one draw per question, so two runs with the same
    seed and the same questions make the same mistakes.
    """

    gold: Gold
    noise: float = 0.0
    seed: int = SEED
    asked: int = 0
    flipped: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be a share between 0 and 1, got {self.noise}")
        self._rng = random.Random(self.seed)

    def truth(self, task: dict[str, Any]) -> str:
        return task_answer(self.gold, task)

    def __call__(self, task: dict[str, Any]) -> str:
        answer = self.truth(task)
        self.asked += 1
        if self._rng.random() < self.noise:
            self.flipped += 1
            answer = "reject" if answer == "accept" else "accept"
        return answer


# --- progress ------------------------------------------------------------------------------


class Reporter:
    """What a run tells while it works. The library says nothing; the CLI draws progress bars."""

    def start(self, name: str, total: int) -> None:
        """A strategy begins; ``total`` steps (decisions, or 1 for a flat line)."""

    def advance(self, name: str, steps: int = 1) -> None:
        """``steps`` more done."""

    def note(self, name: str, message: str) -> None:
        """What the strategy is doing now (e.g. "training at 100 decisions")."""


# --- data ----------------------------------------------------------------------------------


def in_test_split(input_hash: int, share: float = TEST_SHARE) -> bool:
    """Whether a text belongs to the held-out test split: the same on every run and machine.

    The bucket comes from bits 32-47 of the input hash, not from the low digits the decisions'
    dev split uses (:func:`bootstrap.train.dev_bucket`): with the same bucket, the pool would
    hold no text the dev split could take.
    """
    return ((input_hash >> 32) & 0xFFFF) < share * 0x10000


@dataclass
class SimulationData:
    """The files a run reads, after the test split is taken out of the pool."""

    pool: Path  # texts only (no spans): the loop can never see gold
    test: Path  # gold test split, complete annotations
    pool_hashes: set[int]
    test_hashes: set[int]
    gold: Gold
    gold_path: Path


def prepare_data(texts: Path, gold_path: Path, test: Path | None, workdir: Path) -> SimulationData:
    """Write the pool (TEXTS minus every test text, spans stripped) and, without TEST, the test split.

    Every pool text must be in GOLD: the oracle would reject every candidate of a text it has no
    annotation for, which is wrong, not merely noisy.
    """
    gold = load_gold(gold_path)
    if test is None:
        test = workdir / "test.jsonl"
        with test.open("w", encoding="utf8") as out:
            for record in read_texts(gold_path):
                if in_test_split(record.input_hash):
                    out.write(json.dumps({"text": record.text, "spans": record.task.get("spans") or []}) + "\n")
    test_hashes = {record.input_hash for record in read_texts(test)}
    if not test_hashes:
        raise InputError.single(gold_path if test == workdir / "test.jsonl" else test, None,
                                "no text for the test split: GOLD needs at least a handful of texts (20% are held out)")
    pool = workdir / "pool.jsonl"
    pool_hashes: set[int] = set()
    missing: list[str] = []
    with pool.open("w", encoding="utf8") as out:
        for record in read_texts(texts):
            if record.input_hash in test_hashes:
                continue
            if record.input_hash not in gold:
                missing.append(record.source)
                continue
            pool_hashes.add(record.input_hash)
            out.write(json.dumps({"text": record.text, "meta": record.meta}) + "\n")
    if missing:
        raise InputError.single(
            texts, None, f"{len(missing):,} text(s) are not in {gold_path} (first: {missing[0]}): every pool text "
            "needs its gold annotation, or the simulated annotator would reject all its candidates")
    if not pool_hashes:
        raise InputError.single(texts, None, "no text left in the pool once the test texts are taken out")
    return SimulationData(pool, Path(test), pool_hashes, test_hashes, gold, gold_path)


VERSIONED = ("spacy", "thinc", "numpy", "blis", "torch", "snorkel")


def library_versions() -> dict[str, str]:
    """The installed versions a run's figures depend on, and the processor. The same seed and
    code train the same model only with the same libraries (``constraints.txt``) and, it seems,
    the same processor: the benchmark's first-model runs, the same code and seeds, moved by up to
    0.04 F per seed from one freshly installed machine to another, also between two with the same
    spaCy, thinc, numpy and blis, and reproduced exactly on each; the runs without a model
    reproduced on all."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    found["processor"] = processor()
    return found


def processor() -> str:
    """The processor's model and the widest vector instructions it has (numeric kernels such as
    blis's are chosen by them), from ``/proc/cpuinfo``; the machine type where there is none."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf8", errors="replace")
    except OSError:
        return platform.machine()
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in info.splitlines())}
    flags = set(fields.get("flags", "").split())
    widest = next((flag for flag in ("avx512f", "avx2", "avx", "sse4_2") if flag in flags), "")
    return " ".join(filter(None, (fields.get("model name") or platform.machine(), widest)))


def checkpoints_of(budget: int, every: int) -> list[int]:
    """Decision counts at which a model is trained and scored: 0, every ``every``, and the budget."""
    if budget < 1 or every < 1:
        raise ValueError(f"budget and checkpoint must be at least 1, got {budget} and {every}")
    points = list(range(0, budget + 1, every))
    if not points or points[-1] != budget:
        points.append(budget)
    return points


# --- the run -------------------------------------------------------------------------------


def simulate(
    pattern_files: Sequence[str | Path],
    texts: str | Path,
    gold: str | Path,
    *,
    test: str | Path | None = None,
    budget: int = 500,
    checkpoint: int = 100,
    seed: int = SEED,
    strategies: Sequence[str] = STRATEGIES,
    noise: float = 0.0,
    lfs: str | Path | None = None,
    lang: str = LANG,
    phrase_attr: str = PHRASE_ATTR,
    max_epochs: int = MAX_EPOCHS,
    patience: int = 2,
    answer_with: Answerer | None = None,
    reporter: Reporter | None = None,
    weak_labels: WeakLabelConfig | None = None,
    checkpoints: Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    aggregate_options: Mapping[str, Any] | None = None,
    handoff: HandoffMode = "auto",
    model_share: float = SessionConfig.model_share,
    train: bool = True,
    first_model: bool = False,
) -> dict[str, Any]:
    """Run every strategy and return the curves (see the module docstring; ``write_curves`` saves them).

    ``train=False`` trains no model: no model enters the loop, and each checkpoint scores the
    pipeline a training hands over while no model beats the rules — the rules corrected by
    every decision so far (``corrected_scores``) — in seconds where a training takes minutes.
    It measures what the order of questions does to the rules' correction alone. With
    ``first_model`` the ``active`` session still trains its first model at the start, from the
    rules' weak labels, as the product does, and that model stays in the loop (its proposals, its
    share of the questions, the decided strings it disputes) with no training after it: what a
    model in the loop does to the order of questions, for one training a seed.

    ``handoff`` is the ``active`` session's handoff mode: ``"now"`` puts every model it trains in
    the loop, whatever model and rules score on the held-out decisions (to measure what that
    comparison costs or saves). ``model_share`` is its share of ranked questions given to the
    model's own proposals (``SessionConfig.model_share``).

    ``aggregate_options`` are keyword arguments of :class:`~bootstrap.aggregate.Aggregate`, as in
    ``SessionConfig.aggregate`` (by default that field's default): they go into every session's
    config, the training sets read them from there as the handoff does, and the rules' flat
    lines use the same.

    ``answer_with`` replaces the gold annotator (a function of the task); it exists to check that
    the curves do not credit learning to a run that got no usable answers. ``labels`` are the
    gold labels scored (and the ceiling trained on); by default the labels the rules and
    functions vote for, so gold types nobody wrote rules for do not halve the recall.
    """
    unknown = [name for name in strategies if name not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"unknown strategy {', '.join(unknown) or '(none given)'} (known: {', '.join(STRATEGIES)})")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be a share between 0 and 1, got {noise}")
    points = sorted(set(checkpoints)) if checkpoints else checkpoints_of(budget, checkpoint)
    first_model = first_model and not train  # (with a training at every checkpoint, every model is in the loop)
    weak_labels = weak_labels or WeakLabelConfig()
    aggregate_options = dict(SessionConfig().aggregate if aggregate_options is None else aggregate_options)
    reporter = reporter or Reporter()
    nlp = spacy.blank(lang)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bootstrap-simulate-") as tmp:
        workdir = Path(tmp)
        data = prepare_data(Path(texts), Path(gold), Path(test) if test else None, workdir)
        labels = sorted(labels) if labels else rule_labels(pattern_files, lfs, nlp)
        reference = gold_docs(nlp, data.test, labels)
        curves: dict[str, Any] = {}
        before_decisions: dict[str, Any] = {}  # the model at 0 decisions is the same for every strategy
        settings = {"budget": budget, "checkpoint": checkpoint, "checkpoints": points, "seed": seed, "noise": noise,
                    "max_epochs": max_epochs, "patience": patience, "lang": lang, "handoff": handoff,
                    "model_share": model_share, "train": train, "first_model": first_model,
                    "training": ("whole pool, weak labels corrected by the decisions" if train
                                 else "the first model only, at the start: the rules corrected by the decisions"
                                 if first_model else "none: the rules corrected by the decisions"),
                    "weak_labels": vars(weak_labels), "versions": library_versions()}
        for name in strategies:
            if name in DECISION_STRATEGIES:
                answerer = answer_with or GoldAnnotator(data.gold, noise, seed)
                curves[name] = run_decisions(
                    name, pattern_files, data, reference, points, answerer, workdir, nlp=nlp, seed=seed, lfs=lfs,
                    lang=lang, phrase_attr=phrase_attr, max_epochs=max_epochs, patience=patience, reporter=reporter,
                    weak_labels=weak_labels, cache=before_decisions, aggregate_options=aggregate_options,
                    handoff=handoff if train or first_model else "never", model_share=model_share, train=train,
                    first_model=first_model)
                if isinstance(answerer, GoldAnnotator):
                    curves[name]["annotator"] = {"asked": answerer.asked, "flipped": answerer.flipped}
                final = curves[name]["points"][-1]
                reporter.note(name, f"F {final['f']:.3f} at {final['decisions']:,} decisions")
            elif name == "rules":
                reporter.start(name, 1)
                reporter.note(name, "matching the test texts")
                for line, scores in rules_scores(pattern_files, data.test, reference, lfs=lfs, lang=lang,
                                                 phrase_attr=phrase_attr, seed=seed,
                                                 aggregate_options=aggregate_options).items():
                    curves[line] = flat_curve(scores, points)
                reporter.advance(name)
            else:
                reporter.start(name, 1)
                reporter.note(name, "training on the pool's gold")
                curves[name] = flat_curve(
                    ceiling_scores(nlp, data, reference, workdir / "ceiling", seed=seed, max_epochs=max_epochs,
                                   patience=patience, labels=labels), points)
                reporter.advance(name)
        ceiling = curves.get("gold", {}).get("f")
        return {
            "settings": settings,
            "data": {"pattern_files": [str(p) for p in pattern_files], "texts": str(texts), "gold": str(gold),
                     "test": str(test) if test else f"{TEST_SHARE:.0%} of {gold} by input hash",
                     "pool_texts": len(data.pool_hashes), "test_texts": len(reference)},
            "labels": labels,
            "ceiling_f": ceiling,
            "strategies": curves,
            "reach": reach(curves, ceiling),
            "seconds": round(time.time() - started, 1),
        }


def run_decisions(
    name: str,
    pattern_files: Sequence[str | Path],
    data: SimulationData,
    reference: Sequence[Doc],
    checkpoints: Sequence[int],
    answerer: Answerer,
    workdir: Path,
    *,
    nlp: Language,
    seed: int,
    lfs: str | Path | None,
    lang: str,
    phrase_attr: str,
    max_epochs: int,
    patience: int,
    reporter: Reporter,
    weak_labels: WeakLabelConfig,
    cache: dict[str, Any] | None = None,
    aggregate_options: Mapping[str, Any] | None = None,
    handoff: HandoffMode = "auto",
    model_share: float = SessionConfig.model_share,
    train: bool = True,
    first_model: bool = False,
) -> dict[str, Any]:
    """One decision strategy in its own database: ask, answer, and train and score at each checkpoint
    (``train=False``: score the corrected rules, after the session's first model with
    ``first_model``; ``simulate``).

    ``cache`` keeps the scores at 0 decisions across strategies: the same training set, the
    same seed, the same model.
    """
    folder = workdir / name
    folder.mkdir()
    config = session_config(name, seed, lang, folder / "models", max_epochs, patience, weak_labels, aggregate_options, handoff)
    config.model_share = model_share
    reporter.start(name, checkpoints[-1])
    reporter.note(name, "building the candidate table")
    session = Session.from_files(pattern_files, data.pool, db=folder / "decisions.db", dataset=name, lfs=lfs,
                                 lang=lang, phrase_attr=phrase_attr, config=config)
    counts: Counter = Counter()
    points: list[dict[str, Any]] = []
    exhausted = False
    rules_questions = set(question_index(session.rules_table))
    asked = Counter()
    strings: set[str] = set()
    try:
        questions = session.rules_table.n_questions
        for target in checkpoints:
            reporter.note(name, "asking")
            while not exhausted and sum(counts.values()) < target:
                settle(session)
                task = session.next_question(ANNOTATOR)
                if task is None:
                    exhausted = True
                    break
                answer = answerer(task)
                session.answer(ANNOTATOR, task["task_hash"], answer)
                counts[answer] += 1
                span = task["spans"][0]
                asked["questions"] += 1
                beyond = (task["input_hash"], span["start"], span["end"], task["label"]) not in rules_questions
                asked["beyond_rules"] += beyond
                asked["beyond_rules_accepted"] += beyond and answer == "accept"
                asked["exploration"] += bool(task["exploration"])
                strings.add(task["text"][span["start"]:span["end"]].lower())
                reporter.advance(name)
            decided = sum(counts.values())
            if first_model and not points:  # the session's start: its only training
                session.start_handoff()
                session.wait_for_handoff()
            if points and points[-1]["decisions"] == decided:  # the pool ran dry: the same model again
                points.append({**points[-1], "checkpoint": target})
                continue
            if decided == 0 and cache is not None and "scores" in cache:
                points.append({"checkpoint": target, **cache["scores"]})
                continue
            if not train:
                points.append({"checkpoint": target, "model_in_loop": session.scorer == "model",
                               **corrected_scores(session, nlp, reference, counts, seed=seed, weak_labels=weak_labels)})
                continue
            reporter.note(name, f"training at {decided:,} decisions")
            if session.config.handoff.mode == "never":
                point = checkpoint_scores(session, nlp, reference, folder / f"model-{target}", counts, seed=seed,
                                          max_epochs=max_epochs, patience=patience, weak_labels=weak_labels)
            else:
                point = handoff_scores(session, reference, counts, first=not points)
            points.append({"checkpoint": target, **point})
            if decided == 0 and cache is not None:
                cache["scores"] = point
    finally:
        session.close()
    return {"kind": "decisions", "questions": questions, "exhausted": exhausted, "points": points,
            "asked": {**asked, "distinct_strings": len(strings)}}


def session_config(strategy: str, seed: int, lang: str, models_dir: Path, max_epochs: int = MAX_EPOCHS, patience: int = 2,
                   weak_labels: WeakLabelConfig | None = None,
                   aggregate_options: Mapping[str, Any] | None = None, handoff: HandoffMode = "auto") -> SessionConfig:
    """The page's defaults, for ``active``; ``random`` asks in random order and never hands off.

    ``random`` is annotation without the product: every question drawn uniformly from the rules'
    candidates (``exploration=1.0``), no model in the loop. Refits happen in the foreground so a
    run does not depend on thread timing. Models the handoff trains go to the run's temporary
    folder, not to ``./bootstrap-models``.
    """
    config = SessionConfig(seed=seed, background_refit=False, lang=lang, weak_labels=weak_labels or WeakLabelConfig())
    if aggregate_options is not None:
        config.aggregate = dict(aggregate_options)
    # the session trains at the checkpoints (``handoff_scores``), not on its own cadence
    config.handoff = dataclasses.replace(config.handoff, mode=handoff, models_dir=str(models_dir), every=10**9,
                                         max_epochs=max_epochs, patience=patience)
    if strategy == "random":
        config.exploration = 1.0
        config.handoff = dataclasses.replace(config.handoff, mode="never")
    return config


def settle(session: Session) -> None:
    """Let the session finish what it does in the background (refit, handoff) before the next question.

    Real annotators are slower than a background job; waiting makes a simulated run as if they
    were, and makes two runs with the same seed identical.
    """
    for method in ("wait_for_handoff", "wait_for_refit"):
        wait = getattr(session, method, None)
        if wait is not None:
            wait()


def handoff_scores(session: Session, reference: Sequence[Doc], counts: Counter, *, first: bool) -> dict[str, Any]:
    """Let the session's handoff train now (the product's own job, which may put the model in
    the loop) and score the model it trained on the test split.

    The first checkpoint is the session's start (``start_handoff``, as the CLI does); later ones
    ask for a training at each checkpoint, so a model is trained exactly where it is scored.
    """
    (session.start_handoff if first else session.train_now)()
    session.wait_for_handoff()
    run = session.store.model_runs(session.dataset)[-1]
    tasks = list(session.store.export_tasks(session.dataset))
    point: dict[str, Any] = {
        "decisions": len(tasks), "accepts": counts["accept"], "rejects": counts["reject"], "ignores": counts["ignore"],
        "texts": len({task["_input_hash"] for task in tasks}), "adopted": run["adopted"],
        "training_set": run["scores"].get("training_set"),
    }
    if not run["path"]:
        return {**point, **untrained(run["scores"].get("error", "the training failed"))}
    pipeline = run["scores"].get("pipeline") or {"name": "ner", "path": run["path"]}
    return {**point, "trained": True, **pipeline_scores(run["path"], pipeline, reference),
            "train_cpu_seconds": run["scores"].get("train_cpu_seconds"),
            "held_out": {"model_f": run["scores"].get("model", {}).get("f"),
                         "rules_f": run["scores"].get("rules", {}).get("f")}}


def pipeline_scores(model: str | Path, pipeline: Mapping[str, Any], reference: Sequence[Doc]) -> dict[str, Any]:
    """P/R/F on the test split of the pipeline a training handed over (``weak_labels.train_model``:
    the corrected rules, or the model with or without them), of the model alone (``ner``), and
    the F of every pipeline it chose from (``choices_f``: what a perfect choice would have had)."""
    def scored(path: str | Path) -> dict[str, float]:
        return prf(evaluate_gold(spacy.load(path), reference))

    scores = scored(pipeline["path"])
    ner = scores if pipeline["name"] == "ner" else scored(model)
    known = {pipeline["name"]: scores, "ner": ner}
    choices_f = {name: (known.get(name) or scored(path))["f"] for name, path in (pipeline.get("choices") or {}).items()}
    return {**scores, "pipeline": pipeline["name"], "pipeline_held_out_f": pipeline.get("held_out_f"),
            "pipeline_trials": pipeline.get("trials"), "choices_f": choices_f, "ner": ner}


def corrected_scores(session: Session, nlp: Language, reference: Sequence[Doc], counts: Counter, *, seed: int,
                     weak_labels: WeakLabelConfig) -> dict[str, Any]:
    """P/R/F on the test split of the rules corrected by the session's decisions so far, as a
    training hands them over (every decision carried: ``weak_labels.train_model``)."""
    from .pipeline import corrected_rules

    tasks = list(session.store.export_tasks(session.dataset))
    training_set = build_training_set(nlp, session.rules_table, tasks, session.store.texts(session.dataset),
                                      weak_labels, seed=seed, aggregate_options=session.config.aggregate)
    pipeline = corrected_rules(nlp.lang, session.handoff.rules, training_set.carried_all, training_set.specificity)
    return {"decisions": len(tasks), "accepts": counts["accept"], "rejects": counts["reject"],
            "ignores": counts["ignore"], "texts": len({task["_input_hash"] for task in tasks}),
            "training_set": training_set.stats, "trained": False, "pipeline": "rules",
            **prf(evaluate_gold(pipeline, reference))}


def checkpoint_scores(
    session: Session, nlp: Language, reference: Sequence[Doc], output: Path, counts: Counter, *,
    seed: int, max_epochs: int, patience: int, weak_labels: WeakLabelConfig,
) -> dict[str, Any]:
    """Train on the pool's weak labels and the session's decisions so far, as ``bootstrap train``
    and the handoff do, and score on the test split."""
    tasks = list(session.store.export_tasks(session.dataset))
    point: dict[str, Any] = {
        "decisions": len(tasks), "accepts": counts["accept"], "rejects": counts["reject"], "ignores": counts["ignore"],
        "texts": len({task["_input_hash"] for task in tasks}),
    }
    started = time.time()
    training_set = build_training_set(nlp, session.rules_table, tasks, session.store.texts(session.dataset),
                                      weak_labels, seed=seed, aggregate_options=session.config.aggregate)
    point["training_set"] = training_set.stats
    point["method"] = training_set.method
    try:
        result = train_model(training_set, output, lang=nlp.lang, seed=seed, max_epochs=max_epochs, patience=patience,
                             rules=session.handoff.rules)
        scores = pipeline_scores(result["model"], result["scores"]["pipeline"], reference)
    except ValueError as error:  # e.g. no entity anywhere in the training set
        return {**point, **untrained(str(error))}
    finally:
        shutil.rmtree(output, ignore_errors=True)
    return {**point, "trained": True, **scores, "train_seconds": round(time.time() - started, 1),
            "train_cpu_seconds": result["scores"]["train_cpu_seconds"]}


def untrained(reason: str) -> dict[str, Any]:
    return {"trained": False, "precision": 0.0, "recall": 0.0, "f": 0.0, "note": reason}


def prf(scores: dict[str, Any]) -> dict[str, float]:
    return {key: round(float(scores[key]), 4) for key in ("precision", "recall", "f")}


def flat_curve(scores: dict[str, Any], checkpoints: Sequence[int]) -> dict[str, Any]:
    """A line that does not depend on decisions: the same scores at every checkpoint."""
    values = prf(scores)
    extra = {key: value for key, value in scores.items() if key not in ("precision", "recall", "f", "per_label")}
    return {"kind": "flat", **values, **extra,
            "points": [{"checkpoint": c, "decisions": c, **values} for c in checkpoints]}


# --- the flat lines ------------------------------------------------------------------------


def rules_scores(
    pattern_files: Sequence[str | Path], test: Path, reference: Sequence[Doc], *, lfs: str | Path | None,
    lang: str, phrase_attr: str, seed: int, aggregate_options: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The rules' and the LabelModel's predictions on the test texts, scored against gold.

    ``rules``: every candidate some positive rule proposes and no negative rule of its label votes
    against. ``labelmodel``: every (span, label) Snorkel's LabelModel labels before any decision
    (``aggregate.labelled``); ``aggregate``: the same for the fit the loop uses before any decision (the
    plain vote or the LabelModel, ``aggregate.method``), both with the sessions' ``aggregate_options``
    (``SessionConfig.aggregate``; the ``labelmodel`` line's method stays the LabelModel). Overlaps
    are resolved longest first (``spacy.util.filter_spans``), as NER must.
    """
    rules_spans: dict[int, list[tuple[int, int, str]]] = {}

    def keep_candidates(results: Iterable[DocCandidates]) -> Iterable[DocCandidates]:
        for result in results:
            rules_spans[result.record.input_hash] = [
                (c.start, c.end, c.label) for c in result.candidates if not c.votes_against]
            yield result

    table = build_table(pattern_files, test, lfs=lfs, lang=lang, phrase_attr=phrase_attr, through=keep_candidates)
    lines = {"rules": score_spans(rules_spans, reference)}
    options = dict(aggregate_options or {})
    for line, line_options in (("labelmodel", {**options, "method": "LabelModel"}), ("aggregate", options)):
        aggregate = Aggregate(table, seed=seed, **line_options)
        lines[line] = {**score_spans(confident_spans(table, aggregate), reference), "method": aggregate.method}
    return lines


def confident_spans(table: CandidateTable, aggregate: Aggregate) -> dict[int, list[tuple[int, int, str]]]:
    """Per text, every (span, label) the aggregate labels (``aggregate.labelled``)."""
    spans: dict[int, list[tuple[int, int, str]]] = {}
    if not table.n_rows:
        return spans
    chosen = labelled(table, aggregate.probabilities())
    for row, cls in zip(table.question_row[chosen].tolist(), table.question_class[chosen].tolist()):
        spans.setdefault(int(table.input_hash[row]), []).append(
            (int(table.start[row]), int(table.end[row]), table.label_of(cls)))
    return spans


def score_spans(spans: dict[int, list[tuple[int, int, str]]], reference: Sequence[Doc]) -> dict[str, Any]:
    """Entity P/R/F of predicted character spans per text (by input hash) against reference Docs."""
    predicted = []
    for gold_doc in reference:
        doc = gold_doc.copy()
        doc.ents = []
        found = (token_span(doc, start, end, label) for start, end, label in spans.get(hash_text(doc.text), ()))
        doc.ents = filter_spans([span for span in found if span is not None])
        predicted.append(doc)
    return score_ents(predicted, reference)


def rule_labels(pattern_files: Sequence[str | Path], lfs: str | Path | None, nlp: Language) -> list[str]:
    """The labels the rules and the labeling functions vote for."""
    from .lfs import load_lfs
    from .rules import load_rules

    found = set(load_rules(pattern_files, nlp.vocab).labels)
    for function in load_lfs(lfs) if lfs else []:
        if function.label:
            found.add(function.label)
    return sorted(found)


def ceiling_scores(
    nlp: Language, data: SimulationData, reference: Sequence[Doc], output: Path, *, seed: int, max_epochs: int,
    patience: int, labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A model trained on every pool text fully annotated (the most the decisions could teach).

    It holds out as large a share of texts to pick its best epoch as the decision models do.
    """
    train: list[Doc] = []
    dev: list[Doc] = []
    seen: set[int] = set()
    for doc in gold_docs(nlp, data.gold_path, labels):
        key = hash_text(doc.text)
        if key in data.pool_hashes and key not in seen:
            seen.add(key)
            (dev if dev_bucket(key) < DEV_SHARE else train).append(doc)
    if not dev:
        dev.append(train.pop())
    labels = sorted({ent.label_ for doc in train for ent in doc.ents})
    started = time.time()
    try:
        best = train_ner(train, dev, output, lang=nlp.lang, labels=labels, seed=seed, max_epochs=max_epochs,
                         patience=patience)
        scores = evaluate_gold(spacy.load(best), reference)
    finally:
        shutil.rmtree(output, ignore_errors=True)
    return {**scores, "train_texts": len(train), "train_seconds": round(time.time() - started, 1)}


# --- reading the curves --------------------------------------------------------------------


def reach(curves: dict[str, Any], ceiling: float | None) -> dict[str, dict[str, int | None]]:
    """Per strategy, the decisions needed to reach each share of the ceiling F (None: not within the budget).

    A flat line needs 0 decisions if it is there at all.
    """
    if not ceiling:
        return {}
    result = {}
    for name, curve in curves.items():
        if name == "gold":
            continue
        result[name] = {}
        for level in REACH_LEVELS:
            needed = next((p["decisions"] for p in curve["points"] if p["f"] >= level * ceiling), None)
            result[name][f"{level:.0%}"] = 0 if needed is not None and curve["kind"] == "flat" else needed
    return result


def write_curves(result: dict[str, Any], output: str | Path, stem: str = "curves") -> tuple[Path, Path]:
    """``output/curves.json`` and ``output/curves.png`` (another ``stem`` for other names)."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    json_path = output / f"{stem}.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    png_path = output / f"{stem}.png"
    plot_curves(result, png_path)
    return json_path, png_path


STYLE = {"active": ("tab:blue", "-"), "random": ("tab:orange", "-"), "rules": ("tab:gray", ":"),
         "labelmodel": ("tab:green", ":"), "aggregate": ("tab:olive", ":"), "gold": ("black", "--")}


def plot_curves(result: dict[str, Any], path: str | Path) -> None:
    """Decisions on x, test F1 on y: one line per decision strategy, the rules and ceiling flat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = result["settings"]
    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=120)
    for name, curve in result["strategies"].items():
        color, style = STYLE.get(name, (None, "-"))
        if curve["kind"] == "flat":
            label = "gold (ceiling)" if name == "gold" else name
            axes.axhline(curve["f"], color=color, linestyle=style, label=f"{label}  F {curve['f']:.2f}")
        else:
            xs = [0] + [p["decisions"] for p in curve["points"]]
            ys = [0.0] + [p["f"] for p in curve["points"]]
            axes.plot(xs, ys, color=color, linestyle=style, marker="o", label=name)
            for p in curve["points"]:
                if settings.get("train", True) and not p["trained"]:  # (no training at all is no failure)
                    axes.plot(p["decisions"], p["f"], marker="x", color="red", markersize=9)
    ceiling = result.get("ceiling_f")
    if ceiling:
        for level in REACH_LEVELS:
            axes.axhline(level * ceiling, color="black", linewidth=0.5, alpha=0.3)
            axes.annotate(f"{level:.0%} of ceiling", (settings["budget"], level * ceiling), xytext=(-4, 2),
                          textcoords="offset points", ha="right", fontsize=7, alpha=0.6)
    axes.set_xlabel("decisions")
    axes.set_ylabel("entity F1 on the gold test split")
    axes.set_ylim(0, 1)
    axes.set_xlim(0, settings["budget"])
    axes.set_title(f"seed {settings['seed']}, noise {settings['noise']:.0%}, {result['data']['pool_texts']} pool "
                   f"/ {result['data']['test_texts']} test texts", fontsize=9)
    axes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)

"""When a model trained on the whole corpus should take over from the rules, and the training job.

The model is trained on every text of the dataset (a bounded sample on big corpora), weakly
labelled by the rules and corrected by every decision (:mod:`bootstrap.weak_labels`), in a
background process: spaCy training would otherwise hold the interpreter the web server answers
from. The policy (``--handoff``):

* ``auto`` (default): a **first model at the start** (:meth:`Session.start_handoff
  <bootstrap.session.Session.start_handoff>`), trained on the rules' labels alone, so the model
  proposes spans beyond the rules from the first minutes; then, once every label has
  ``min_accepts`` accepted answers, a new model every ``every`` decisions. Each is scored with
  the rules on the same held-out texts — those ``train.split_decisions`` keeps aside, stable as
  the dataset grows and never in any training set — by an F estimated over the spans either of
  them predicts there, from the decisions on them (:mod:`bootstrap.comparison`: the decisions
  are mostly on rule candidates, and scored as they are they hide what the model finds beyond
  the rules), and enters the loop when its F is higher than the better of
  the rules' plain vote and the LabelModel, with at least ``MIN_HELD_OUT_ACCEPTS`` accepted
  spans held out to compare on. While there are not that many, nothing can say the model is
  worse than the rules it learnt from, so the model enters as a proposer: its spans become
  questions, and the decisions on them judge it.
* ``now``: train at once (as soon as each label has an accept and two texts have decisions, one
  to hold out) and let the model in whatever the scores say.
* ``never``: the rules rank every question.

Both scores are recorded (``Store.add_model_run``), so ``bootstrap stats`` and the page can say
which scorer ranks the questions, and why. When the model enters, the job also returns its
probability for every span of every stored text it finds plausible
(``model.span_probabilities``), which is how the model proposes entities no rule covers.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Iterator

from .config import HandoffPolicy, PipelineRules, SessionConfig
from .labelmatrix import CandidateTable, ModelSpan
from .tasks import decision_accuracy
from .workers import worker_pool

if TYPE_CHECKING:
    from .store import Store

PROPOSAL_FLOOR = 0.05  # spans the model scores below this are not worth keeping
MIN_HELD_OUT_ACCEPTS = 5  # fewer accepted held-out decisions than this compare nothing


class Handoff:
    """A session's models: when to train one (the policy), the training in a worker process, the
    record of every run, and, when a model wins, ``adopt(spans_path)``: the session puts the
    model's spans in the loop.

    ``lock`` is the session's: the done-callback runs in the executor's thread, and the session
    reads ``runs`` and ``training`` for its page under the same lock.
    """

    def __init__(self, store: Store, dataset: str, rules_table: CandidateTable, config: SessionConfig, *,
                 adopt: Callable[[str], None], lock: threading.RLock):
        self.store, self.dataset, self.rules_table, self.config = store, dataset, rules_table, config
        self.adopt = adopt
        self._lock = lock
        self.runs: list[dict[str, Any]] = []  # the history, as the store keeps it
        self.trained_at: int | None = None  # decisions when the last model started training
        self.failed = False  # the last training failed: the next waits RETRY_AFTER decisions
        self.texts: frozenset[int] | None = None  # the texts to train on (input hashes); None: every stored one
        self.rules: PipelineRules | None = None  # the rules' files, for pipelines with the corrected rules
        self._future: Future | None = None
        self._pool: ProcessPoolExecutor | None = None

    @property
    def policy(self) -> HandoffPolicy:
        return self.config.handoff

    def resume(self, decisions: int) -> str | None:
        """Read the stored runs (the ``decisions`` replayed count as trained on, if any model was)
        and return the spans file of the last adopted model, if it is still there."""
        self.runs = self.store.model_runs(self.dataset)
        self.trained_at = decisions if self.runs else None
        return adopted_spans(self.runs)

    @property
    def training(self) -> bool:
        return self._future is not None

    def start(self, decisions: int) -> None:
        """Train the first model now, in the background, if the policy trains at all and none was
        trained yet: the rules' weak labels over the whole corpus are enough to learn from, and
        the model proposes spans no rule covers from the first minutes."""
        with self._lock:
            if self.policy.mode != "never" and self.trained_at is None:
                self.train_now(decisions)

    def train_now(self, decisions: int) -> bool:
        """Start a training now, whatever the policy's cadence (the model still enters the loop
        only as the policy says); False if one is running already."""
        with self._lock:
            if self._future is not None:
                return False
            self._train(decisions)
            return True

    def maybe_train(self, decisions: int, accepts: dict[str, int]) -> None:
        """Start a training in the background when the policy says it is time."""
        if self.policy.mode == "never" or self._future is not None:
            return
        if self.policy.due(decisions, self.trained_at, accepts, self.failed):
            self._train(decisions)

    def _train(self, decisions: int) -> None:
        """Submit the training job: it reads the store itself, so nothing is exported under the lock."""
        output = Path(self.policy.models_dir) / self.dataset / f"{time.strftime('%Y%m%d-%H%M%S')}-{decisions}"
        self.trained_at = decisions
        self._future = self._executor().submit(
            train_job, self.store.engine.url.render_as_string(hide_password=False), self.dataset, self.rules_table,
            str(output), self.config.lang, self.config.seed, self.policy, self.config.weak_labels, self.config.aggregate,
            self.texts, self.rules,
        )
        self._future.add_done_callback(lambda future: self._on_trained(future, decisions))

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = worker_pool()  # (it ends with this process: no orphaned training)
        return self._pool

    def _on_trained(self, future: Future, decisions: int) -> None:
        """Record the run with both scores; if the model won, have the session adopt it."""
        try:
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - a failed training must not end the session
                with self._lock:
                    self.failed = True
                    self._record(decisions, "", {"error": f"{type(error).__name__}: {error}"}, adopted=False)
                return
            scores = {"model": result["scores"]["held_out_decisions"], "rules": result["rules"],
                      "spans": result["spans"], "compared": result["scores"]["compared"],
                      "strata": result["scores"]["strata"], "pipeline": result["scores"]["pipeline"],
                      "training_set": result["scores"]["training_set"],
                      "train_cpu_seconds": result["scores"]["train_cpu_seconds"]}
            adopted = result["spans"] is not None
            if adopted:
                try:
                    self.adopt(result["spans"])
                except Exception as error:  # noqa: BLE001 - the rules keep ranking; the run says why
                    adopted, scores["error"] = False, f"adoption failed: {type(error).__name__}: {error}"
            with self._lock:
                self.failed = False
                self._record(decisions, result["model"], scores, adopted)
        finally:
            with self._lock:
                self._future = None

    def _record(self, decisions: int, path: str, scores: dict[str, Any], adopted: bool) -> None:
        self.store.add_model_run(self.dataset, decisions, path, scores, adopted)
        self.runs = self.store.model_runs(self.dataset)

    def wait(self) -> None:
        """Block until a training in the background (if any) is recorded and, if it won, adopted."""
        future = self._future
        if future is not None:
            wait([future])  # its failure, if any, is recorded as a run, not raised here
            while self._future is not None:  # the done-callback may still be adopting
                time.sleep(0.05)

    def status(self, accepts: dict[str, int], scorer: str) -> dict[str, Any]:
        return handoff_status(self.policy, self.runs, accepts, scorer, training=self.training)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def adopted_spans(runs: list[dict[str, Any]]) -> str | None:
    """The spans file of the last model that entered the loop, if it is still there."""
    adopted = [run for run in runs if run["adopted"] and run["scores"].get("spans")]
    if adopted and Path(adopted[-1]["scores"]["spans"]).exists():
        return adopted[-1]["scores"]["spans"]
    return None


def handoff_status(
    policy: HandoffPolicy, runs: list[dict[str, Any]], accepts: dict[str, int], scorer: str, *, training: bool = False,
) -> dict[str, Any]:
    """What the page and ``bootstrap stats`` show: the policy, the scorer, every run's F."""
    return {
        "mode": policy.mode,
        "scorer": scorer,
        "training": training,
        "accepts_needed_per_label": policy.min_accepts,
        "accepts": accepts,
        "ready": policy.mode != "never" and bool(accepts) and min(accepts.values()) >= policy.min_accepts,
        "runs": [{"decisions": run["decisions"], "adopted": run["adopted"],
                  "model_f": run["scores"].get("model", {}).get("f"),
                  "rules_f": run["scores"].get("rules", {}).get("f"),
                  "model_accuracy": run["scores"].get("model", {}).get("accuracy"),
                  "rules_accuracy": run["scores"].get("rules", {}).get("accuracy"),
                  # False: too few held-out accepts to compare, the model entered as a proposer
                  "compared": bool(run["scores"].get("compared", True)),
                  # the held-out spans only the model predicts, and the decisions on them
                  "model_only": (run["scores"].get("strata") or {}).get("model_only"),
                  # the pipeline to use (``weak_labels.train_model``): the corrected rules, or the model with or without them
                  "pipeline": (run["scores"].get("pipeline") or {}).get("name"),
                  "pipeline_path": (run["scores"].get("pipeline") or {}).get("path"),
                  # how sure the held-out texts made the choice, where it is not the corrected rules
                  "pipeline_confidence": chosen_confidence(run["scores"].get("pipeline") or {})} for run in runs],
    }


def chosen_confidence(pipeline: dict[str, Any]) -> float | None:
    """The share of resamples in which the pipeline handed over beat the choice before it
    (``comparison.choose``); None for the corrected rules themselves or a run from before the choice."""
    return ((pipeline.get("trials") or {}).get(pipeline.get("name")) or {}).get("confidence")


def answered_spans(answers: Iterable[Any]) -> list[ModelSpan]:
    """Stored answers' spans (``store.Answer``): the questions a table with a model's spans must keep,
    whoever proposed them, so no decision leaves the loop when a model brings other spans."""
    return [ModelSpan(a.input_hash, a.start, a.end, a.token_start, a.token_end, a.span_text or "", a.label, 1.0)
            for a in answers]


def decision_f(score: dict[str, Any]) -> float | None:
    """F1 over held-out decisions, from a score dict of ``rules_accuracy`` / ``train.evaluate_decisions``.

    The accepted spans are the positives: recall is the share of them predicted, precision the
    share of predicted decided spans that were accepted. Plain accuracy would reward a model that
    predicts nothing: the questions asked first are the ones the rules are unsure of, and many of
    them are rejects.
    """
    accepted, rejected = score.get("accepted") or 0, score.get("rejected") or 0
    if not accepted or score.get("accept_accuracy") is None:
        return None
    true_positives = score["accept_accuracy"] * accepted
    false_positives = (1 - score["reject_accuracy"]) * rejected if rejected and score.get("reject_accuracy") is not None else 0.0
    if not true_positives:
        return 0.0
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / accepted
    return 2 * precision * recall / (precision + recall)


def rules_accuracy(tasks: Iterable[dict[str, Any]], says_accept: Callable[[dict[str, Any]], bool | None]) -> dict[str, Any]:
    """The rules' accuracy and F on held-out decisions, counted as ``train.evaluate_decisions``
    counts the model's; ``says_accept(task)`` is None for a question the rules have no view on."""
    right = {"accept": 0, "reject": 0}
    total = {"accept": 0, "reject": 0}
    for task in tasks:
        verdict = says_accept(task) if task["answer"] in right else None
        if verdict is None:
            continue
        total[task["answer"]] += 1
        right[task["answer"]] += verdict == (task["answer"] == "accept")
    score = decision_accuracy(right, total)
    return {**score, "f": decision_f(score)}


def train_job(
    db: str, dataset: str, table, output_dir: str, lang: str, seed: int, policy: HandoffPolicy, weak_labels,
    aggregate_options: dict[str, Any] | None = None, texts: Collection[int] | None = None,
    rules: PipelineRules | None = None,
) -> dict[str, Any]:
    """Build the whole-corpus training set from the store, train, score model and rules on the
    held-out decisions and, if the model wins (or ``force``), score every text.

    Runs in a worker process: every argument (``table`` is the rules' ``CandidateTable``,
    ``weak_labels`` a ``WeakLabelConfig``, ``aggregate_options`` the session's
    ``SessionConfig.aggregate``, ``texts`` the input hashes of the texts to train on and score,
    None for every stored one, ``rules`` the rules' files for the pipelines with the corrected
    rules) and the result are plain, picklable values. With ``policy.mode == "now"`` the model's
    spans are written whatever the scores say. The model (its ``ner``) is what enters the loop;
    ``scores["pipeline"]`` names the pipeline to export (``weak_labels.train_model``).
    """
    import spacy

    from .store import Store
    from .weak_labels import build_training_set, train_model

    nlp = spacy.blank(lang)
    with Store(db, create=False) as store:
        tasks = list(store.export_tasks(dataset))
        training_set = build_training_set(nlp, table, tasks, _texts(store, dataset, texts), weak_labels, seed=seed,
                                          aggregate_options=aggregate_options)
    result = train_model(training_set, output_dir, lang=lang, seed=seed, max_epochs=policy.max_epochs,
                         patience=policy.patience, rules=rules)
    comparison = result["scores"].get("comparison") or {}
    held_out = {**(result["scores"].get("held_out_decisions") or {}), **comparison.get("model", {})}
    rules, model_score = comparison.get("rules", {}), held_out.get("f")
    enough = (held_out.get("accepted") or 0) >= MIN_HELD_OUT_ACCEPTS
    if enough:
        wins = model_score is not None and (rules.get("f") is None or model_score > rules["f"])
    else:  # nothing to compare on yet: the model proposes, and the decisions on its spans judge it
        wins = True
    force = policy.mode == "now"
    spans_path = Path(output_dir) / "spans.jsonl"
    if wins or force:
        model = spacy.load(result["model"])
        with Store(db, create=False) as store, spans_path.open("w", encoding="utf8") as out:
            batch: list[tuple[int, str]] = []
            for item in _texts(store, dataset, texts):
                batch.append(item)
                if len(batch) == 256:
                    _write_spans(model, batch, out)
                    batch = []
            _write_spans(model, batch, out)
    scores = {**result["scores"], "held_out_decisions": held_out, "compared": enough,
              "strata": comparison.get("strata")}
    return {"model": str(result["model"]), "scores": scores, "rules": rules, "model_f": model_score,
            "wins": wins, "spans": str(spans_path) if (wins or force) else None}


def _texts(store: Store, dataset: str, only: Collection[int] | None) -> Iterator[tuple[int, str]]:
    """The stored texts (``Store.texts``), only those whose input hash is in ``only`` if given."""
    return (item for item in store.texts(dataset) if only is None or item[0] in only)


def _write_spans(nlp, batch: list[tuple[int, str]], out) -> None:
    """One JSON line per text: ``[start, end, token_start, token_end, text, label, probability]`` per span."""
    from .model import span_probabilities

    if not batch:
        return
    docs = list(nlp.pipe(text for _, text in batch))
    for (input_hash, _), doc, scores in zip(batch, docs, span_probabilities(nlp, docs)):
        spans = []
        for (start, end, label), probability in scores.items():
            if probability < PROPOSAL_FLOOR:
                continue
            span = doc.char_span(start, end)
            if span is not None:
                spans.append([start, end, span.start, span.end, span.text, label, round(probability, 4)])
        out.write(json.dumps({"input_hash": input_hash, "spans": spans}) + "\n")


def read_model_spans(path: str | Path) -> tuple[list[ModelSpan], list[int]]:
    """The spans a job wrote, and the texts it scored (every text, also those with no span)."""
    spans, scored = [], []
    with Path(path).open(encoding="utf8") as lines:
        for line in lines:
            entry = json.loads(line)
            input_hash = int(entry["input_hash"])
            scored.append(input_hash)
            spans.extend(ModelSpan(input_hash, *span) for span in entry["spans"])
    return spans, scored

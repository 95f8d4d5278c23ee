"""When a model trained on the whole corpus should take over from the rules, and the training job.

The model is trained on every text of the dataset (a bounded sample on big corpora), weakly
labelled by the rules and corrected by every decision (:mod:`bootstrap.weak_labels`), in a
background process: spaCy training would otherwise hold the interpreter the web server answers
from. The policy (``--handoff``):

* ``auto`` (default): a **first model at the start** (:meth:`Session.start_handoff
  <bootstrap.session.Session.start_handoff>`), trained on the rules' labels alone, so the model
  proposes spans beyond the rules from the first minutes; then, once every label has
  ``min_accepts`` accepted answers, a new model every ``every`` decisions. Each is scored with
  the rules on the same held-out decisions — the texts ``train.split_decisions`` keeps aside,
  stable as the dataset grows and never in any training set — by F1 with the accepted spans as
  positives (:func:`decision_f`), and enters the loop when its F is higher than the better of
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

from .labelmatrix import ModelSpan
from .tasks import decision_accuracy

HandoffMode = Literal["never", "auto", "now"]
MODES = ("never", "auto", "now")
PROPOSAL_FLOOR = 0.05  # spans the model scores below this are not worth keeping
RETRY_AFTER = 10  # decisions between a failed training and the next try
MIN_HELD_OUT_ACCEPTS = 5  # fewer accepted held-out decisions than this compare nothing


@dataclass(frozen=True)
class HandoffPolicy:
    mode: HandoffMode = "auto"
    every: int = 200  # new decisions between two trainings
    min_accepts: int = 20  # accepts per label before a model trained from decisions
    max_epochs: int = 10
    patience: int = 2  # evaluations (about one an epoch) without improvement before training stops
    models_dir: str = "bootstrap-models"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"handoff must be one of {', '.join(MODES)}, got {self.mode!r}")

    def due(self, decisions: int, last_trained_at: int | None, accepts: dict[str, int], last_failed: bool = False) -> bool:
        """Whether to start training now, given the decisions so far and the accepts per label.

        After a failed training (too few texts to hold any out, say) the next try waits for
        ``RETRY_AFTER`` more decisions, in every mode.
        """
        if self.mode == "never" or not accepts:
            return False
        needed = 1 if self.mode == "now" else self.min_accepts
        if min(accepts.values()) < needed:
            return False
        if last_trained_at is None:
            return True
        if last_failed:
            return decisions - last_trained_at >= RETRY_AFTER
        return self.mode == "auto" and decisions - last_trained_at >= self.every


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
) -> dict[str, Any]:
    """Build the whole-corpus training set from the store, train, score model and rules on the
    held-out decisions and, if the model wins (or ``force``), score every text.

    Runs in a worker process: every argument (``table`` is the rules' ``CandidateTable``,
    ``weak_labels`` a ``WeakLabelConfig``) and the result are plain, picklable values. With
    ``policy.mode == "now"`` the model's spans are written whatever the scores say.
    """
    import spacy

    from .store import Store
    from .weak_labels import build_training_set, train_model

    nlp = spacy.blank(lang)
    with Store(db, create=False) as store:
        tasks = list(store.export_tasks(dataset))
        training_set = build_training_set(nlp, table, tasks, store.texts(dataset), weak_labels, seed=seed)
    result = train_model(training_set, output_dir, lang=lang, seed=seed, max_epochs=policy.max_epochs,
                         patience=policy.patience)
    rules = training_set.rules_view
    held_out = result["scores"].get("held_out_decisions") or {}
    held_out["f"] = model_score = decision_f(held_out) if held_out else None
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
            for item in store.texts(dataset):
                batch.append(item)
                if len(batch) == 256:
                    _write_spans(model, batch, out)
                    batch = []
            _write_spans(model, batch, out)
    scores = {**result["scores"], "held_out_decisions": held_out, "compared": enough}
    return {"model": str(result["model"]), "scores": scores, "rules": rules, "model_f": model_score,
            "wins": wins, "spans": str(spans_path) if (wins or force) else None}


def exit_with_parent(parent: int, every: float = 2.0) -> None:
    """End this worker process once the session's process ``parent`` is gone (killed, say): a
    training nobody waits for must not hold the machine's cores for minutes. The worker pool's
    initializer: ``parent`` comes from the session, since by the time a slow spawn gets here the
    parent may already be dead and the worker adopted by another."""
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="bootstrap-parent-watch", daemon=True).start()


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

"""Model against rules on the held-out texts: F estimated over the spans either of them predicts.

The handoff must say whether the model trained from the decisions is better than the rules it
learnt from. It has the held-out decisions to judge by, and they are a sample of *questions*:
mostly rule candidates, because that is what the queue holds. Scored on those decisions as they
are, the rules' recall is near 1 (they proposed nearly every accepted span that was asked about)
while on complete gold it is a quarter, and a model that finds entities no rule proposes gets no
credit for them, since hardly any was asked. On NCBI-disease that comparison let a model in at 3
of 9 checkpoints where the model beat the rules on the test gold at all 9.

Two systems differ only where they disagree. So the spans the two predict in the held-out texts
are put in three strata: predicted by both, by the rules only, by the model only. Each stratum's
share of entities is estimated from the decisions that fall in it, and each system's true
positives are, per stratum, the spans accepted plus the spans nobody was asked about times that
share, not the counts of decided spans alone: a stratum the queue rarely asked about weighs what
it holds, not what was asked (stratified estimation).
An accepted span neither predicts is a positive both miss. Recall is then over the entities
either system finds plus those, the same denominator for both (relative recall: the entities no
system and no question reaches are unknown, and missing for both).

A stratum with few decisions leans on a prior: the share of all held-out decisions accepted,
worth ``PRIOR_STRENGTH`` decisions. The model's own spans in the held-out texts are asked about
as the queue's model share reaches them; until then its stratum counts as an average question.

**How sure.** A few dozen held-out texts with a handful of accepted entities are a thin
sample. Picking the best estimate there handed the bundled diseases example a model estimated
at 0.45 against the rules' 0.38 that scored 0.37 against their 0.45 on the test gold, and on
WNUT-17 (5-10% of questions accepted) it picked the model alone at 12 of 18 checkpoints (100 to
400 decisions, 3 seeds, both orders), where the model was below the rules on the test gold at
every one. :func:`confidence` says how often one system beats another over resamples of the
held-out texts (a paired bootstrap: both are scored on the same draw), each stratum's share of
entities drawn from its posterior in each resample, so spans nobody was asked about carry their
doubt. :func:`choose` climbs a ladder of pipelines, from the least change to the rules to the
most, and takes each step only where it beats the current choice with ``HANDOVER_CONFIDENCE``:
taking the best estimate among those sure to beat the rules would bring back the thin sample's
luck (on the bundled products example the model alone, estimated 0.81 against 0.78 for the rules
before it, scored 0.73 against 0.81 on the test gold). 95% a step, because there are two steps:
a pipeline no better than the rules then takes either with a chance of at most 10%. At 90% a
step, the WNUT-17 runs took a false step (to the model after the rules, 0.01-0.02 below the
rules alone on the test gold) at 2 of 18 checkpoints, with 94.5% and 90.5%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from .tasks import task_input_hash

if TYPE_CHECKING:
    from spacy.language import Language

SpanKey = tuple[int, int, int, str]  # (input hash, start char, end char, label)
PRIOR_STRENGTH = 2.0  # decisions a stratum's prior is worth
RESAMPLES = 200  # bootstrap draws of the held-out texts for :func:`confidence`
HANDOVER_CONFIDENCE = 0.95  # how sure the held-out texts must make us that a step up the ladder beats the choice so far
STRATA = ("both", "rules_only", "model_only")


@dataclass(frozen=True)
class Stratum:
    """Spans in one stratum of the held-out texts, and the decisions among them."""

    size: int
    decided: int
    accepted: int

    def entity_share(self, prior: float, rng: np.random.Generator | None = None) -> float:
        """The share of the stratum's spans that are entities: the posterior mean, or with
        ``rng`` a draw from the posterior, Beta(accepted + prior · strength, rejected + (1 − prior) · strength)."""
        yes = self.accepted + prior * PRIOR_STRENGTH
        no = self.decided - self.accepted + (1 - prior) * PRIOR_STRENGTH
        if rng is None:
            return yes / (yes + no)
        return float(rng.beta(max(yes, 1e-9), max(no, 1e-9)))  # (one draw whatever the counts: the streams stay paired)


def held_out_answers(tasks: Iterable[Mapping[str, Any]]) -> dict[SpanKey, bool]:
    """Accepted (True) or rejected (False) per question, the latest answer counting; ignores skipped."""
    answers: dict[SpanKey, bool] = {}
    for task in tasks:
        if task.get("answer") not in ("accept", "reject"):
            continue
        for span in task.get("spans", []):
            key = (task_input_hash(task), span["start"], span["end"], span.get("label") or task.get("label"))
            answers[key] = task["answer"] == "accept"
    return answers


def model_predictions(nlp: Language, tasks: Iterable[Mapping[str, Any]]) -> set[SpanKey]:
    """The entities ``nlp`` predicts in the texts of ``tasks``, as span keys."""
    texts = {task_input_hash(task): task["text"] for task in tasks}
    predicted: set[SpanKey] = set()
    for input_hash, doc in zip(texts, nlp.pipe(texts.values())):
        predicted.update((input_hash, ent.start_char, ent.end_char, ent.label_) for ent in doc.ents)
    return predicted


def compare(rules: Iterable[SpanKey], model: Iterable[SpanKey], answers: Mapping[SpanKey, bool],
            rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Estimated precision, recall and F of the rules and the model on the held-out texts (module
    docstring). ``rules`` and ``model`` are the spans each predicts there, ``answers`` the
    held-out decisions (:func:`held_out_answers`). F is None for both when nothing was decided.
    With ``rng`` each stratum's share of entities is a draw from its posterior, not its mean
    (:func:`confidence`)."""
    rules, model = set(rules), set(model)
    members = {"both": rules & model, "rules_only": rules - model, "model_only": model - rules}
    strata = {name: Stratum(len(keys), sum(key in answers for key in keys),
                            sum(answers.get(key, False) for key in keys)) for name, keys in members.items()}
    missed = sum(accepted for key, accepted in answers.items() if key not in rules and key not in model)
    if not answers:
        empty = {"precision": None, "recall": None, "f": None}
        return {"rules": dict(empty), "model": dict(empty), "strata": _described(strata, missed, None)}
    prior = sum(answers.values()) / len(answers)
    entities = {name: stratum.accepted + (stratum.size - stratum.decided) * stratum.entity_share(prior, rng)
                for name, stratum in strata.items()}
    positives = sum(entities.values()) + missed
    scores = {}
    for system, own in (("rules", "rules_only"), ("model", "model_only")):
        predicted = strata["both"].size + strata[own].size
        found = entities["both"] + entities[own]
        precision = found / predicted if predicted else None
        recall = found / positives if positives else None
        f = 2 * found / (predicted + positives) if predicted + positives else None
        scores[system] = {"precision": _round(precision), "recall": _round(recall), "f": _round(f)}
    return {**scores, "strata": _described(strata, missed, prior)}


def against_rules(rules_view: Mapping[str, Mapping[str, Any]], model: Iterable[SpanKey],
                  answers: Mapping[SpanKey, bool]) -> dict[str, Any]:
    """:func:`compare` the model with each fit of the rules (``weak_labels.rules_on_held_out``: the
    plain vote and, where fitted, the LabelModel) and keep the fit the estimate finds best: the
    model must beat the better of them. ``rules`` carries that fit's name, its accuracy on the
    held-out decisions and every fit's F (``by_fit``)."""
    model = set(model)
    results = {fit: compare(view["predicted"], model, answers) for fit, view in rules_view.items()}
    if not results:
        return compare((), model, answers)
    best = max(results, key=lambda fit: f_rank(results[fit]["rules"]["f"]))
    return {**results[best],
            "rules": {**rules_view[best]["accuracy"], **results[best]["rules"], "fit": best,
                      "by_fit": {fit: result["rules"]["f"] for fit, result in results.items()}}}


def confidence(incumbent: Iterable[SpanKey], challenger: Iterable[SpanKey], answers: Mapping[SpanKey, bool], *,
               resamples: int = RESAMPLES, seed: int = 0) -> float | None:
    """The share of bootstrap resamples of the held-out texts on which ``challenger`` scores a
    higher estimated F than ``incumbent`` (:func:`compare`, ties counting half): how sure the
    held-out decisions make us that it is the better. None when nothing was decided.

    A resample draws as many texts as there are, with replacement, and keeps every span and
    decision of each drawn text (a text drawn twice counts twice), so spans of one text, which
    share its words and its rules, move together. It draws each stratum's share of entities
    from its posterior too (:meth:`Stratum.entity_share`): the texts alone do not carry the
    doubt about a stratum few decisions fall in. Resampled with the shares fixed at their means,
    the model's spans nobody was asked about counted as entities at the rate of the average
    question in every resample; so a pipeline adding them to the rules won "with 97%" on
    WNUT-17 (seed 1, 400 decisions, where 16% of the questions were accepted) and scored 0.191
    against the rules' 0.205 on the test gold."""
    incumbent, challenger = set(incumbent), set(challenger)
    if not answers:
        return None
    by_text: dict[int, tuple[list[SpanKey], list[SpanKey], list[SpanKey]]] = {}
    for position, keys in enumerate((incumbent, challenger, answers)):
        for key in keys:
            by_text.setdefault(key[0], ([], [], []))[position].append(key)
    texts = sorted(by_text)  # the same draws whatever the order of the sets (and the process's hash seed)
    rng = np.random.default_rng(seed)
    wins = 0.0
    for _ in range(resamples):
        drawn: tuple[set, set, dict] = (set(), set(), {})
        for copy, text in enumerate(rng.choice(len(texts), size=len(texts))):
            own_incumbent, own_challenger, own_answers = by_text[texts[text]]
            drawn[0].update((copy, *key) for key in own_incumbent)
            drawn[1].update((copy, *key) for key in own_challenger)
            drawn[2].update({(copy, *key): answers[key] for key in own_answers})
        scored = compare(*drawn, rng=rng)
        f_incumbent, f_challenger = f_rank(scored["rules"]["f"]), f_rank(scored["model"]["f"])
        wins += 1.0 if f_challenger > f_incumbent else 0.5 if f_challenger == f_incumbent else 0.0
    return round(wins / resamples, 3)


def choose(predicted: Mapping[str, Iterable[SpanKey]], answers: Mapping[SpanKey, bool],
           ladder: Sequence[str]) -> tuple[str, dict[str, dict[str, Any]]]:
    """The pipeline to hand over of those whose held-out spans are ``predicted`` (name -> spans).
    ``ladder`` orders them from the least change to the most, the first being the incumbent;
    each next one replaces the current choice only where it beats it with
    :data:`HANDOVER_CONFIDENCE` (:func:`confidence`). Returns the name and, per challenger, the
    choice it was tried ``against`` and its ``confidence``. The burden of proof is on each
    change because the held-out texts are few: a user who wrote the rules keeps them until the
    decisions show something better."""
    chosen, trials = ladder[0], {}
    for name in ladder[1:]:
        sure = confidence(predicted[chosen], predicted[name], answers)
        trials[name] = {"against": chosen, "confidence": sure}
        if sure is not None and sure >= HANDOVER_CONFIDENCE:
            chosen = name
    return chosen, trials


def f_rank(f: float | None) -> float:
    """An F to pick the best by, where None (nothing to compare on) ranks below every score."""
    return -1.0 if f is None else f


def _described(strata: Mapping[str, Stratum], missed: int, prior: float | None) -> dict[str, Any]:
    return {**{name: vars(stratum) for name, stratum in strata.items()}, "accepted_by_neither": missed,
            "prior": _round(prior)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)

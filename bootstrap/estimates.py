"""How good the labels are now, and whether more decisions are likely to help: the page's estimates.

**Precision and recall of the training labels**, from exploration answers only. Those questions
were drawn uniformly from the open candidates (:mod:`bootstrap.ranking`), so they are an
unbiased sample where the ranked ones are not. For each, the label the training set gave that
span *just before* it was answered is reconstructed from what is stored: the string's earlier
decisions if there were any and they agreed (``bootstrap.weak_labels`` carries a decision to
every occurrence of its string), else the aggregate's probability at ask time (stored with the
answer) above 0.5. Then

* precision = the share of those labelled entities that the person accepted;
* recall = the share of accepted ones that were labelled entities. This is recall *among the
  candidates* (what some rule, function or the model proposed); an entity nobody proposed is
  never asked, so the page says "of the candidates".

Each is a Beta(1, 1) posterior over the most recent ``WINDOW`` exploration answers (the labels
improve as decisions arrive, so old questions describe old labels), F's interval by sampling
both. With 10% exploration a window of 60 spans about the last 600 decisions.

**The stopping hint** asks the ranking what the next ``NEXT`` decisions could change: each of
the best-ranked questions (one per string: an answer settles its whole string) flips its label
with probability ``min(p, 1 − p)`` and carries the flip to every open occurrence it reaches.
When those expected changes are under ``HINT_SHARE`` of the candidates, another hundred
decisions are unlikely to move the training set, and so the model: train and look at it, or
write rules for what it misses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from .aggregate import beta_interval
from .labelmatrix import surface_key

if TYPE_CHECKING:
    from .ranking import Ranker
    from .store import Answer

WINDOW = 60  # most recent exploration answers the estimates use
NEXT = 100  # decisions the stopping hint looks ahead
HINT_SHARE = 0.01  # expected label changes per NEXT decisions, of the candidates, below which more decisions hardly help
LEVEL = 0.95
F_DRAWS = 4000


@dataclass(frozen=True)
class LabelQuality:
    """Estimated precision, recall among candidates and F of the labels, each ``(estimate, low, high)``."""

    precision: tuple[float, float, float] | None
    recall: tuple[float, float, float] | None
    f: tuple[float, float, float] | None
    n: int  # exploration answers (accept or reject) the estimates use
    labelled: int  # of those, spans the labels called entities
    accepted: int  # of those, spans the person accepted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_quality(answers: Iterable[Answer], window: int = WINDOW) -> LabelQuality:
    """The training labels' precision and recall from the exploration answers (module docstring).

    ``answers`` are the dataset's live answers, oldest first (``Store.answers``): every answer
    counts as an earlier decision on its string; only exploration answers are scored.
    """
    verdicts: dict[tuple[str, str], set[str]] = {}  # (surface key, label) -> answers given so far
    scored: list[tuple[bool, bool]] = []  # (labelled an entity, accepted)
    for answer in answers:
        if answer.answer == "ignore":
            continue
        key = (surface_key(answer.span_text or ""), answer.label)
        earlier = verdicts.setdefault(key, set())
        if answer.exploration and (earlier or answer.probability is not None):
            labelled = earlier == {"accept"} if len(earlier) == 1 else (answer.probability or 0.0) > 0.5
            scored.append((labelled, answer.answer == "accept"))
        earlier.add(answer.answer)
    scored = scored[-window:]
    labelled = [accepted for is_entity, accepted in scored if is_entity]
    found = [is_entity for is_entity, accepted in scored if accepted]
    precision = _interval(sum(labelled), len(labelled) - sum(labelled))
    recall = _interval(sum(found), len(found) - sum(found))
    return LabelQuality(precision, recall, _f_interval(labelled, found), len(scored), len(labelled), len(found))


def _interval(successes: int, failures: int) -> tuple[float, float, float] | None:
    interval = beta_interval(successes, failures, LEVEL)
    return None if not interval.n else (round(interval.estimate, 4), round(interval.low, 4), round(interval.high, 4))


def _f_interval(labelled: list[bool], found: list[bool]) -> tuple[float, float, float] | None:
    """F's posterior mean and interval, drawing precision and recall from their Beta posteriors."""
    if not labelled or not found:
        return None
    rng = np.random.default_rng(0)
    p = rng.beta(sum(labelled) + 1, len(labelled) - sum(labelled) + 1, F_DRAWS)
    r = rng.beta(sum(found) + 1, len(found) - sum(found) + 1, F_DRAWS)
    f = 2 * p * r / (p + r)
    tail = (1 - LEVEL) / 2
    return round(float(f.mean()), 4), round(float(np.quantile(f, tail)), 4), round(float(np.quantile(f, 1 - tail)), 4)


def stopping_hint(ranker: Ranker, ahead: int = NEXT) -> dict[str, Any]:
    """What the next ``ahead`` decisions could change, and whether that is worth asking for."""
    changes = ranker.expected_changes(ahead)
    candidates = ranker.table.n_questions
    share = changes / candidates if candidates else 0.0
    return {
        "next": ahead, "expected_changes": round(changes, 1), "candidates": candidates, "share": round(share, 4),
        "worth_asking": bool(ranker.remaining) and share >= HINT_SHARE,
    }


def estimates(answers: Iterable[Answer], ranker: Ranker) -> dict[str, Any]:
    """The page's and ``bootstrap stats``' estimates: the labels' quality, the stopping hint, and
    the model's questions (``Ranker.model_questions``: how often its own spans are accepted)."""
    return {"quality": label_quality(answers).to_dict(), "hint": stopping_hint(ranker),
            "model_questions": ranker.model_questions()}


def describe(found: dict[str, Any]) -> list[str]:
    """The estimates in words, as ``bootstrap stats`` prints them (the page words them alike)."""
    quality, hint = found["quality"], found["hint"]
    if quality["n"]:
        parts = [f"{name} {_fmt(quality[key])}" for name, key in
                 (("precision", "precision"), ("recall of the candidates", "recall"), ("F", "f"))]
        lines = [f"Labels, from the last {quality['n']} exploration answers: " + ", ".join(parts)]
    else:
        lines = ["Labels: no exploration answers yet to estimate their precision and recall from"]
    verdict = ("worth asking" if hint["worth_asking"] else
               "unlikely to help: train a model and look at what it misses, or write rules for it")
    lines.append(f"The next {hint['next']} decisions would change about {hint['expected_changes']:,.0f} of "
                 f"{hint['candidates']:,} candidate labels ({hint['share']:.1%}): {verdict}")
    model = found.get("model_questions")
    if model:
        lines.append(model_questions_line(model))
    return lines


def model_questions_line(model: dict[str, Any]) -> str:
    """The model's questions in words (the page says it alike)."""
    def accepted(side: str) -> str:
        n = model[f"{side}_answered"]
        return f"{model[f'{side}_accepted'] / n:.0%} of {n:,} accepted" if n else "none answered yet"

    return (f"The model's own spans get {model['share']:.0%} of the ranked questions: "
            f"theirs {accepted('model')}, the rules' {accepted('rules')}")


def _fmt(interval: list[float] | tuple[float, float, float] | None) -> str:
    return "–" if interval is None else f"{interval[0]:.2f} [{interval[1]:.2f}, {interval[2]:.2f}]"


class CachedEstimates:
    """A session's estimates, recomputed on every one of the first ``first`` answers (few answers
    to read, and the page's first figures should follow each one), then every ``every``: they
    read every stored answer and rank the whole table (about 8 ms CPU at 34k questions), too
    much for each of the page's redraws once a session is under way."""

    def __init__(self, first: int = 20, every: int = 25):
        self.first, self.every = first, every
        self._at: int | None = None
        self._value: dict[str, Any] | None = None

    def get(self, answers_so_far: int, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        step = 1 if answers_so_far <= self.first else self.every
        if self._value is None or self._at is None or abs(answers_so_far - self._at) >= step:
            self._value, self._at = compute(), answers_so_far
        return self._value

    def clear(self) -> None:
        self._value = None

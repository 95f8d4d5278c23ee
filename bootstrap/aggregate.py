"""From votes to a probability per candidate, and from each decision to better probabilities.

**Fit.** Two fits are made of the label matrix, and :attr:`Aggregate.method` says which one
the probabilities come from (:attr:`Aggregate.method_reason` says why):

* the **weighted vote** — the rules' plain vote: every rule and function is assumed right with
  probability ``fallback_accuracy``, each class starts equally likely, and the votes combine as
  below; a boundary column (``rule#boundary``) does not vote here, since "another rule matched
  a longer span" says nothing about this one's label. Before any decision its labels
  (:func:`labelled`) are exactly what the rules say: a span some rule proposes and no negative
  rule or function contradicts, with the label of its most specific rule where rules of several
  labels propose it (:func:`most_probable_class`);
* Snorkel's **LabelModel**, when it can learn something: at least three columns that vote and
  rows where two of them meet (it estimates each LF's accuracy from how LFs agree and
  disagree; with no overlap there is nothing to estimate from).

The LabelModel is not trusted blindly. Where rules rarely overlap its accuracy estimates can
invert the truth (measured on a biomedical corpus: a formula regex, 25% right, estimated at
0.99; a suffix rule, 91% right, at 0.09; its labels F 0.17 against the plain vote's 0.61). So
with ``method="auto"`` (the default) the plain vote is used until ``MIN_COMPARED`` accepted or
rejected *exploration* answers can tell the two apart, and from then on, at every fit, the
LabelModel is used only if its labels (:func:`labelled`) score an F at least ``SWITCH_MARGIN`` higher
than the plain vote's on them (a smaller lead on a few dozen answers is noise), and only once
``MIN_ACCEPTS_COMPARED`` of those answers are accepts: where one candidate in twenty is an entity
(WNUT-17) thirty answers hold one or two, and the LabelModel "won" on them at 400 decisions, then
labelled 528 entities where the plain vote had 6,247 (the model fell from F 0.13 to 0.01). Only the
exploration answers count: they are a uniform sample of the questions, where the ranked ones
are the uncertain, frequent strings. Judged on all decisions, the LabelModel won on the ranked
ones and then labelled NCBI-disease with 184 entities where the plain vote had 2,591, and the
model trained on them fell from F 0.33 to 0.11.

**Learning from decisions without refitting.** The LabelModel's estimated accuracy of each LF
is the prior of a Beta posterior over that LF's precision (``prior_strength`` pseudo-decisions).
Every accept or reject is evidence about each LF that voted on the candidate: it was right or
wrong. A probability is then the LabelModel's, corrected in log-odds by how far each voting LF's
posterior moved from its prior::

    logit P(row is c) = log P_LabelModel(c) + Σ_{LF j voting c} (w(posterior_j) − w(prior_j))
    w(a) = log(a (k − 1) / (1 − a))

``w`` is the weight of a vote in a conditionally independent model of ``k`` classes whose LF is
right with probability ``a`` (the model the LabelModel fits). Before any decision the sum is
zero and the probabilities are exactly the LabelModel's; after one, every candidate an affected
LF voted on moves at once, in one sparse product over all rows (see ``benchmarks/``).

**Identical strings.** Decisions on a string also move its other occurrences with the same
label: a Beta(1, 1) over "accepted" per (string as `labelmatrix.surface_key` keys it, label, whether it overlaps another
candidate) adds its log-odds, so one reject of "cancer" pushes every other "cancer" down instead
of leaving them all at the top of the queue — but a reject of "cancer" inside "breast cancer"
moves only the other nested "cancer"s: it was about the boundary.

**Refit.** Every so many decisions (the session's ``refit_every``) the LabelModel is fit again with the class balance
seen in the decisions (exploration decisions when there are enough, as they are unbiased), and
the posteriors keep their counts on top of the new priors.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

import numpy as np
from scipy.stats import beta as beta_distribution

from .boundaries import Rivals
from .labelmatrix import ABSTAIN, NOT_ENTITY, CandidateTable, surface_key

Answer = Literal["accept", "reject", "ignore"]
ACCURACY_RANGE = (0.01, 0.99)
UNANSWERED = -1  # a question cell nobody accepted or rejected (``Aggregate.cell_answers``)
Method = Literal["auto", "LabelModel", "weighted vote"]
METHODS = ("auto", "LabelModel", "weighted vote")
MIN_COMPARED = 30  # accepted or rejected questions before the LabelModel may replace the plain vote
MIN_ACCEPTS_COMPARED = 10  # ... of them accepted: F on two or three entities is noise
SWITCH_MARGIN = 0.05  # ... and the F it must win by: on a few dozen answers a smaller lead is noise


@dataclass(frozen=True)
class Interval:
    estimate: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class LFStats:
    """What the user sees per labeling function (``bootstrap stats`` and the page)."""

    name: str
    kind: str
    label: str | None
    negative: bool
    coverage: int  # rows it votes on
    overlaps: int  # of those, rows where another LF votes too
    conflicts: int  # of those, rows where another LF votes another class
    label_model_accuracy: float | None
    precision: float  # posterior mean, what the ranking uses
    from_decisions: Interval  # right / (right + wrong) over all decisions, Beta(1, 1) 95% interval
    from_exploration: Interval  # the same over exploration decisions only: unbiased

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["from_decisions"] = dict(self.from_decisions.__dict__)
        data["from_exploration"] = dict(self.from_exploration.__dict__)
        return data


@functools.cache
def _label_model_class():
    """Defined on first use: importing snorkel imports torch, which commands that never fit skip."""
    from snorkel.labeling.model import LabelModel

    class _CountedLabelModel(LabelModel):
        """Snorkel's LabelModel fit on the distinct rows of a label matrix, each with its count.

        Only the overlap matrix ``O`` and the coverages depend on the rows themselves; both are
        sums over rows, so weighting each distinct row by its count gives exactly what the full
        matrix gives. ``mu_eps`` (the clamp) is set from the real number of rows, as Snorkel does.
        """

        def fit_counted(self, distinct: np.ndarray, counts: np.ndarray, **kwargs) -> None:
            self._counts = counts.astype(float)
            total = self._counts.sum()
            kwargs.setdefault("mu_eps", min(0.01, 1 / 10 ** np.ceil(np.log10(total))))
            self.fit(distinct, **kwargs)

        def _generate_O(self, L: np.ndarray, higher_order: bool = False) -> None:
            import torch

            L_aug = self._get_augmented_label_matrix(L, higher_order=higher_order)
            self.d = L_aug.shape[1]
            total = self._counts.sum()
            self.O = torch.from_numpy((L_aug.T * self._counts) @ L_aug / total).float().to(self.config.device)
            self.coverage = ((L != 0) * self._counts[:, None]).sum(axis=0) / total  # L is shifted: 0 abstains

    return _CountedLabelModel


def counted_label_model(**kwargs):
    """A LabelModel that fits on distinct rows with counts (see ``_label_model_class``)."""
    return _label_model_class()(**kwargs)


def fit_label_model(distinct: np.ndarray, counts: np.ndarray, cardinality: int, class_balance: list[float] | None,
                    epochs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Snorkel's LabelModel fit on a label matrix's distinct rows with their counts: each
    column's estimated accuracy, and each distinct row's class probabilities. Arrays in, arrays
    out, so a worker process can run it (:mod:`bootstrap.refit`)."""
    import torch

    # The LabelModel's matrices are tiny (LFs × classes): extra torch threads only add
    # synchronisation. Measured here on 9k × 40, 7 classes: 2.4 s with one thread,
    # 15-18 s with two on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = counted_label_model(cardinality=cardinality, verbose=False)
        model.fit_counted(distinct, counts, class_balance=class_balance, n_epochs=epochs, seed=seed, progress_bar=False)
        return model.get_weights(), model.predict_proba(distinct)
    finally:
        torch.set_num_threads(threads)


Runner = Callable[..., Any]  # runs ``function(*args)`` and returns its result: here, or in a worker process


def run_here(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, in this thread."""
    return function(*args)


@dataclass(frozen=True)
class Fit:
    """What a fit yields: the method used, each LF's prior accuracy, per-row base log-probabilities.

    ``alternatives`` holds every fit that was made (by method), so the rules' view can be
    compared with a trained model by the better of them (``handoff``); ``reason`` says why
    ``method`` was chosen.
    """

    method: str
    prior_accuracy: np.ndarray
    base_log_proba: np.ndarray
    label_model_accuracy: np.ndarray | None
    reason: str = ""
    alternatives: dict[str, "Fit"] = field(default_factory=dict, compare=False, repr=False)


def distinct_rows(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of a label matrix (as int64, for Snorkel), each row's index among them,
    and their counts. Rows are compared as raw bytes of the int8 matrix: ``np.unique(axis=0)``
    on int64 would sort a copy eight times the size."""
    packed = np.ascontiguousarray(L, dtype=np.int8)
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    return packed[first].astype(np.int64), inverse.reshape(-1), counts


def row_reduce(ufunc: np.ufunc, matrix: np.ndarray) -> np.ndarray:
    """``ufunc.reduce(matrix, axis=1)`` column by column: with a handful of classes and 100k rows,
    numpy's reduction along the short axis is 20-50 times slower than this loop over columns."""
    out = matrix[:, 0].copy()
    for column in range(1, matrix.shape[1]):
        ufunc(out, matrix[:, column], out=out)
    return out


def format_interval(interval: dict[str, Any]) -> str:
    """An interval as ``bootstrap stats`` and the report show it: ``0.83 [0.61, 0.95] n=12``."""
    if not interval["n"]:
        return "–"
    return f"{interval['estimate']:.2f} [{interval['low']:.2f}, {interval['high']:.2f}] n={interval['n']}"


def vote_weight(accuracy: np.ndarray, cardinality: int) -> np.ndarray:
    accuracy = np.clip(accuracy, *ACCURACY_RANGE)
    return np.log(accuracy * (cardinality - 1) / (1 - accuracy))


def beta_interval(successes: int, failures: int, level: float = 0.95) -> Interval:
    """Posterior mean and equal-tailed interval of a rate under a Beta(1, 1) prior."""
    n = successes + failures
    if n == 0:
        return Interval(None, None, None, 0)
    a, b = successes + 1, failures + 1
    tail = (1 - level) / 2
    low, high = beta_distribution.ppf([tail, 1 - tail], a, b)
    return Interval(a / (a + b), float(low), float(high), n)


def counted_votes(table: CandidateTable) -> np.ndarray:
    """The label matrix as the aggregate weighs it: a trained model's vote (``labelmatrix.with_model``)
    counts only on the rows no rule or function voted on, the spans it alone proposes.

    On the rules' own candidates the model is no independent voter: it learned from the rules'
    weak labels, so there it mostly repeats them, and its vote counted the rules twice. The
    frequent strings the rules label alike looked settled and were asked late. Measured on
    NCBI-disease (12 seeds, the same first model adopted at the start, the rules corrected by 200
    decisions): F 0.435 with the model's vote and belief on the rules' candidates, 0.446 without,
    0.458 with no model in the loop (the rest is the model's share of the questions, spent on
    spans no rule proposed). Where the model sees a decided string otherwise, that still counts:
    it is asked again (``ranking.disputed``)."""
    model = np.array([column.kind == "model" for column in table.columns])
    if not model.any():
        return table.L
    votes = table.L.copy()
    votes[np.ix_(table.ruled_rows(), model)] = ABSTAIN
    return votes


class Aggregate:
    """Probabilities per candidate from the label matrix, updated by every decision."""

    def __init__(
        self,
        table: CandidateTable,
        *,
        prior_strength: float = 10.0,
        fallback_accuracy: float = 0.7,
        seed: int = 0,
        epochs: int = 500,
        method: Method = "auto",
        label_model_later: str | None = None,
    ):
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.table = table
        self.requested_method = method
        # Why the LabelModel is not fit yet, or None to fit it: a session's first fit is the plain
        # vote alone (a corpus's first texts; a start whose full fit runs in the background). Until
        # exploration answers judge it the LabelModel could not be chosen anyway, and its fit and
        # imports are seconds the first question should not wait for.
        self.label_model_later = label_model_later
        self.prior_strength = prior_strength
        self.fallback_accuracy = fallback_accuracy
        self.seed = seed
        self.epochs = epochs
        self.votes = counted_votes(table)  # the label matrix as weighed here: a model counts on its own rows only
        n_lfs = table.L.shape[1]
        self.right = np.zeros(n_lfs)
        self.wrong = np.zeros(n_lfs)
        self.explore_right = np.zeros(n_lfs, dtype=np.int64)
        self.explore_wrong = np.zeros(n_lfs, dtype=np.int64)
        self.decisions: dict[tuple[int, int], tuple[Answer, bool]] = {}  # (row, class) -> (answer, exploration)
        self._vote_rows, self._vote_columns = np.nonzero(self.votes != ABSTAIN)
        self._vote_classes = self.votes[self._vote_rows, self._vote_columns].astype(np.int64)
        self._surface_group, self._surface_keys = self._surface_groups()
        self._surface_accepts = np.zeros(len(self._surface_keys))
        self._surface_rejects = np.zeros(len(self._surface_keys))
        k = table.cardinality
        self._evidence_index = np.concatenate([  # (row, class) cells the votes and the strings add to
            self._vote_rows * k + self._vote_classes,
            table.question_row.astype(np.int64) * k + table.question_class,
        ])
        self._decided: dict[int, np.ndarray] = {}  # row -> logit mask: -inf where a decision rules a class out
        self._answers_of_row: dict[int, dict[int, Answer]] = {}  # row -> class -> answer
        self._answer_at_cell = np.full(table.n_rows * k, UNANSWERED, dtype=np.int8)  # per (row, class): 1 accepted, 0 rejected
        self.rivals = Rivals(table)  # candidates overlapping with other boundaries (:mod:`bootstrap.boundaries`)
        self._accepted_rivals = np.zeros(table.n_rows, dtype=np.int32)  # per row, its accepted rivals
        self._cache: np.ndarray | None = None
        self.fit()

    # -- fitting ---------------------------------------------------------------------------

    def can_fit_label_model(self) -> bool:
        """Three voting columns and some rows where votes meet; else the LabelModel learns nothing."""
        voting = np.count_nonzero((self.votes != ABSTAIN).any(axis=0))
        overlapping = np.count_nonzero((self.votes != ABSTAIN).sum(axis=1) >= 2)
        return voting >= 3 and overlapping >= max(10, 0.01 * self.table.n_rows)

    def fit(self, class_balance: np.ndarray | None = None) -> None:
        """Fit the LabelModel (or set up the weighted vote) and reset the priors to its estimates."""
        self.apply_fit(self.compute_fit(class_balance))

    def compute_fit(self, class_balance: np.ndarray | None = None, run: Runner = run_here) -> Fit:
        """The slow half of :meth:`fit`: reads only the label matrix and the decisions made so
        far (a copy is taken), so it may run in another thread. ``run(function, *args)`` runs the
        LabelModel's fit (:func:`fit_label_model`): here by default; a session's background refit
        passes a worker process's (:mod:`bootstrap.refit`)."""
        decisions = dict(self.decisions)
        fits = {"weighted vote": self._weighted_vote_fit()}
        if self.label_model_later is None and self.requested_method != "weighted vote" and self.table.n_rows and self.can_fit_label_model():
            accuracy = np.full(self.votes.shape[1], self.fallback_accuracy)
            active = (self.votes != ABSTAIN).any(axis=0)
            accuracy[active], proba = self._fit_label_model(self.votes[:, active], class_balance, run)
            np.log(np.clip(proba, 1e-9, 1.0, out=proba), out=proba)  # (in place: rows × classes, 100 MB at 1M texts)
            fits["LabelModel"] = Fit("LabelModel", accuracy, proba, label_model_accuracy=accuracy)
        method, reason = self._choose(fits, decisions)
        return replace(fits[method], reason=reason, alternatives=fits)

    def _weighted_vote_fit(self) -> Fit:
        """The rules' plain vote: every voter trusted at ``fallback_accuracy``, classes equally
        likely, boundary columns silent (see the module docstring)."""
        k = self.table.cardinality
        accuracy = np.full(self.votes.shape[1], self.fallback_accuracy)
        weights = vote_weight(accuracy, k)
        weights[[column.kind == "boundary" for column in self.table.columns]] = 0.0
        base = self._vote_logits(weights)
        base += -math.log(k)
        return Fit("weighted vote", accuracy, base, label_model_accuracy=None)

    def _choose(self, fits: dict[str, Fit], decisions: dict[tuple[int, int], tuple[Answer, bool]]) -> tuple[str, str]:
        """Which fit to use, and why in one line (shown by ``bootstrap stats`` and the page)."""
        if self.requested_method != "auto":
            if self.requested_method in fits:
                return self.requested_method, f"{self.requested_method}, as asked"
            return "weighted vote", "weighted vote: the LabelModel needs three voting columns that overlap"
        if self.label_model_later is not None:
            return "weighted vote", f"weighted vote: {self.label_model_later}"
        if "LabelModel" not in fits:
            return "weighted vote", "weighted vote: the LabelModel needs three voting columns that overlap"
        explored = {key: value for key, value in decisions.items() if value[1]}
        scores, compared = compare_fits(self.table, fits, explored)
        if compared < MIN_COMPARED:
            return "weighted vote", (f"weighted vote: {compared} of {MIN_COMPARED} exploration answers needed "
                                     "before the LabelModel may replace the rules' plain vote")
        accepted = sum(answer == "accept" for answer, _ in explored.values())
        if accepted < MIN_ACCEPTS_COMPARED:
            return "weighted vote", (f"weighted vote: {accepted} of {MIN_ACCEPTS_COMPARED} accepted exploration answers "
                                     "needed before the LabelModel may replace the rules' plain vote")
        vote, label_model = scores["weighted vote"], scores["LabelModel"]
        summary = f"F {label_model:.2f} (LabelModel) vs {vote:.2f} (plain vote) on {compared} exploration answers"
        if label_model > vote + SWITCH_MARGIN:
            return "LabelModel", f"LabelModel: {summary}"
        return "weighted vote", f"weighted vote: {summary}"

    def apply_fit(self, fit: Fit) -> None:
        """The fast half of :meth:`fit`: new priors and base probabilities; decisions are kept."""
        self.method = fit.method
        self.method_reason = fit.reason
        self.fits = fit.alternatives or {fit.method: fit}
        self.prior_accuracy = fit.prior_accuracy
        self.base_log_proba = fit.base_log_proba
        self.label_model_accuracy = fit.label_model_accuracy
        self.decisions_since_fit = 0
        self._cache = None

    def _fit_label_model(self, L: np.ndarray, class_balance: np.ndarray | None,
                         run: Runner = run_here) -> tuple[np.ndarray, np.ndarray]:
        """Snorkel's LabelModel on the voting columns: per-LF accuracies and per-row probabilities.

        Rows with the same votes get the same probabilities, and a label matrix has few distinct
        rows (58 of 25,900 on the example rules), so the model is fit and applied on the distinct
        rows with their counts; the result is the same, without the dense rows × LFs × classes
        matrix Snorkel would build for every row (6 GB at a million candidates).
        """
        distinct, inverse, counts = distinct_rows(L)
        balance = None if class_balance is None else [float(share) for share in class_balance]
        weights, proba = run(fit_label_model, distinct, counts, self.table.cardinality, balance, self.epochs, self.seed)
        return np.clip(weights, *ACCURACY_RANGE), proba[inverse]

    def refit(self) -> None:
        """Fit again with the class balance the decisions show."""
        self.fit(self.decision_class_balance())

    def decision_class_balance(self) -> np.ndarray | None:
        """Class shares among decided questions (exploration ones when there are 20: unbiased)."""
        answered = [(row, cls, answer, explored) for (row, cls), (answer, explored) in self.decisions.items() if answer != "ignore"]
        explored = [item for item in answered if item[3]]
        sample = explored if len(explored) >= 20 else answered
        balance = None
        if sample:
            counts = np.ones(self.table.cardinality)  # add-one smoothing
            for row, cls, answer, _ in sample:
                counts[cls if answer == "accept" else NOT_ENTITY] += 1
            balance = counts / counts.sum()
        return balance

    # -- decisions ---------------------------------------------------------------------------

    def observe(self, row: int, cls: int, answer: Answer, exploration: bool = False) -> None:
        """Record a decision on (row, class): evidence about every LF that voted on the row."""
        if (row, cls) in self.decisions:
            self.forget(row, cls)
        was_accepted = self._accepted(row)
        self.decisions[(row, cls)] = (answer, exploration)
        self._answers_of_row.setdefault(row, {})[cls] = answer
        self._mask_row(row)
        self._settle_rivals(row, was_accepted)
        self._count(row, cls, answer, exploration, +1)
        self.decisions_since_fit += 1

    def forget(self, row: int, cls: int) -> None:
        """Take a decision back (undo, or a changed answer)."""
        was_accepted = self._accepted(row)
        answer, exploration = self.decisions.pop((row, cls))
        del self._answers_of_row[row][cls]
        self._mask_row(row)
        self._settle_rivals(row, was_accepted)
        self._count(row, cls, answer, exploration, -1)

    def _accepted(self, row: int) -> bool:
        return "accept" in self._answers_of_row.get(row, {}).values()

    def _settle_rivals(self, row: int, was_accepted: bool) -> None:
        """An accepted span rules out its rivals (:mod:`bootstrap.boundaries`); taken back, it no
        longer does."""
        now_accepted = self._accepted(row)
        if now_accepted == was_accepted:
            return
        rivals = self.rivals.of(row)
        self._accepted_rivals[rivals] += 1 if now_accepted else -1
        for rival in rivals.tolist():
            self._mask_row(rival)

    def boundary_settled(self) -> np.ndarray:
        """Per row: ruled out by an accepted rival."""
        return self._accepted_rivals > 0

    def _count(self, row: int, cls: int, answer: Answer, exploration: bool, sign: int) -> None:
        self._cache = None
        if answer == "ignore":
            return
        votes = self.votes[row]
        voting = np.flatnonzero(votes != ABSTAIN)
        right, wrong = _judge(votes[voting], cls, answer, self._other_labels_proposed(row, cls))
        self.right[voting[right]] += sign
        self.wrong[voting[wrong]] += sign
        if exploration:
            self.explore_right[voting[right]] += sign
            self.explore_wrong[voting[wrong]] += sign
        self._answer_at_cell[row * self.table.cardinality + cls] = (answer == "accept") if sign > 0 else UNANSWERED
        group = self._surface_group_of(row, cls)
        if group is not None:
            (self._surface_accepts if answer == "accept" else self._surface_rejects)[group] += sign

    def _other_labels_proposed(self, row: int, cls: int) -> bool:
        votes = self.votes[row]
        return bool(np.any((votes > NOT_ENTITY) & (votes != cls)))

    # -- probabilities -----------------------------------------------------------------------

    def posterior_accuracy(self) -> np.ndarray:
        a = self.prior_strength * self.prior_accuracy + self.right
        b = self.prior_strength * (1 - self.prior_accuracy) + self.wrong
        return a / (a + b)

    def probabilities(self) -> np.ndarray:
        """P(row is class c), rows × classes; decided (row, class) pairs are 1 or 0.

        One bincount adds every vote's weight change and every string's log-odds to the base
        log-probabilities; decisions enter as a mask of -inf logits kept up to date by
        :meth:`observe`, so the cost does not grow with the number of decisions.
        """
        if self._cache is None:
            k = self.table.cardinality
            shift = vote_weight(self.posterior_accuracy(), k) - vote_weight(self.prior_accuracy, k)
            surface = np.log((self._surface_accepts + 1) / (self._surface_rejects + 1))
            weights = np.concatenate([shift[self._vote_columns], surface[self._surface_group]])
            logits = np.bincount(self._evidence_index, weights=weights, minlength=self.table.n_rows * k)
            logits = logits.astype(np.float64, copy=False).reshape(self.table.n_rows, k)  # (no evidence: ints)
            logits += self.base_log_proba
            if self._decided:  # (a mask per decided row, not a rows × classes array of zeros)
                rows = np.fromiter(self._decided, dtype=np.int64, count=len(self._decided))
                logits[rows] += np.stack(list(self._decided.values()))
            logits -= row_reduce(np.maximum, logits)[:, None]
            proba = np.exp(logits)
            proba /= row_reduce(np.add, proba)[:, None]
            self._cache = proba
        return self._cache

    def _mask_row(self, row: int) -> None:
        """The decided row's logit mask: an accept leaves only its class, a reject removes its own,
        an accepted rival every entity class."""
        k = self.table.cardinality
        answers = self._answers_of_row.get(row, {})
        mask = np.zeros(k)
        accepted = [cls for cls, answer in answers.items() if answer == "accept"]
        if accepted:
            mask[:] = -np.inf
            mask[accepted[-1]] = 0.0
        else:
            for cls, answer in answers.items():
                if answer == "reject":
                    mask[cls] = -np.inf
            if self._accepted_rivals[row] > 0:  # a rival span was accepted: this one is not an entity
                mask[NOT_ENTITY + 1:] = -np.inf
            if np.isinf(mask).all():
                mask[NOT_ENTITY] = 0.0
        if mask.any():
            self._decided[row] = mask
        else:
            self._decided.pop(row, None)

    def question_probabilities(self) -> np.ndarray:
        """P(yes) for every question (row, label) of the table."""
        return self.probabilities()[self.table.question_row, self.table.question_class]

    def _vote_logits(self, weight_per_lf: np.ndarray) -> np.ndarray:
        """Σ over LFs voting class c of their weight, for every row and class, as one bincount."""
        k = self.table.cardinality
        flat = self._vote_rows * k + self._vote_classes
        sums = np.bincount(flat, weights=weight_per_lf[self._vote_columns], minlength=self.table.n_rows * k)
        return sums.astype(np.float64, copy=False).reshape(self.table.n_rows, k)  # (no votes at all: bincount gives ints)

    def _surface_groups(self) -> tuple[np.ndarray, list[tuple[str, int, bool]]]:
        """Per question, the index of its (``surface_key`` of the string, class, overlapping) group.

        Occurrences that overlap another candidate are grouped apart from those that stand
        alone: a reject of "cancer" inside "breast cancer" is about the boundary, and says
        nothing about "cancer" on its own (``CandidateTable.overlapping``).
        """
        keys: dict[tuple[str, int, bool], int] = {}
        text = self.table.text
        surface = {string: surface_key(string) for string in set(text)}  # (far fewer strings than questions)
        rows = self.table.question_row
        groups = np.fromiter(
            (keys.setdefault((surface[text[row]], cls, overlapping), len(keys))
             for row, cls, overlapping in zip(rows.tolist(), self.table.question_class.tolist(),
                                              self.table.overlapping()[rows].tolist())),
            dtype=np.int64, count=self.table.n_questions,
        )
        self._group_at_cell = np.full(self.table.n_rows * self.table.cardinality, -1, dtype=np.int64)
        self._group_at_cell[self.table.question_cells()] = groups
        return groups, list(keys)

    def question_groups(self) -> tuple[np.ndarray, int]:
        """Per question, the index of its (``surface_key`` of the string, class, overlapping) group; and how many groups."""
        return self._surface_group, len(self._surface_keys)

    def group_keys(self) -> list[tuple[str, int, bool]]:
        """Each string group's (``surface_key`` of the string, class, overlapping), by group index."""
        return self._surface_keys

    def cell_answers(self) -> np.ndarray:
        """Per (row, class) cell, flattened: 1 accepted, 0 rejected, ``UNANSWERED`` (ignored too)."""
        return self._answer_at_cell

    def group_answered(self) -> np.ndarray:
        """Per group: whether any of its questions was accepted or rejected."""
        return (self._surface_accepts > 0) | (self._surface_rejects > 0)

    def group_verdicts(self) -> np.ndarray:
        """Per group: 1 if its questions were only accepted, 0 if only rejected, -1 if undecided or mixed."""
        accepted, rejected = self._surface_accepts > 0, self._surface_rejects > 0
        return np.where(accepted & ~rejected, 1, np.where(rejected & ~accepted, 0, -1))

    def _surface_group_of(self, row: int, cls: int) -> int | None:
        group = int(self._group_at_cell[row * self.table.cardinality + cls])
        return None if group < 0 else group

    # -- what the user sees ------------------------------------------------------------------

    def lf_stats(self) -> list[LFStats]:
        voted = self.votes != ABSTAIN
        n_votes = voted.sum(axis=1)
        posterior = self.posterior_accuracy()
        stats = []
        for j, column in enumerate(self.table.columns):
            mine = voted[:, j]
            others = self.votes[mine]
            disagree = (others != ABSTAIN) & (others != others[:, [j]])
            stats.append(LFStats(
                name=column.name, kind=column.kind, label=column.label, negative=column.negative,
                coverage=int(mine.sum()),
                overlaps=int((n_votes[mine] >= 2).sum()),
                conflicts=int(disagree.any(axis=1).sum()),
                label_model_accuracy=None if self.label_model_accuracy is None else float(self.label_model_accuracy[j]),
                precision=float(posterior[j]),
                from_decisions=beta_interval(int(self.right[j]), int(self.wrong[j])),
                from_exploration=beta_interval(int(self.explore_right[j]), int(self.explore_wrong[j])),
            ))
        return stats


def fit_probabilities(fit: Fit) -> np.ndarray:
    """Rows × classes probabilities of a fit alone, before any decision moved them."""
    logits = fit.base_log_proba - fit.base_log_proba.max(axis=1, keepdims=True)
    proba = np.exp(logits)
    proba /= proba.sum(axis=1, keepdims=True)
    return proba


# -- what the aggregate labels --------------------------------------------------------------------


def most_probable_class(table: CandidateTable, proba: np.ndarray) -> np.ndarray:
    """Per row, its most probable class in ``proba`` (rows × classes), ties broken the rules' way.

    Ties are common: two rules of other labels, trusted alike, match one span ("Europe": a lone
    capitalised word, PERSON, and a list of places, LOCATION) and each label gets the same
    probability. "Not an entity" wins its ties (a negative rule vetoes a positive one, as the
    rules themselves say). Between labels, the one whose most specific voter (the rule or function
    with the fewest matches in the corpus) voted it wins: a list of places says more about
    "Europe" than the shape of a word does. Measured on WNUT-17's test split: the plain vote's
    labels F 0.192 with none chosen in a tie, 0.199 with the specific rule's (the rules 0.198).
    """
    best = row_reduce(np.maximum, proba)
    near = proba >= best[:, None] * (1 - 1e-9)
    chosen = np.argmax(near, axis=1)  # the first tied class: "not an entity" where it is one
    tied = np.flatnonzero(~near[:, NOT_ENTITY] & (near[:, 1:].sum(axis=1) > 1))
    if len(tied):
        matches = _fewest_voter_matches(table, tied)
        matches[~near[tied]] = np.inf
        chosen[tied] = np.argmin(matches, axis=1)
    return chosen


def _fewest_voter_matches(table: CandidateTable, rows: np.ndarray) -> np.ndarray:
    """``rows`` × classes: the fewest matches in the corpus of a column voting that class on that row."""
    coverage = (table.L != ABSTAIN).sum(axis=0)
    votes = table.L[rows]
    fewest = np.full((len(rows), table.cardinality), np.inf)
    for j in range(votes.shape[1]):
        voted = np.flatnonzero(votes[:, j] != ABSTAIN)
        cells = (voted, votes[voted, j])
        fewest[cells] = np.minimum(fewest[cells], coverage[j])
    return fewest


def entity_probability_if_chosen(table: CandidateTable, proba: np.ndarray) -> np.ndarray:
    """Per question, the probability that its row is an entity at all where its label is the
    row's :func:`most_probable_class`, else 0: the support :func:`labelled` gives a label that
    competes with others for a span it is surely one of."""
    rows, classes = table.question_row, table.question_class
    chosen = most_probable_class(table, proba)[rows] == classes
    return np.where(chosen, 1.0 - proba[rows, NOT_ENTITY], 0.0)


def labelled(table: CandidateTable, proba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per question, whether the aggregate's labels give its span its label: its probability is
    above ``threshold``, or its label is its row's most probable class and the row is an entity
    with probability above ``threshold``.

    The second half matters where labels compete: PERSON 0.42 and LOCATION 0.42 on a span leave
    each below one half, and ``p > 0.5`` alone labels nothing there, although the span is surely
    an entity. With one label it adds nothing (its most probable class is the label exactly when
    ``p > 0.5``), so a single-label project's labels are ``p > threshold`` as before.
    """
    yes = proba[table.question_row, table.question_class] > threshold
    return yes | (entity_probability_if_chosen(table, proba) > threshold)


def decided_f(predicted_yes: np.ndarray, accepted: np.ndarray) -> float:
    """F1 of yes-predictions against decisions, the accepted questions being the positives."""
    true_positives = float(np.sum(predicted_yes & accepted))
    if not true_positives:
        return 0.0
    return 2 * true_positives / (float(np.sum(predicted_yes)) + float(np.sum(accepted)))


def compare_fits(
    table: CandidateTable, fits: dict[str, Fit], decisions: dict[tuple[int, int], tuple[Answer, bool]],
) -> tuple[dict[str, float], int]:
    """Each fit's F on the decided questions (:func:`labelled` says yes), and how many were compared.

    Exploration answers are used alone once there are ``MIN_COMPARED`` of them: they are a
    uniform sample of the questions, so their F estimates the fit's on all of them.
    """
    question_at = table.question_at_cell() if decisions else np.zeros(0, dtype=np.int32)
    k = table.cardinality
    answered = [(int(question_at[row * k + cls]), answer == "accept", explored) for (row, cls), (answer, explored) in decisions.items()
                if answer != "ignore" and question_at[row * k + cls] >= 0]
    explored = [item for item in answered if item[2]]
    sample = explored if len(explored) >= MIN_COMPARED else answered
    if not sample:
        return {name: 0.0 for name in fits}, 0
    index = np.array([item[0] for item in sample])
    accepted = np.array([item[1] for item in sample])
    scores = {name: decided_f(labelled(table, fit_probabilities(fit))[index], accepted) for name, fit in fits.items()}
    return scores, len(sample)


def _judge(votes: np.ndarray, cls: int, answer: Answer, other_labels: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which votes a decision on (row, cls) proves right and which wrong (the rest stay unknown).

    An accept makes the row's class ``cls``: votes for it are right, all others wrong. A reject
    says only "not ``cls``": votes for ``cls`` are wrong, and "not an entity" votes are right when
    no other label was proposed on the row (with one, the row may still be that other label).
    """
    if answer == "accept":
        return votes == cls, votes != cls
    right = (votes == NOT_ENTITY) if not other_labels else np.zeros(len(votes), dtype=bool)
    return right, votes == cls

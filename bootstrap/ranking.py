"""Which question to ask next: the most uncertain, with a random share and a share per label.

The ranking *orders*; it never drops a question. Every (span, label) some rule or function
proposed stays reachable until it is answered, so the stream cannot "run dry" while anything is
left, and a rare label's matches are not filtered out on a cold start.

Score of an open question (row, label)::

    score = reach · (0.7 · uncertainty + 0.15 · entropy + 0.15 · conflict)

* ``reach``: how many open questions the answer settles — the question itself and every other
  open occurrence of the same string with the same label, since the training set carries a
  decision to every occurrence (:mod:`bootstrap.weak_labels`). One answer on a string that
  occurs forty times is worth forty answers on strings that occur once (measured on a
  biomedical corpus: deciding the 200 most frequent of 654 strings settles 72% of the rule
  candidates). Only a string's *first* answer is carried that far: once a string is decided
  (and every answer on it agrees), its other occurrences score as if they reached ``SETTLED``
  of a question — the annotator is not shown the same word again and again (a known complaint
  about ``ner.teach``), but they stay reachable, last — unless a model in the loop sees that
  occurrence otherwise (``disputed``): that one is worth asking again, for that occurrence
  alone (reach 1), and it is one of the model's questions (``model_share`` below).
  An accept reaches further still: an accepted string is an entity wherever it occurs, also
  where no rule proposed it, so a new string's reach adds, times the probability of a yes, its
  occurrences in the training sample that are no question of its own (``occurrences``,
  :mod:`bootstrap.occurrences`): "Myotonic dystrophy", proposed whole only beside its
  abbreviation, occurs 57 times in NCBI-disease's pool. Asked sooner so, the strings that reach
  far raised the corrected rules by 0.016 ± 0.007 at 100 decisions (12 seeds paired, no model;
  0.002 ± 0.007 at 200, 0.000 at 400: by then the same strings are decided either way).
  Which occurrence of a new string is asked is drawn at random: they all score the string's
  mean, so the answer carried is a fair sample of them, not the most atypical one.
  A string whose answers disagree ("cancer" accepted in one text, rejected in another) is
  carried nowhere, so another answer on it settles only its own question: reach 1. (Counting
  the whole string there had the loop ask 400 questions about 80 strings on NCBI-disease,
  where random order asked about 212.)
  **Boundaries**: a span that overlaps other candidates with other boundaries ("muscular
  dystrophy" inside "Duchenne muscular dystrophy") settles them too when it is accepted (an
  entity layer is flat: :mod:`bootstrap.boundaries`), so its reach grows by its open rivals
  times the probability of a yes: of several rival spans, the likely one is asked and its
  answer settles the rest, where asking the unlikely ones first would take a question each.
  A rejected span settles only itself ("cancer" may still be an entity inside a rejected
  "breast cancer"); a span an accepted rival rules out is settled.

  Reach does nearly all the work: on NCBI-disease without a model (12 seeds), ranking by reach
  alone scored 0.004 ± 0.004 below this score at 200 decisions, and 0.5 + 0.5 × the terms below
  instead of the terms themselves 0.007 ± 0.005 below.

* ``uncertainty = 1 − |2p − 1|`` where ``p`` is the probability that the answer is yes: 1 at 0.5
  (on a trained model's own proposals, ``p`` is the mean of the aggregate's and the model's; on
  the rules' candidates the model neither votes nor believes, ``aggregate.counted_votes``).
  Weighting reach by the chance that the answer *flips* the span's label instead (``1 − p``
  where the rules label it an entity, ``p`` elsewhere: a likely wrong match of a rule is worth
  more than a likely right one) measured the same: on NCBI-disease at 200 decisions,
  −0.003 ± 0.007 without a model (12 seeds, paired) and +0.004 ± 0.006 with the first model in
  the loop (8 seeds), where the model's own spans ranked so were accepted no more often (one in
  seven): its probabilities beyond the rules do not tell its right spans from its wrong ones;
* ``entropy`` of the row's whole class distribution, over its maximum: high where several labels
  (and "not an entity") compete;
* ``conflict``: the share of the row's votes that disagree with its most common vote (rules with
  other labels, negative rules, other boundaries). It breaks ties between equally uncertain
  questions in favour of the ones where rules fight, which are the ones a decision teaches most.

Three shares keep the sample honest:

* ``exploration`` (default 10%): the question is drawn uniformly from all open ones and marked,
  so precision and model quality can be estimated without uncertainty sampling's bias. It does
  not cost the order: on NCBI-disease without a model (12 seeds, the corrected rules at 200
  decisions) no exploration scored 0.011 ± 0.007 lower, 20% 0.006 and 30% 0.014 lower; drawing
  exploration from unsettled questions only changed nothing (−0.001 ± 0.005);
* ``model_share`` (default 10%): once a trained model is in the loop, *the model's questions*
  get that share of the ranked questions, no more and no less: spans it proposes that no rule
  or function proposed, and occurrences of decided strings it sees otherwise. No more: the
  first are single spans a model found likely, most of them wrong (ranked freely they took
  145-203 of 400 questions on NCBI-disease, and active order lost to random order, whose
  questions all settle rule candidates); the second are answered as the string was before,
  mostly, and an answer that differs stops the string's first answer being carried anywhere,
  so however many the model disputes, they take no more than its share (on NCBI-disease the
  model rarely disputes a decided string: with or without this bound, seeds 0 and 1 asked the
  same 200 questions). No less: they are the only way the loop learns what the rules miss, or
  where a string is an entity in one context and not in another. Within each side the ranking
  is the same score.
  The page and ``bootstrap stats`` show how often the model's spans and the rules' questions
  were accepted (``model_questions``). A share that followed that acceptance (the full share
  while the model's spans are accepted as often as the rules' questions, less in proportion, a
  quarter at least) was tried and dropped: on NCBI-disease about a seventh of the model's spans
  were accepted, against two fifths of the rest, yet the corrected rules at 400 decisions scored
  0.0065 ± 0.0010 lower (5 seeds paired, ``--first-model``; at 200, +0.0005 ± 0.0033). An
  accepted span no rule proposed is carried to every occurrence of its string: recall the rules
  lack, worth more than its share of accepts says;
* ``label_floor`` (default 0.5): a label with open questions whose share of the questions asked
  so far is below ``label_floor / n_labels`` gets the next one; each label is guaranteed half its
  fair share from the first questions on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import numpy as np

from .aggregate import UNANSWERED, Aggregate, row_reduce
from .labelmatrix import CandidateTable

WEIGHTS = {"uncertainty": 0.7, "entropy": 0.15, "conflict": 0.15}
SETTLED = 0.05  # the weight of a question whose string and label were decided elsewhere


@dataclass(frozen=True)
class QuestionChoice:
    index: int  # into the table's questions
    row: int
    label: str
    score: float
    probability: float
    exploration: bool


def row_conflict(L: np.ndarray, cardinality: int) -> np.ndarray:
    """Per row, the share of votes that differ from the most common vote (0 when all agree)."""
    counts = np.stack([(L == c).sum(axis=1) for c in range(cardinality)], axis=1)
    total = counts.sum(axis=1)
    return np.where(total > 0, 1 - counts.max(axis=1) / np.maximum(total, 1), 0.0)


def beyond_rules(table: CandidateTable) -> np.ndarray:
    """Per question, whether only the model proposed it: no rule or function voted its label on its row."""
    by_rules = np.zeros(table.n_questions, dtype=bool)
    if not any(column.kind == "model" for column in table.columns):
        return by_rules
    for j, column in enumerate(table.columns):
        if column.kind != "model":
            by_rules |= table.L[table.question_row, j] == table.question_class
    return ~by_rules


def disputed(aggregate: Aggregate, group: np.ndarray) -> np.ndarray:
    """Per question, an occurrence of a decided string (every answer on it agrees) that a model
    in the loop sees otherwise: the verdict carried there is in doubt. ``group`` is each
    question's string group (``Aggregate.question_groups``). A span an accepted rival rules out
    is not disputed: the flat entity layer settles it."""
    table = aggregate.table
    model = table.model_probability
    if model is None:
        return np.zeros(table.n_questions, dtype=bool)
    verdict = aggregate.group_verdicts()[group]  # 1 accepted, 0 rejected, -1 open or mixed
    return ((verdict >= 0) & ~np.isnan(model) & ((model >= 0.5) != (verdict == 1))
            & ~aggregate.boundary_settled()[table.question_row])


class Ranker:
    """Picks the next question from an :class:`Aggregate`; ``close`` marks one as answered."""

    def __init__(self, aggregate: Aggregate, *, exploration: float = 0.1, model_share: float = 0.1,
                 label_floor: float = 0.5, seed: int | np.random.Generator = 0,
                 occurrences: np.ndarray | None = None):
        for name, share in (("exploration", exploration), ("model_share", model_share)):
            if not 0 <= share <= 1:
                raise ValueError(f"{name} must be a share between 0 and 1, got {share}")
        self.aggregate = aggregate
        self.table = aggregate.table
        self.exploration = exploration
        self.model_share = model_share
        self.label_floor = label_floor
        # a Generator is used as it is: a session passes one stream to each new ranker, so the
        # exploration draws go on where they were when a model's table replaces the rules' (each
        # ranker seeded alike restarted them: 17 exploration questions of 400 on one NCBI run)
        self.rng = np.random.default_rng(seed)
        self.open = np.ones(self.table.n_questions, dtype=bool)
        self.asked_per_class = np.zeros(self.table.cardinality, dtype=np.int64)
        self._conflict = row_conflict(aggregate.votes, self.table.cardinality)[self.table.question_row]
        # each question's cell in the flattened rows × classes probabilities
        self._question_cell = self.table.question_cells()
        self._question_at = self.table.question_at_cell()
        self._group, self._n_groups = aggregate.question_groups()
        # per string group, its string's occurrences that are no candidate of its own (``bootstrap.occurrences``)
        self._beyond_candidates = np.zeros(self._n_groups) if occurrences is None else np.asarray(occurrences, dtype=np.float64)
        self.beyond_rules = beyond_rules(self.table)

    def index_of(self, row: int, label: str) -> int:
        """The question about ``row`` with ``label`` (``KeyError`` if there is none)."""
        index = int(self._question_at[row * self.table.cardinality + self.table.class_of(label)]) if 0 <= row < self.table.n_rows else -1
        if index < 0:
            raise KeyError((row, label))
        return index

    def belief(self) -> np.ndarray:
        """Per question, the probability that the answer is yes: the aggregate's; on the model's
        own questions (``beyond_rules``) averaged with the model's. On the rules' candidates the
        model mostly repeats the rules it learned from (``aggregate.counted_votes``)."""
        p = np.take(self.aggregate.probabilities(), self._question_cell)
        model = self.table.model_probability
        if model is None:
            return p
        return np.where(self.beyond_rules & ~np.isnan(model), (p + model) / 2, p)

    def scores(self, disputes: np.ndarray | None = None) -> np.ndarray:
        """The score of every question (answered ones included), as in the module docstring.
        ``disputes``: :func:`disputed` of the current state, if the caller has it already."""
        return self._scored(disputes)[0]

    def _scored(self, disputes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every question's score, belief and reach, each computed once."""
        proba = self.aggregate.probabilities()
        belief = self.belief()
        uncertainty = 1 - np.abs(2 * belief - 1)
        k = self.table.cardinality
        plogp = np.clip(proba, 1e-12, 1)  # (one rows × classes array, worked in place)
        np.log(plogp, out=plogp)
        plogp *= proba
        entropy = (-row_reduce(np.add, plogp) / np.log(k))[self.table.question_row]
        base = (WEIGHTS["uncertainty"] * uncertainty + WEIGHTS["entropy"] * entropy
                + WEIGHTS["conflict"] * self._conflict)
        reach = self.reach(belief, disputes)
        return self._typical(base * reach), belief, reach

    def _typical(self, scores: np.ndarray) -> np.ndarray:
        """Each open question of a string nobody answered yet scores the mean of the string's
        open questions: every occurrence ties, and ``next`` draws one of them at random.

        The first answer on a string is carried to all its occurrences, so the occurrence asked
        should be a fair sample of them. The best-scored one is not: it is the most uncertain or
        the one with the most rival boundaries, i.e. the least typical. Asked there on
        NCBI-disease (seed 0), "hemochromatosis" (an entity at 95% of its 22 occurrences),
        "phenylketonuria" (83% of 35) and "galactosemia" (79% of 24) were rejected, and each answer
        removed the string everywhere. With a fair draw the corrected rules (every decision
        carried) scored F 0.465 against 0.407 at 200 decisions (NCBI-disease, 3 seeds)."""
        open_scores = np.where(self.open, scores, 0.0)
        open_count = np.bincount(self._group, weights=self.open, minlength=self._n_groups)
        mean = np.bincount(self._group, weights=open_scores, minlength=self._n_groups) / np.maximum(open_count, 1)
        fresh = ~self.aggregate.group_answered()[self._group]
        return np.where(fresh & self.open, mean[self._group], scores)

    def reach(self, belief: np.ndarray | None = None, disputes: np.ndarray | None = None) -> np.ndarray:
        """Per question, the open questions its answer settles (module docstring).

        A question of a string nobody answered yet reaches every open question of its group,
        itself included: the first answer is carried to all of them. A question is *settled*
        when every answer on its string and label agrees (the training set carries that answer
        to it) and no model in the loop sees this occurrence otherwise: reach ``SETTLED``. Any
        other question of an answered string (answers that disagree, or a model that does)
        settles itself alone: reach 1.

        The first answer on a string also reaches the string's occurrences that are no question
        of its group (``occurrences``: an accepted string is matched again over every text), if
        it is yes: ``belief`` × their number is added.

        A question whose span has open rivals (:mod:`bootstrap.boundaries`) settles them too
        if the answer is yes: ``belief`` × their number is added. A question ruled out by an
        accepted rival is settled.
        """
        answered = self.aggregate.group_answered()[self._group]
        rows = self.table.question_row
        if disputes is None:
            disputes = disputed(self.aggregate, self._group)
        settled = (self.aggregate.group_verdicts()[self._group] >= 0) & ~disputes
        settled |= self.aggregate.boundary_settled()[rows]
        whole_group = np.bincount(self._group, weights=self.open, minlength=self._n_groups)[self._group]
        reach = np.where(settled, SETTLED, np.where(answered, 1.0, np.maximum(whole_group, 1.0)))
        belief = self.belief() if belief is None else belief
        reach += np.where(answered | settled, 0.0, belief * self._beyond_candidates[self._group])
        if len(self.aggregate.rivals):
            open_per_row = np.bincount(rows, weights=self.open & ~settled, minlength=self.table.n_rows)
            rivals_open = self.aggregate.rivals.sum_over(open_per_row)[rows]
            reach += np.where(settled, 0.0, belief * rivals_open)
        return reach

    def expected_changes(self, ahead: int) -> float:
        """How many labels the next ``ahead`` ranked answers are expected to flip: each of the
        best-ranked open questions, one per string (an answer settles its string), flips with
        probability ``min(p, 1 − p)``, carried to every question it reaches. Exploration and the
        shares are left out: this is what the ranking itself could still achieve."""
        scores, belief, reach = self._scored()
        scores = np.where(self.open, scores, -np.inf)
        order = np.argsort(-scores, kind="stable")[: int(self.open.sum())]
        _, first = np.unique(self._group[order], return_index=True)
        best = order[np.sort(first)[:ahead]]
        p = belief[best]
        return float((np.minimum(p, 1 - p) * reach[best]).sum())

    def next(self, exclude: Collection[int] = ()) -> QuestionChoice | None:
        """The next question, or None when every question is answered (or excluded: leased to others)."""
        available = self.open.copy()
        if len(exclude):
            available[np.fromiter(exclude, dtype=np.int64)] = False
        if not available.any():
            return None
        disputes = disputed(self.aggregate, self._group)
        scores = self.scores(disputes)
        if self.exploration and self.rng.random() < self.exploration:
            index = int(self.rng.choice(np.flatnonzero(available)))
            return self._choice(index, scores, exploration=True)
        available &= self._side(available, disputes)
        starved = self._starved_class(available)
        if starved is not None:
            available &= self.table.question_class == starved
        ranked = np.where(available, scores, -np.inf)
        best = np.flatnonzero(ranked == ranked.max())  # the occurrences of one string tie (``_typical``)
        index = int(best[0] if len(best) == 1 else self.rng.choice(best))
        return self._choice(index, scores, exploration=False)

    def _side(self, available: np.ndarray, disputes: np.ndarray) -> np.ndarray | bool:
        """The questions this ranked pick may come from: the model's (its own proposals and the
        decided strings' occurrences it disputes) with probability ``model_share``, else the
        rules' (either side alone when the other has none open). No model, no draw: the order
        of a session without one does not depend on it."""
        models = self.beyond_rules | disputes
        if not (available & models).any():
            return True
        if not (available & ~models).any():
            return models
        return models if self.rng.random() < self.model_share else ~models

    def _acceptance(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(accepted, accepted or rejected) of the model's own proposals, then of the other questions."""
        answers = self.aggregate.cell_answers()[self._question_cell]
        decided = answers != UNANSWERED
        sides = decided & self.beyond_rules, decided & ~self.beyond_rules
        return tuple((int(np.count_nonzero(answers[side] == 1)), int(np.count_nonzero(side))) for side in sides)

    def model_questions(self) -> dict[str, float | int] | None:
        """What the page and ``bootstrap stats`` say of the model's questions: their share, and
        how often its own spans and the rules' questions were accepted. None without a model in
        the loop."""
        if not self.beyond_rules.any():
            return None
        (model_accepted, model_answered), (rules_accepted, rules_answered) = self._acceptance()
        return {"share": self.model_share, "model_accepted": model_accepted, "model_answered": model_answered,
                "rules_accepted": rules_accepted, "rules_answered": rules_answered}

    def _starved_class(self, available: np.ndarray) -> int | None:
        """A label below its floor share of asked questions that still has open ones, if any."""
        if self.table.cardinality <= 2:  # one label: nothing to share
            return None
        classes = np.flatnonzero(np.bincount(self.table.question_class[available], minlength=self.table.cardinality))
        if len(classes) < 2:
            return None
        asked = self.asked_per_class[classes]
        floor = self.label_floor / len(classes) * max(asked.sum(), 1)
        below = classes[asked < floor]
        return int(below[np.argmin(self.asked_per_class[below])]) if len(below) else None

    def _choice(self, index: int, scores: np.ndarray, exploration: bool) -> QuestionChoice:
        row, cls = int(self.table.question_row[index]), int(self.table.question_class[index])
        probability = float(self.aggregate.probabilities()[row, cls])
        return QuestionChoice(index, row, self.table.label_of(cls), float(scores[index]), probability, exploration)

    def close(self, index: int) -> None:
        """The question was answered: it is never offered again (until :meth:`reopen`)."""
        if self.open[index]:
            self.open[index] = False
            self.asked_per_class[self.table.question_class[index]] += 1

    def reopen(self, index: int) -> None:
        """Undo of an answer: the question may be asked again."""
        if not self.open[index]:
            self.open[index] = True
            self.asked_per_class[self.table.question_class[index]] -= 1

    @property
    def remaining(self) -> int:
        return int(self.open.sum())


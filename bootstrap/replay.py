"""A dataset's state read back from the store, without a live session: for ``bootstrap report``
and ``bootstrap stats``.

A :class:`~bootstrap.session.Session` started only to read numbers would take leases, write the
questions of an adopted model to the store and start background work. :func:`replay_dataset`
does none of that: it applies the stored decisions to a fresh aggregate exactly as a resuming
session does (every answer in the order it was given; the last adopted model's spans put back,
with the latest answer on each question), so the numbers are the ones the page shows.
(:func:`bootstrap.weak_labels.replay` is the training set's variant: the rules' table only, the
latest answer per question, always refit.)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from .aggregate import Aggregate
from .config import SessionConfig
from .handoff import adopted_spans, answered_spans, handoff_status, read_model_spans
from .hashing import TaskIndex
from .labelmatrix import CandidateTable, with_model
from .store import Answer, Store


@dataclass
class ReplayedDataset:
    """The table the questions come from, the aggregate with the decisions in it, and who ranks."""

    rules_table: CandidateTable
    table: CandidateTable  # the rules' table, or with the adopted model's spans and vote
    aggregate: Aggregate
    scorer: str  # "rules" or "model"
    accepts_per_label: dict[str, int]
    handoff: dict[str, Any]  # as the page's progress shows it (``handoff.handoff_status``)
    answers: list[Answer]  # live, oldest first
    answered: list[int]  # the questions of ``table`` they answer

    def lf_stats(self) -> list[dict[str, Any]]:
        return [stats.to_dict() for stats in self.aggregate.lf_stats()]

    def estimates(self) -> dict[str, Any]:
        """The labels' estimated quality and the stopping hint, as the page shows them."""
        from .estimates import estimates
        from .ranking import Ranker

        ranker = Ranker(self.aggregate)
        for index in self.answered:
            ranker.close(index)
        return estimates(self.answers, ranker)


def replay_dataset(store: Store, dataset: str, rules_table: CandidateTable,
                   config: SessionConfig | None = None) -> ReplayedDataset:
    """The dataset's decisions applied to ``rules_table`` (and to the adopted model's table, if
    any) as a session resuming on it would apply them; reads the store, writes nothing."""
    config = config or SessionConfig()
    answers = list(store.answers(dataset))
    live: dict[int, dict[str, Answer]] = {}  # task hash -> annotator -> live answer, as a session keeps them
    aggregate = _aggregate(rules_table, config)
    index_of = _question_index(rules_table)
    for answer in answers:
        live.setdefault(answer.task_hash, {})[answer.annotator] = answer
        _observe(aggregate, rules_table, index_of.get(answer.task_hash), answer)
    table, scorer = rules_table, "rules"
    runs = store.model_runs(dataset)
    spans_path = adopted_spans(runs)
    if spans_path is not None:
        try:
            spans, scored = read_model_spans(spans_path)
            with_spans = with_model(rules_table, spans, scored, keep=answered_spans(answers))
            with_spans_aggregate = _aggregate(with_spans, config)
        except (OSError, ValueError, KeyError) as error:  # an unreadable spans file: the rules rank
            warnings.warn(f"the last adopted model's spans could not be read ({error}); the rules rank the questions")
        else:
            table, aggregate, scorer, index_of = with_spans, with_spans_aggregate, "model", _question_index(with_spans)
            for task, by_annotator in live.items():
                _observe(aggregate, table, index_of.get(task), next(reversed(by_annotator.values())))
    if scorer == "rules" and answers:
        aggregate.refit()
    accepts = dict.fromkeys(table.labels, 0)
    for task, by_annotator in live.items():
        index = index_of.get(task)
        for answer in by_annotator.values():
            if answer.answer == "accept" and index is not None:
                accepts[table.label_of(int(table.question_class[index]))] += 1
    answered = [index_of[task] for task in live if task in index_of]
    return ReplayedDataset(rules_table, table, aggregate, scorer, accepts,
                           handoff_status(config.handoff, runs, accepts, scorer), answers, answered)


def _aggregate(table: CandidateTable, config: SessionConfig) -> Aggregate:
    return Aggregate(table, seed=config.seed, **config.aggregate)


def _question_index(table: CandidateTable) -> TaskIndex:
    return TaskIndex(table.task_hashes())


def _observe(aggregate: Aggregate, table: CandidateTable, index: int | None, answer: Answer) -> None:
    if index is not None:  # a question the current rules no longer propose: kept in the store only
        aggregate.observe(int(table.question_row[index]), int(table.question_class[index]), answer.answer, answer.exploration)

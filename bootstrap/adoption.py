"""A trained model's spans made into the table and aggregate the loop ranks with next.

Its own module because it is slow and has to be careful: rebuilding the table with the model's
spans and vote (``labelmatrix.with_model``) and fitting a fresh aggregate take seconds, so they
run outside the session's lock, while annotators go on answering. Every answered span stays a
question (``keep``), whoever proposed it, so no decision leaves the loop when a new model brings
other spans; answers given while the new table was being fit are checked for again, under the
lock, before :class:`~bootstrap.session.Session` installs it (:meth:`ModelAdoption.finish`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .aggregate import Aggregate
from .config import SessionConfig
from .handoff import answered_spans, read_model_spans
from .hashing import TaskIndex, task_hash as hash_task
from .labelmatrix import CandidateTable, ModelSpan, with_model
from .store import Answer


class ModelAdoption:
    """The rules' table with a model's spans (``spans.jsonl`` of a handoff run), and its aggregate."""

    def __init__(self, rules_table: CandidateTable, spans_path: str | Path, answers: Iterable[Answer],
                 config: SessionConfig):
        self.rules_table = rules_table
        self.config = config
        self.spans, self.scored = read_model_spans(spans_path)
        self.keep = answered_spans(answers)
        self.table, self.aggregate = self._build(self.keep)

    def _build(self, keep: list[ModelSpan]) -> tuple[CandidateTable, Aggregate]:
        table = with_model(self.rules_table, self.spans, self.scored, keep=keep)
        return table, Aggregate(table, seed=self.config.seed, **self.config.aggregate)

    def finish(self, answers: Iterable[Answer]) -> tuple[CandidateTable, Aggregate]:
        """The table and aggregate to install, given the answers stored by now (call it under the
        session's lock): rebuilt if some were given meanwhile on a question only the old table had."""
        indexed = TaskIndex(self.table.task_hashes())
        missing = [span for span in answered_spans(answers)
                   if hash_task(span.input_hash, span.start, span.end, span.label) not in indexed]
        if missing:
            return self._build(self.keep + missing)
        return self.table, self.aggregate

"""The annotation loop: next question, answer, undo, change; the one engine every front end drives.

The web page, ``bootstrap simulate`` and the tests all use :class:`Session`; there is no second
copy of the loop. One session serves one dataset and any number of annotators:

* **Durable first.** An answer is committed to the store before the aggregate learns from it
  and before the next question is chosen, so a crash can lose a question on screen, never an
  answer given.
* **Resume.** Starting again replays the stored answers into the aggregate and the ranking, so a
  question answered before is never asked again and the probabilities are where they were.
* **Several annotators, several processes.** A question on someone's screen is leased to them
  in the store (which works across processes); nobody else is offered it until it is answered
  or the lease expires, and once answered by anyone, in any process, it is offered to nobody
  (before choosing, a session reads the answers other processes stored since its last look).
  If two annotators do answer the same task (a stale page, say), both answers are kept.
* **Refit off the request path.** Every ``refit_every`` decisions the LabelModel is refit in a
  background thread and swapped in when done (:mod:`bootstrap.refit`); answering never waits.
* **Handoff.** Models trained from the decisions are the job of :class:`~bootstrap.handoff.Handoff`,
  which hands the session one thing: "adopt these spans" (:meth:`Session._adopt_model`).

What the page shows beside a question is built in :mod:`bootstrap.views`. Every public method
takes the session's lock: the web server calls them from a thread pool.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .aggregate import Aggregate
from .corpus import Record
from .config import LANG, PHRASE_ATTR, SessionConfig
from .estimates import CachedEstimates, estimates
from .handoff import Handoff, answered_spans, read_model_spans
from .hashing import task_hash as hash_task
from .labelmatrix import CandidateTable, with_model
from .ranking import Ranker
from .refit import BackgroundRefit
from .store import Store
from .table import build_table, question_rows, store_texts
from .tasks import ANSWERS, check_answer
from .views import question_task, votes

DEFAULT_ANNOTATOR = "default"
SYNC_OVERLAP = 60.0  # seconds an undo or change by another process is looked for again


class UnknownTask(KeyError):
    """The task hash is not a question of this session's dataset."""


class UnknownAnswer(KeyError):
    """No live answer of this annotator has that id."""


class AlreadyAnswered(ValueError):
    """This annotator has already answered this question (undo or change it instead)."""


@dataclass
class _Live:
    """The live answers on one question, by annotator: ``(answer_id, answer, exploration)``."""

    by_annotator: dict[str, tuple[int, str, bool]] = field(default_factory=dict)


class Session:
    """One dataset's loop over a candidate table, with its answers in a store."""

    def __init__(self, store: Store, dataset: str, table: CandidateTable, config: SessionConfig | None = None):
        self.store = store
        self.dataset = dataset
        self.config = config or SessionConfig()
        self.rules_table = table  # the rules' and functions' candidates; a model's are added to a copy
        self._lock = threading.RLock()
        self._live: dict[int, _Live] = {}  # task hash -> its live answers
        self._pending: dict[str, tuple[int, bool]] = {}  # annotator -> (task hash on screen, exploration)
        self._shown_at: dict[str, float] = {}
        self.refit = BackgroundRefit(self.config.refit_every, self.config.background_refit, self._lock,
                                     current=lambda: self.aggregate)
        self._estimates = CachedEstimates()
        self.handoff = Handoff(store, dataset, table, self.config, adopt=self._adopt_model, lock=self._lock)
        self.scorer = "rules"
        self.pattern_files: list[Path] = []  # set by from_files; suggestions need the rules' files
        self.phrase_attr = PHRASE_ATTR
        self._install(table, Aggregate(table, seed=self.config.seed, **self.config.aggregate))
        self._resume()

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_files(
        cls,
        pattern_files: Sequence[str | Path],
        texts: str | Path,
        *,
        db: str | Path,
        dataset: str,
        lfs: str | Path | None = None,
        labels: Sequence[str] | None = None,
        lang: str = LANG,
        phrase_attr: str = PHRASE_ATTR,
        config: SessionConfig | None = None,
        progress: Callable[[Iterable[Record]], Iterable[Record]] | None = None,
        build: Callable[..., CandidateTable] | None = None,
    ) -> "Session":
        """Read rules, functions and texts, store the texts and questions, and start (or resume) the loop.

        ``build`` makes the candidate table (default :func:`~bootstrap.table.build_table`; ``bootstrap.scale`` has
        one that runs on a Dask cluster). It takes the same arguments, and its ``progress`` hook
        on the record stream is how the texts get stored on the way.
        """
        store = Store(db)
        reading = lambda records: store_texts(progress(records) if progress else records, store, dataset)  # noqa: E731
        table = (build or build_table)(
            pattern_files, texts, lfs=lfs, labels=labels, lang=lang, phrase_attr=phrase_attr, progress=reading,
        )
        store.add_questions(dataset, question_rows(table))
        session = cls(store, dataset, table, config)
        session.pattern_files, session.phrase_attr = [Path(p) for p in pattern_files], phrase_attr
        return session

    def _install(self, table: CandidateTable, aggregate: Aggregate) -> None:
        """Make ``table`` the one questions come from, with the live answers replayed into it."""
        self.table = table
        self.aggregate = aggregate
        self._estimates.clear()
        self.ranker = Ranker(aggregate, exploration=self.config.exploration, model_share=self.config.model_share,
                             label_floor=self.config.label_floor, seed=self.config.seed)
        self._task_hashes = [hash_task(*table.question(i)) for i in range(table.n_questions)]
        self._index_of = {task: i for i, task in enumerate(self._task_hashes)}
        for task, live in self._live.items():
            index = self._index_of.get(task)
            if index is not None:
                _, answer, exploration = next(reversed(live.by_annotator.values()))
                self.aggregate.observe(*self._row_class(index), answer, exploration)
                self.ranker.close(index)

    def _resume(self) -> None:
        """Replay stored answers (closed questions stay closed, the aggregate learns them again)
        and put back the last model that entered the loop."""
        replayed = 0
        self._synced_id, self._synced_at = 0, time.time()  # what _refresh has seen of the store
        for stored in self.store.answers(self.dataset):
            self._record(stored.task_hash, stored.annotator, stored.id, stored.answer, stored.exploration)
            self._synced_id = max(self._synced_id, stored.id)
            replayed += 1
        spans = self.handoff.resume(replayed)
        if spans is not None:
            try:
                self._adopt_model(spans)
                return
            except (OSError, ValueError, KeyError) as error:  # an unreadable spans file: the rules rank
                warnings.warn(f"the last adopted model's spans could not be read ({error}); the rules rank the questions")
        if replayed:
            self.aggregate.refit()

    def _refresh(self) -> None:
        """Learn what other processes on this database answered, undid or changed since the last
        look, so a question answered anywhere is closed here too and progress counts every answer.

        The store is the truth; this reads only answers newer than the last one seen and those
        undone or changed lately (indexed lookups, usually no row), and applying a row twice
        changes nothing, so the look-back may overlap (``SYNC_OVERLAP`` covers clock skew
        between machines).
        """
        now = time.time()
        for stored in self.store.answer_changes(self.dataset, self._synced_id, self._synced_at - SYNC_OVERLAP):
            self._synced_id = max(self._synced_id, stored.id)
            live = self._live.get(stored.task_hash)
            known = live.by_annotator.get(stored.annotator) if live is not None else None
            if stored.undone_at is not None:
                if known is not None and known[0] == stored.id:
                    self._unrecord(stored.task_hash, stored.annotator)
                continue
            if known is not None and known[:2] == (stored.id, stored.answer):
                continue
            if known is not None:
                self._unrecord(stored.task_hash, stored.annotator, reopen=False)
            self._record(stored.task_hash, stored.annotator, stored.id, stored.answer, stored.exploration)
        self._synced_at = now

    # -- the loop ------------------------------------------------------------------------------

    def next_question(self, annotator: str = DEFAULT_ANNOTATOR) -> dict[str, Any] | None:
        """The question for this annotator: the one on their screen, or the best open one they may lease."""
        with self._lock:
            self._refresh()  # another process's answers close their questions here too
            pending = self._pending.get(annotator)
            if pending is not None:
                index = self._index_of.get(pending[0])
                if index is not None and self.ranker.open[index] and self._lease(pending[0], annotator):
                    return self._task(index, pending[1])
            self._pending.pop(annotator, None)
            # (questions this annotator answered are closed in the ranker: no need to exclude them)
            exclude = {self._index_of[t] for t in self.store.leased_by_others(self.dataset, annotator) if t in self._index_of}
            while (choice := self.ranker.next(exclude)) is not None:
                task = self._task_hashes[choice.index]
                if self._lease(task, annotator):
                    self._pending[annotator] = (task, choice.exploration)
                    self._shown_at[annotator] = time.time()
                    return self._task(choice.index, choice.exploration, choice.score)
                exclude.add(choice.index)  # another process took it a moment ago
            return None

    def answer(self, annotator: str, task_hash: int, answer: str) -> dict[str, Any]:
        """Store the answer (committed before returning), then learn from it."""
        check_answer(answer)
        with self._lock:
            self._refresh()
            index = self._question_index(task_hash)
            task_hash = self._task_hashes[index]
            live = self._live.get(task_hash)
            if live is not None and annotator in live.by_annotator:
                raise AlreadyAnswered(f"{annotator!r} already answered task {task_hash}: undo or change that answer")
            pending = self._pending.get(annotator)
            shown = pending is not None and pending[0] == task_hash
            exploration = bool(shown and pending[1])
            row, cls = self._row_class(index)
            answer_id = self.store.add_answer(
                self.dataset, task_hash, answer, annotator, exploration=exploration,
                probability=float(self.aggregate.probabilities()[row, cls]), votes=votes(self.table, self.aggregate, row),
                shown_at=self._shown_at.get(annotator) if shown else None,
            )
            if shown:
                self._pending.pop(annotator, None)
            self._record(task_hash, annotator, answer_id, answer, exploration)
            self.refit.maybe()
            progress = self.progress()
            self.handoff.maybe_train(progress["answers"], progress["accepts_per_label"])
            return {"answer_id": answer_id, "progress": progress}

    def undo(self, annotator: str = DEFAULT_ANNOTATOR) -> dict[str, Any] | None:
        """Take back the annotator's last answer; its question becomes their next one."""
        with self._lock:
            undone = self.store.undo_last(self.dataset, annotator)
            if undone is None:
                return None
            self._unrecord(undone.task_hash, annotator)
            index = self._index_of.get(undone.task_hash)
            if index is None:
                return None
            current = self._pending.get(annotator)
            if current is not None and current[0] != undone.task_hash:
                self.store.release(self.dataset, current[0], annotator)
            self._pending[annotator] = (undone.task_hash, undone.exploration)
            self._lease(undone.task_hash, annotator)
            return self._task(index, undone.exploration)

    def change(self, annotator: str, answer_id: int, answer: str) -> dict[str, Any]:
        """Change one of the annotator's earlier answers (the page's list of recent decisions)."""
        check_answer(answer)
        with self._lock:
            task = next((t for t, live in self._live.items()
                         if live.by_annotator.get(annotator, (None,))[0] == answer_id), None)
            if task is None:
                raise UnknownAnswer(f"{annotator!r} has no live answer with id {answer_id}")
            try:
                self.store.change_answer(answer_id, answer)
            except (KeyError, ValueError) as error:  # undone meanwhile, e.g. by another process
                raise UnknownAnswer(str(error)) from None
            exploration = self._live[task].by_annotator[annotator][2]
            self._unrecord(task, annotator, reopen=False)
            self._record(task, annotator, answer_id, answer, exploration)
            return {"answer_id": answer_id, "answer": answer, "progress": self.progress()}

    def recent(self, annotator: str = DEFAULT_ANNOTATOR, n: int = 10) -> list[dict[str, Any]]:
        with self._lock:
            answers = self.store.recent_answers(self.dataset, annotator, n)
            texts = self.store.example_texts(self.dataset, {a.input_hash for a in answers})
            return [
                {"answer_id": a.id, "task_hash": a.task_hash, "span_text": a.span_text, "label": a.label,
                 "answer": a.answer, "created": a.created, "text": texts.get(a.input_hash, "")}
                for a in answers
            ]

    # -- what the page shows -------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        with self._lock:
            by_answer = dict.fromkeys(ANSWERS, 0)
            accepts = dict.fromkeys(self.table.labels, 0)
            for task, live in self._live.items():
                for _, answer, _ in live.by_annotator.values():
                    by_answer[answer] += 1
                    index = self._index_of.get(task)
                    if answer == "accept" and index is not None:
                        accepts[self.table.label_of(self._row_class(index)[1])] += 1
            answers = sum(by_answer.values())
            return {
                "answers": answers,
                "by_answer": by_answer,
                "accepts_per_label": accepts,
                "remaining": self.ranker.remaining,
                "total": self.table.n_questions,
                "method": self.aggregate.method,
                "method_reason": self.aggregate.method_reason,
                "handoff": self.handoff.status(accepts, self.scorer),
                "estimates": self._estimates.get(answers, lambda: estimates(self.store.answers(self.dataset), self.ranker)),
            }

    def suggestions(self, min_count: int = 2) -> list[dict[str, Any]]:
        """Pattern lines learned back from the decisions (``bootstrap suggest-patterns``), for the page."""
        if not self.pattern_files:
            return []
        from .suggest import suggest_patterns

        return suggest_patterns(self.store, self.dataset, self.pattern_files, min_count=min_count,
                                lang=self.config.lang, phrase_attr=self.phrase_attr)

    def lf_stats(self) -> list[dict[str, Any]]:
        with self._lock:
            return [stats.to_dict() for stats in self.aggregate.lf_stats()]

    # -- internals -----------------------------------------------------------------------------

    def _question_index(self, task_hash: int) -> int:
        try:
            return self._index_of[int(task_hash)]
        except (KeyError, TypeError, ValueError):
            raise UnknownTask(f"no question with task hash {task_hash} in dataset {self.dataset!r}") from None

    def _row_class(self, index: int) -> tuple[int, int]:
        return int(self.table.question_row[index]), int(self.table.question_class[index])

    def _lease(self, task_hash: int, annotator: str) -> bool:
        return self.store.lease(self.dataset, task_hash, annotator, self.config.lease_seconds)

    def _record(self, task_hash: int, annotator: str, answer_id: int, answer: str, exploration: bool) -> None:
        live = self._live.setdefault(task_hash, _Live())
        live.by_annotator[annotator] = (answer_id, answer, exploration)
        index = self._index_of.get(task_hash)
        if index is None:  # a question the current rules no longer propose: kept in the store only
            return
        self.aggregate.observe(*self._row_class(index), answer, exploration)  # the latest answer counts
        self.ranker.close(index)

    def _unrecord(self, task_hash: int, annotator: str, reopen: bool = True) -> None:
        live = self._live.get(task_hash)
        if live is None or annotator not in live.by_annotator:  # written by another process: the store has it
            return
        del live.by_annotator[annotator]
        if not live.by_annotator:
            del self._live[task_hash]
        index = self._index_of.get(task_hash)
        if index is None:
            return
        row, cls = self._row_class(index)
        self.aggregate.forget(row, cls)
        if live.by_annotator:  # someone else's answer on it still stands
            _, answer, exploration = next(reversed(live.by_annotator.values()))
            self.aggregate.observe(row, cls, answer, exploration)
        elif reopen:
            self.ranker.reopen(index)

    def _task(self, index: int, exploration: bool, score: float | None = None) -> dict[str, Any]:
        row, cls = self._row_class(index)
        text, meta = self.store.example(self.dataset, int(self.table.input_hash[row])) or ("", {})
        return question_task(
            self.table, self.aggregate, row, cls, task_hash=self._task_hashes[index], text=text, meta=meta,
            exploration=exploration, score=float(self.ranker.scores()[index]) if score is None else score,
            scorer=self.scorer,
        )

    def wait_for_refit(self) -> None:
        """Block until a background refit (if any) is applied: for tests and clean shutdown."""
        self.refit.wait()

    # -- handoff -------------------------------------------------------------------------------

    def start_handoff(self) -> None:
        """Train the first model now, in the background, if the policy trains at all and none was
        trained yet: the rules' weak labels over the whole corpus are enough to learn from, and
        the model proposes spans no rule covers from the first minutes (the CLI calls this)."""
        with self._lock:
            self.handoff.start(self.progress()["answers"])

    def train_now(self) -> bool:
        """Start a handoff training in the background now, whatever the policy's cadence (the
        model still enters the loop only as the policy says); False if one is running already."""
        with self._lock:
            return self.handoff.train_now(self.progress()["answers"])

    def wait_for_handoff(self) -> None:
        """Block until a training in the background (if any) is recorded and, if it won, adopted."""
        self.handoff.wait()

    def _adopt_model(self, spans_path: str) -> None:
        """Rebuild the table with the model's spans and vote; the slow fit runs outside the lock.

        Every answered span stays a question (``keep``), whoever proposed it, so no decision
        leaves the loop when a new model brings other spans; answers given while the new table
        was being fit are checked for again before it is installed.
        """
        spans, scored = read_model_spans(spans_path)
        keep = answered_spans(self.store.answers(self.dataset))
        table = with_model(self.rules_table, spans, scored, keep=keep)
        aggregate = Aggregate(table, seed=self.config.seed, **self.config.aggregate)
        with self._lock:
            indexed = {hash_task(*table.question(i)) for i in range(table.n_questions)}
            missing = [span for span in answered_spans(self.store.answers(self.dataset))
                       if hash_task(span.input_hash, span.start, span.end, span.label) not in indexed]
            if missing:  # answered meanwhile, on a question only the old table had
                table = with_model(self.rules_table, spans, scored, keep=keep + missing)
                aggregate = Aggregate(table, seed=self.config.seed, **self.config.aggregate)
            self.store.add_questions(self.dataset, question_rows(table))
            self._install(table, aggregate)  # what is on screen stays: pending questions are kept by hash
            self.scorer = "model"

    def close(self) -> None:
        self.wait_for_refit()
        self.handoff.close()
        self.store.close()

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
  which hands the session one thing: "adopt these spans" (:meth:`Session._adopt_model`, the
  rebuild in :mod:`bootstrap.adoption`).

Other jobs live beside the loop, one a module: the answers that stand, resume and other
processes' answers in :mod:`bootstrap.answers`; the table built from files and stored in
:func:`bootstrap.table.stored_table`; what the page shows in :mod:`bootstrap.views`. Every
public method takes the session's lock: the web server calls them from a thread pool.
"""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import views
from .adoption import ModelAdoption
from .aggregate import Aggregate
from .answers import LiveAnswers, Standing
from .config import PHRASE_ATTR, PipelineRules, SessionConfig
from .corpus import Record
from .estimates import CachedEstimates, estimates
from .handoff import Handoff, adopted_spans
from .hashing import TaskIndex
from .labelmatrix import CandidateTable
from .occurrences import StringCounts
from .ranking import Ranker
from .refit import BackgroundRefit
from .store import Store
from .table import question_rows, stored_table
from .tasks import check_answer

if TYPE_CHECKING:
    from .reading import CorpusReading

DEFAULT_ANNOTATOR = "default"


class UnknownTask(KeyError):
    """The task hash is not a question of this session's dataset."""


class UnknownAnswer(KeyError):
    """No live answer of this annotator has that id."""


class AlreadyAnswered(ValueError):
    """This annotator has already answered this question (undo or change it instead)."""


class Session:
    """One dataset's loop over a candidate table, with its answers in a store."""

    def __init__(self, store: Store, dataset: str, table: CandidateTable, config: SessionConfig | None = None, *,
                 partial: bool = False):
        self.store = store
        self.dataset = dataset
        self.config = config or SessionConfig()
        self.rules_table = table  # the rules' and functions' candidates; a model's are added to a copy
        self._lock = threading.RLock()
        self.answers = LiveAnswers(store, dataset, observe=self._observe, withdraw=self._withdraw)
        self._pending: dict[str, tuple[int, bool]] = {}  # annotator -> (task hash on screen, exploration)
        self._shown_at: dict[str, float] = {}
        self.refit = BackgroundRefit(self.config.refit_every, self.config.background_refit, self._lock,
                                     current=lambda: self.aggregate)
        self._estimates = CachedEstimates()
        self._draws = np.random.default_rng(self.config.seed)  # one stream for every ranker: a new table does not restart it
        self.handoff = Handoff(store, dataset, table, self.config, adopt=self._adopt_model, lock=self._lock)
        self.scorer = "rules"
        self.pattern_files: list[Path] = []  # set by from_files; suggestions need the rules' files
        self.phrase_attr = PHRASE_ATTR
        self.reading: CorpusReading | None = None  # the rest of the corpus, read in the background
        self._string_counts: StringCounts | None = None  # the training sample's strings, counted on demand
        self._counting = threading.Lock()
        # The first fit is the plain vote alone when the LabelModel can wait: on a corpus's first
        # texts (``partial``: it is fit on the larger tables read in the background), or fit in
        # the background right after (with background refits; in the foreground, at once).
        later = ("the LabelModel is fit once more of the corpus is read" if partial else
                 "the LabelModel is being fit in the background" if self.config.background_refit else None)
        self._install(table, Aggregate(table, seed=self.config.seed, label_model_later=later, **self.config.aggregate))
        self._resume()
        if not partial and self.aggregate.label_model_later is not None:
            self.refit.now()

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_files(cls, pattern_files: Sequence[str | Path], texts: str | Path | Sequence[Record], *, db: str | Path,
                   dataset: str, config: SessionConfig | None = None, partial: bool = False, **options: Any) -> "Session":
        """Read rules, functions and texts (a path, or the records of a corpus's first texts with
        ``partial``), store the texts and questions, and start (or resume) the loop; ``options``
        are :func:`~bootstrap.table.stored_table`'s (``lfs``, ``labels``, ``lang``, ``phrase_attr``,
        ``progress``, ``build``)."""
        store = Store(db)
        session = cls(store, dataset, stored_table(pattern_files, texts, store, dataset, **options), config, partial=partial)
        session.pattern_files = [Path(p) for p in pattern_files]
        session.phrase_attr = options.get("phrase_attr", PHRASE_ATTR)
        session.handoff.rules = PipelineRules(tuple(str(p) for p in pattern_files), session.phrase_attr)
        return session

    def read_rest(self, reading: "CorpusReading", matched: set[int]) -> None:
        """Serve the ``matched`` texts' questions now and grow with the tables ``reading`` builds
        (:mod:`bootstrap.reading`); models train on the texts matched so far."""
        self.reading = reading
        self.handoff.texts = frozenset(matched)
        reading.start(self.grow)

    def grow(self, table: CandidateTable, texts: frozenset[int] | None = None) -> None:
        """Make ``table`` (a superset of the current rules' table: more of the corpus, ``texts``
        its input hashes, or all of it with None) the one questions come from: answers replayed,
        what is on screen kept, a model in the loop put back on it; once it is the whole corpus,
        the next model trains on every text. The fit runs outside the lock (a model's table is
        fit by its adoption)."""
        fit = lambda: Aggregate(table, seed=self.config.seed, **self.config.aggregate)  # noqa: E731
        with self._counting:
            self._string_counts = None  # the sample grows with the corpus
        aggregate = fit() if self.scorer == "rules" else None
        occurrences = self._occurrences(table, aggregate) if aggregate is not None else None
        with self._lock:
            self.rules_table = self.handoff.rules_table = table
            self.handoff.texts = texts
            spans = adopted_spans(self.handoff.runs) if self.scorer == "model" else None
            if spans is None:
                # (fit here only when the adopted model's spans are gone)
                self._install(table, aggregate or fit(), occurrences)
                self.refit.maybe()
        if spans is not None:
            self._adopt_model(spans)
        if texts is None and self.config.handoff.mode != "never":
            self.train_now()

    def _install(self, table: CandidateTable, aggregate: Aggregate, occurrences: np.ndarray | None = None) -> None:
        """Make ``table`` the one questions come from, with the live answers replayed into it
        (``occurrences``: :meth:`_occurrences` of it, when the caller counted them already)."""
        self.table = table
        self.aggregate = aggregate
        self._estimates.clear()
        if occurrences is None:
            occurrences = self._occurrences(table, aggregate)
        self.ranker = Ranker(aggregate, exploration=self.config.exploration, model_share=self.config.model_share,
                             label_floor=self.config.label_floor, seed=self._draws, occurrences=occurrences)
        self._index_of = TaskIndex(table.task_hashes())
        for task, answer, exploration in self.answers.standing():
            self._observe(task, answer, exploration)

    def _occurrences(self, table: CandidateTable, aggregate: Aggregate) -> np.ndarray:
        """Per string group of ``aggregate``, its string's occurrences in the training sample that
        are no question of its own: what a first accept reaches besides (:mod:`bootstrap.occurrences`).
        The sample is read and tokenized once (again after the corpus grows), here and not in a
        thread: about a second on a 100k-text corpus, which the session's start (or the growing
        table's fit, in the reading thread) absorbs; in a thread of its own it would hold the
        interpreter's lock (spaCy's tokenizer does) against the answers of the first seconds."""
        import spacy

        from .weak_labels import sample_texts

        with self._counting:
            if self._string_counts is None:
                texts = sample_texts(self.store.texts(self.dataset), self.config.weak_labels)
                self._string_counts = StringCounts(spacy.blank(self.config.lang), texts)
            group, _ = aggregate.question_groups()
            return self._string_counts.beyond_candidates(table, group, aggregate.group_keys())

    def _resume(self) -> None:
        """Replay stored answers (closed questions stay closed, the aggregate learns them again)
        and put back the last model that entered the loop."""
        replayed = self.answers.resume()
        spans = self.handoff.resume(replayed)
        if spans is not None:
            try:
                self._adopt_model(spans)
                return
            except (OSError, ValueError, KeyError) as error:  # an unreadable spans file: the rules rank
                warnings.warn(f"the last adopted model's spans could not be read ({error}); the rules rank the questions")
        if replayed:
            self.aggregate.refit()

    # -- the loop ------------------------------------------------------------------------------

    def next_question(self, annotator: str = DEFAULT_ANNOTATOR) -> dict[str, Any] | None:
        """The question for this annotator: the one on their screen, or the best open one they may lease."""
        with self._lock:
            self.answers.refresh()  # another process's answers close their questions here too
            pending = self._pending.get(annotator)
            if pending is not None:
                index = self._index_of.get(pending[0])
                if index is not None and self.ranker.open[index] and self._lease(pending[0], annotator):
                    return self._task(index, pending[1])
            self._pending.pop(annotator, None)
            # (questions this annotator answered are closed in the ranker: no need to exclude them)
            exclude = {i for t in self.store.leased_by_others(self.dataset, annotator) if (i := self._index_of.get(t)) is not None}
            while (choice := self.ranker.next(exclude)) is not None:
                task = self._index_of.hash_of(choice.index)
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
            self.answers.refresh()
            index = self._question_index(task_hash)
            task_hash = self._index_of.hash_of(index)
            if self.answers.of(task_hash, annotator) is not None:
                raise AlreadyAnswered(f"{annotator!r} already answered task {task_hash}: undo or change that answer")
            pending = self._pending.get(annotator)
            shown = pending is not None and pending[0] == task_hash
            exploration = bool(shown and pending[1])
            row, cls = self._row_class(index)
            answer_id = self.store.add_answer(
                self.dataset, task_hash, answer, annotator, exploration=exploration,
                probability=float(self.aggregate.probabilities()[row, cls]),
                votes=views.votes(self.table, self.aggregate, row),
                shown_at=self._shown_at.get(annotator) if shown else None,
            )
            if shown:
                self._pending.pop(annotator, None)
            self.answers.record(task_hash, annotator, answer_id, answer, exploration)
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
            self.answers.remove(undone.task_hash, annotator)
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
            task = self.answers.find(annotator, answer_id)
            if task is None:
                raise UnknownAnswer(f"{annotator!r} has no live answer with id {answer_id}")
            try:
                self.store.change_answer(answer_id, answer)
            except (KeyError, ValueError) as error:  # undone meanwhile, e.g. by another process
                raise UnknownAnswer(str(error)) from None
            exploration = self.answers.of(task, annotator)[2]
            self.answers.remove(task, annotator, reopen=False)
            self.answers.record(task, annotator, answer_id, answer, exploration)
            return {"answer_id": answer_id, "answer": answer, "progress": self.progress()}

    # -- what the page shows (built in bootstrap.views) ---------------------------------------

    def recent(self, annotator: str = DEFAULT_ANNOTATOR, n: int = 10) -> list[dict[str, Any]]:
        with self._lock:
            return views.recent(self.store, self.dataset, annotator, n)

    def progress(self) -> dict[str, Any]:
        with self._lock:
            by_answer, accepts = views.answer_counts(self.table, self._index_of, self.answers.every())
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
                "corpus": self.reading.status() if self.reading is not None else None,
            }

    def suggestions(self, min_count: int = 2) -> list[dict[str, Any]]:
        """Pattern lines learned back from the decisions (``bootstrap suggest-patterns``), for the page."""
        return views.suggestions(self.store, self.dataset, self.pattern_files, min_count=min_count,
                                 lang=self.config.lang, phrase_attr=self.phrase_attr)

    def lf_stats(self) -> list[dict[str, Any]]:
        with self._lock:
            return [stats.to_dict() for stats in self.aggregate.lf_stats()]

    # -- internals -----------------------------------------------------------------------------

    def _question_index(self, task_hash: int) -> int:
        index = self._index_of.get(task_hash)
        if index is None:
            raise UnknownTask(f"no question with task hash {task_hash} in dataset {self.dataset!r}")
        return index

    def _row_class(self, index: int) -> tuple[int, int]:
        return int(self.table.question_row[index]), int(self.table.question_class[index])

    def _lease(self, task_hash: int, annotator: str) -> bool:
        return self.store.lease(self.dataset, task_hash, annotator, self.config.lease_seconds)

    def _observe(self, task_hash: int, answer: str, exploration: bool) -> None:
        """An answer now stands on the question: the aggregate learns it (the latest answer counts)
        and the question closes."""
        index = self._index_of.get(task_hash)
        if index is None:  # a question the current rules no longer propose: kept in the store only
            return
        self.aggregate.observe(*self._row_class(index), answer, exploration)
        self.ranker.close(index)

    def _withdraw(self, task_hash: int, standing: Standing | None, reopen: bool) -> None:
        """An answer was taken off the question: ``standing`` (someone else's) counts now, if any."""
        index = self._index_of.get(task_hash)
        if index is None:
            return
        row, cls = self._row_class(index)
        self.aggregate.forget(row, cls)
        if standing is not None:
            self.aggregate.observe(row, cls, *standing)
        elif reopen:
            self.ranker.reopen(index)

    def _task(self, index: int, exploration: bool, score: float | None = None) -> dict[str, Any]:
        row, cls = self._row_class(index)
        text, meta = self.store.example(self.dataset, int(self.table.input_hash[row])) or ("", {})
        return views.question_task(
            self.table, self.aggregate, row, cls, task_hash=self._index_of.hash_of(index), text=text, meta=meta,
            exploration=exploration, score=float(self.ranker.scores()[index]) if score is None else score,
            scorer=self.scorer,
        )

    def wait_for_refit(self) -> None:
        """Block until a background refit (if any) is applied: for tests and clean shutdown."""
        self.refit.wait()

    # -- handoff -------------------------------------------------------------------------------

    def start_handoff(self) -> None:
        """Train the first model now, in the background (:meth:`Handoff.start`; the CLI calls this)."""
        with self._lock:
            self.handoff.start(self.progress()["answers"])

    def train_now(self) -> bool:
        """Start a handoff training in the background now (:meth:`Handoff.train_now`)."""
        with self._lock:
            return self.handoff.train_now(self.progress()["answers"])

    def wait_for_handoff(self) -> None:
        """Block until a training in the background (if any) is recorded and, if it won, adopted."""
        self.handoff.wait()

    def _adopt_model(self, spans_path: str) -> None:
        """Install the table with the model's spans and vote (:mod:`bootstrap.adoption`); the slow
        rebuild and fit run outside the lock."""
        adoption = ModelAdoption(self.rules_table, spans_path, self.store.answers(self.dataset), self.config)
        with self._lock:
            table, aggregate = adoption.finish(self.store.answers(self.dataset))
            self.store.add_questions(self.dataset, question_rows(table))
            self._install(table, aggregate)  # what is on screen stays: pending questions are kept by hash
            self.scorer = "model"

    def close(self) -> None:
        if self.reading is not None:
            self.reading.close()
        self.wait_for_refit()
        self.handoff.close()
        self.store.close()

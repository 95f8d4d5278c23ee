"""The annotation loop: next question, answer, undo, change; the one engine every front end drives.

The web page, ``bootstrap simulate`` and the tests all use :class:`Session`; there is no second
copy of the loop. One session serves one dataset and any number of annotators:

* **Durable first.** An answer is committed to the store before the aggregate learns from it
  and before the next question is chosen, so a crash can lose a question on screen, never an
  answer given.
* **Resume.** Starting again replays the stored answers into the aggregate and the ranking, so a
  question answered before is never asked again and the probabilities are where they were.
* **Several annotators.** A question on someone's screen is leased to them in the store (which
  works across processes); nobody else is offered it until it is answered or the lease expires.
  If two annotators do answer the same task (after an undo, say), both answers are kept.
* **Refit off the request path.** Every ``refit_every`` decisions the LabelModel is refit in a
  background thread and swapped in when done; answering never waits for it.

Every public method takes the session's lock: the web server calls them from a thread pool.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import spacy

from .aggregate import Aggregate
from .candidates import DocCandidates, generate_candidates
from .corpus import Record, read_texts
from .hashing import task_hash as hash_task
from .labelmatrix import NOT_ENTITY, CandidateTable, build_candidate_table
from .lfs import load_lfs
from .matching import RuleMatcher
from .ranking import QuestionChoice, Ranker
from .rules import load_rules
from .store import ANSWERS, Store

DEFAULT_ANNOTATOR = "default"


class UnknownTask(KeyError):
    """The task hash is not a question of this session's dataset."""


class UnknownAnswer(KeyError):
    """No live answer of this annotator has that id."""


class AlreadyAnswered(ValueError):
    """This annotator has already answered this question (undo or change it instead)."""


@dataclass
class SessionConfig:
    """Every knob of the loop in one place (the CLI's options map onto it)."""

    exploration: float = 0.1
    label_floor: float = 0.5
    seed: int = 0
    refit_every: int = 100
    lease_seconds: float = 300.0
    handoff_accepts: int = 50  # accepts per label before a model is worth training
    background_refit: bool = True


@dataclass
class _Live:
    """The live answers on one question, by annotator: ``(answer_id, answer, exploration)``."""

    by_annotator: dict[str, tuple[int, str, bool]] = field(default_factory=dict)


class Session:
    """One dataset's loop over a candidate table, with its answers in a store."""

    def __init__(self, store: Store, dataset: str, table: CandidateTable, config: SessionConfig | None = None):
        self.store = store
        self.dataset = dataset
        self.table = table
        self.config = config or SessionConfig()
        self.aggregate = Aggregate(table, seed=self.config.seed)
        self.ranker = Ranker(self.aggregate, exploration=self.config.exploration,
                             label_floor=self.config.label_floor, seed=self.config.seed)
        self._lock = threading.RLock()
        self._task_hashes = [hash_task(*table.question(i)) for i in range(table.n_questions)]
        self._index_of = {task: i for i, task in enumerate(self._task_hashes)}
        self._live: dict[int, _Live] = {}
        self._pending: dict[str, QuestionChoice] = {}  # annotator -> the question on their screen
        self._shown_at: dict[str, float] = {}
        self._refitting: threading.Thread | None = None
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
        lang: str = "en",
        phrase_attr: str = "ORTH",
        config: SessionConfig | None = None,
        progress: Callable[[Iterable[Record]], Iterable[Record]] | None = None,
    ) -> "Session":
        """Read rules, functions and texts, store the texts and questions, and start (or resume) the loop."""
        store = Store(db)
        table = build_table(
            pattern_files, texts, lfs=lfs, labels=labels, lang=lang, phrase_attr=phrase_attr, progress=progress,
            through=lambda results: _storing(results, store, dataset),
        )
        store.add_questions(dataset, _question_rows(table))
        return cls(store, dataset, table, config)

    def _resume(self) -> None:
        """Replay stored answers: closed questions stay closed, the aggregate learns them again."""
        replayed = 0
        for stored in self.store.answers(self.dataset):
            index = self._index_of.get(stored.task_hash)
            if index is None:  # a question the current rules no longer propose: kept in the store
                continue
            self._record(index, stored.annotator, stored.id, stored.answer, stored.exploration)
            replayed += 1
        if replayed:
            self.aggregate.refit()

    # -- the loop ------------------------------------------------------------------------------

    def next_question(self, annotator: str = DEFAULT_ANNOTATOR) -> dict[str, Any] | None:
        """The question for this annotator: the one on their screen, or the best open one they may lease."""
        with self._lock:
            pending = self._pending.get(annotator)
            if pending is not None and self.ranker.open[pending.index]:
                if self.store.lease(self.dataset, self._task_hashes[pending.index], annotator, self.config.lease_seconds):
                    return self._task(pending)
            self._pending.pop(annotator, None)
            exclude = {self._index_of[t] for t in self.store.leased_by_others(self.dataset, annotator) if t in self._index_of}
            exclude.update(index for index, live in self._live.items() if annotator in live.by_annotator)
            while (choice := self.ranker.next(exclude)) is not None:
                if self.store.lease(self.dataset, self._task_hashes[choice.index], annotator, self.config.lease_seconds):
                    self._pending[annotator] = choice
                    self._shown_at[annotator] = time.time()
                    return self._task(choice)
                exclude.add(choice.index)  # another process took it a moment ago
            return None

    def answer(self, annotator: str, task_hash: int, answer: str) -> dict[str, Any]:
        """Store the answer (committed before returning), then learn from it."""
        if answer not in ANSWERS:
            raise ValueError(f"answer must be one of {', '.join(ANSWERS)}, got {answer!r}")
        with self._lock:
            index = self._question_index(task_hash)
            live = self._live.get(index)
            if live is not None and annotator in live.by_annotator:
                raise AlreadyAnswered(f"{annotator!r} already answered task {task_hash}: undo or change that answer")
            pending = self._pending.get(annotator)
            shown = pending if pending is not None and pending.index == index else None
            row, cls = int(self.table.question_row[index]), int(self.table.question_class[index])
            probability = float(self.aggregate.probabilities()[row, cls])
            answer_id = self.store.add_answer(
                self.dataset, task_hash, answer, annotator,
                exploration=bool(shown and shown.exploration), probability=probability,
                votes=self._votes(row), shown_at=self._shown_at.get(annotator) if shown else None,
            )
            if shown is not None:
                self._pending.pop(annotator, None)
            self._record(index, annotator, answer_id, answer, bool(shown and shown.exploration))
            self._maybe_refit()
            return {"answer_id": answer_id, "progress": self.progress()}

    def undo(self, annotator: str = DEFAULT_ANNOTATOR) -> dict[str, Any] | None:
        """Take back the annotator's last answer; its question becomes their next one."""
        with self._lock:
            undone = self.store.undo_last(self.dataset, annotator)
            if undone is None:
                return None
            index = self._index_of.get(undone.task_hash)
            if index is None:
                return None
            self._unrecord(index, annotator)
            choice = QuestionChoice(index, int(self.table.question_row[index]),
                                    self.table.label_of(int(self.table.question_class[index])),
                                    0.0, 0.0, undone.exploration)
            current = self._pending.get(annotator)
            if current is not None and current.index != index:
                self.store.release(self.dataset, self._task_hashes[current.index], annotator)
            self._pending[annotator] = choice
            self.store.lease(self.dataset, undone.task_hash, annotator, self.config.lease_seconds)
            return self._task(choice)

    def change(self, annotator: str, answer_id: int, answer: str) -> dict[str, Any]:
        """Change one of the annotator's earlier answers (the page's list of recent decisions)."""
        if answer not in ANSWERS:
            raise ValueError(f"answer must be one of {', '.join(ANSWERS)}, got {answer!r}")
        with self._lock:
            index = next((i for i, live in self._live.items()
                          if live.by_annotator.get(annotator, (None,))[0] == answer_id), None)
            if index is None:
                raise UnknownAnswer(f"{annotator!r} has no live answer with id {answer_id}")
            self.store.change_answer(answer_id, answer)
            exploration = self._live[index].by_annotator[annotator][2]
            self._unrecord(index, annotator, reopen=False)
            self._record(index, annotator, answer_id, answer, exploration)
            return {"answer_id": answer_id, "answer": answer, "progress": self.progress()}

    def recent(self, annotator: str = DEFAULT_ANNOTATOR, n: int = 10) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"answer_id": a.id, "task_hash": a.task_hash, "span_text": a.span_text, "label": a.label,
                 "answer": a.answer, "created": a.created,
                 "text": (self.store.example(self.dataset, a.input_hash) or ("", {}))[0]}
                for a in self.store.recent_answers(self.dataset, annotator, n)
            ]

    # -- what the page shows -------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        with self._lock:
            by_answer = dict.fromkeys(ANSWERS, 0)
            accepts = dict.fromkeys(self.table.labels, 0)
            for index, live in self._live.items():
                for _, answer, _ in live.by_annotator.values():
                    by_answer[answer] += 1
                    if answer == "accept":
                        accepts[self.table.label_of(int(self.table.question_class[index]))] += 1
            needed = self.config.handoff_accepts
            return {
                "answers": sum(by_answer.values()),
                "by_answer": by_answer,
                "accepts_per_label": accepts,
                "remaining": self.ranker.remaining,
                "total": self.table.n_questions,
                "method": self.aggregate.method,
                "handoff": {"accepts_needed_per_label": needed, "accepts": accepts,
                            "ready": bool(accepts) and all(n >= needed for n in accepts.values())},
            }

    def lf_stats(self) -> list[dict[str, Any]]:
        with self._lock:
            return [stats.to_dict() for stats in self.aggregate.lf_stats()]

    # -- internals -----------------------------------------------------------------------------

    def _question_index(self, task_hash: int) -> int:
        try:
            return self._index_of[int(task_hash)]
        except (KeyError, TypeError, ValueError):
            raise UnknownTask(f"no question with task hash {task_hash} in dataset {self.dataset!r}") from None

    def _record(self, index: int, annotator: str, answer_id: int, answer: str, exploration: bool) -> None:
        live = self._live.setdefault(index, _Live())
        live.by_annotator[annotator] = (answer_id, answer, exploration)
        row, cls = int(self.table.question_row[index]), int(self.table.question_class[index])
        self.aggregate.observe(row, cls, answer, exploration)  # the latest answer on a question counts
        self.ranker.close(index)

    def _unrecord(self, index: int, annotator: str, reopen: bool = True) -> None:
        live = self._live[index]
        del live.by_annotator[annotator]
        row, cls = int(self.table.question_row[index]), int(self.table.question_class[index])
        self.aggregate.forget(row, cls)
        if live.by_annotator:  # someone else's answer on it still stands
            _, answer, exploration = next(reversed(live.by_annotator.values()))
            self.aggregate.observe(row, cls, answer, exploration)
        else:
            del self._live[index]
            if reopen:
                self.ranker.reopen(index)

    def _votes(self, row: int) -> list[dict[str, Any]]:
        """Who voted what on a row, with each voter's current precision: shown and stored with answers."""
        precision = self.aggregate.posterior_accuracy()
        votes = []
        for name, cls in self.table.votes(row).items():
            j = self.table.lf_names.index(name)
            column = self.table.columns[j]
            if cls != NOT_ENTITY:
                vote = self.table.label_of(cls)
            elif column.negative:
                vote = f"not {column.label}"
            elif column.kind == "boundary":
                vote = "other boundaries"
            else:
                vote = "not an entity"
            votes.append({"lf": name, "kind": column.kind, "vote": vote, "precision": round(float(precision[j]), 4)})
        return votes

    def _task(self, choice: QuestionChoice) -> dict[str, Any]:
        """A question as a Prodigy-style task, with what the page shows beside it."""
        index, row = choice.index, choice.row
        input_hash = int(self.table.input_hash[row])
        text, meta = self.store.example(self.dataset, input_hash) or ("", {})
        cls = int(self.table.question_class[index])
        return {
            "task_hash": self._task_hashes[index],
            "input_hash": input_hash,
            "text": text,
            "label": choice.label,
            "spans": [{
                "start": int(self.table.start[row]), "end": int(self.table.end[row]), "label": choice.label,
                "token_start": int(self.table.token_start[row]), "token_end": int(self.table.token_end[row]),
            }],
            "probability": float(self.aggregate.probabilities()[row, cls]),
            "exploration": choice.exploration,
            "score": choice.score,
            "votes": self._votes(row),
            "meta": meta,
        }

    def _maybe_refit(self) -> None:
        every = self.config.refit_every
        if not every or self.aggregate.decisions_since_fit < every or self._refitting is not None:
            return
        balance = self.aggregate.decision_class_balance()
        if not self.config.background_refit:
            self.aggregate.fit(balance)
            return

        def refit() -> None:
            fitted = self.aggregate.compute_fit(balance)
            with self._lock:
                self.aggregate.apply_fit(fitted)
                self._refitting = None

        self._refitting = threading.Thread(target=refit, name="bootstrap-refit", daemon=True)
        self._refitting.start()

    def wait_for_refit(self) -> None:
        """Block until a background refit (if any) is applied: for tests and clean shutdown."""
        thread = self._refitting
        if thread is not None:
            thread.join()

    def close(self) -> None:
        self.wait_for_refit()
        self.store.close()


def build_table(
    pattern_files: Sequence[str | Path],
    texts: str | Path,
    *,
    lfs: str | Path | None = None,
    labels: Sequence[str] | None = None,
    lang: str = "en",
    phrase_attr: str = "ORTH",
    progress: Callable[[Iterable[Record]], Iterable[Record]] | None = None,
    through: Callable[[Iterable[DocCandidates]], Iterable[DocCandidates]] | None = None,
) -> CandidateTable:
    """Rules and functions applied to every text: the candidate table a session ranks.

    ``through`` sees the candidate stream on its way (the session stores texts from it).
    """
    nlp = spacy.blank(lang)
    rules = load_rules(pattern_files, nlp.vocab)
    functions = load_lfs(lfs) if lfs else []
    records: Iterable[Record] = read_texts(texts)
    if progress is not None:
        records = progress(records)
    results: Iterable[DocCandidates] = generate_candidates(nlp, RuleMatcher(nlp, rules, phrase_attr), records)
    if through is not None:
        results = through(results)
    return build_candidate_table(results, rules, functions, labels)


def _storing(results: Iterable[DocCandidates], store: Store, dataset: str, batch: int = 2000) -> Iterator[DocCandidates]:
    """Pass the candidate stream through, storing every text in batches.

    All texts are kept, not only those with a rule match: span proposers and, later, the model
    find candidates in the others, and the page shows texts from the store, not from memory.
    """
    buffer: list[Record] = []
    for result in results:
        buffer.append(result.record)
        if len(buffer) >= batch:
            store.add_examples(dataset, buffer)
            buffer = []
        yield result
    if buffer:
        store.add_examples(dataset, buffer)


def _question_rows(table: CandidateTable) -> Iterator[dict[str, Any]]:
    for i in range(table.n_questions):
        row = int(table.question_row[i])
        yield {
            "input_hash": int(table.input_hash[row]), "start": int(table.start[row]), "end": int(table.end[row]),
            "label": table.label_of(int(table.question_class[i])),
            "token_start": int(table.token_start[row]), "token_end": int(table.token_end[row]),
        }

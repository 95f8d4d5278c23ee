"""The answers that stand, per question and annotator: a session's copy of the store, kept in step.

The store is the truth, shared by every process on the database. A session keeps in memory which
answers stand so that it can close questions, feed the aggregate and count progress without a
query per request. Keeping that copy right is one job, apart from choosing questions, so it is
one class: :class:`LiveAnswers` reads the store on resume, reads what other processes answered,
undid or changed since its last look (:meth:`LiveAnswers.refresh`), and keeps several
annotators' answers on one question (the latest one counts). It tells the loop what changed
through two callbacks, ``observe`` and ``withdraw``; what the loop does with that (aggregate,
ranker) is :class:`~bootstrap.session.Session`'s business.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

SYNC_OVERLAP = 60.0  # seconds an undo or change by another process is looked for again

Standing = tuple[str, bool]  # (answer, exploration) of the answer that counts on a question


class LiveAnswers:
    """Per task hash, the live answers by annotator: ``(answer_id, answer, exploration)``.

    ``observe(task_hash, answer, exploration)`` is called when an answer comes to stand on a
    question; ``withdraw(task_hash, standing, reopen)`` when one is taken off it, with the answer
    that still stands there (another annotator's) or None, and whether the question opens again.
    """

    def __init__(self, store: Any, dataset: str, *, observe: Callable[[int, str, bool], None],
                 withdraw: Callable[[int, Standing | None, bool], None]):
        self.store = store
        self.dataset = dataset
        self._observe = observe
        self._withdraw = withdraw
        self._by_task: dict[int, dict[str, tuple[int, str, bool]]] = {}
        self._synced_id, self._synced_at = 0, time.time()  # what refresh has seen of the store

    def resume(self) -> int:
        """Record every answer stored for the dataset (a session starting again); how many there were."""
        replayed = 0
        self._synced_id, self._synced_at = 0, time.time()
        for stored in self.store.answers(self.dataset):
            self.record(stored.task_hash, stored.annotator, stored.id, stored.answer, stored.exploration)
            self._synced_id = max(self._synced_id, stored.id)
            replayed += 1
        return replayed

    def refresh(self) -> None:
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
            known = self.of(stored.task_hash, stored.annotator)
            if stored.undone_at is not None:
                if known is not None and known[0] == stored.id:
                    self.remove(stored.task_hash, stored.annotator)
                continue
            if known is not None and known[:2] == (stored.id, stored.answer):
                continue
            if known is not None:
                self.remove(stored.task_hash, stored.annotator, reopen=False)
            self.record(stored.task_hash, stored.annotator, stored.id, stored.answer, stored.exploration)
        self._synced_at = now

    def record(self, task_hash: int, annotator: str, answer_id: int, answer: str, exploration: bool) -> None:
        """The annotator's answer stands on the question (the latest answer there counts)."""
        self._by_task.setdefault(task_hash, {})[annotator] = (answer_id, answer, exploration)
        self._observe(task_hash, answer, exploration)

    def remove(self, task_hash: int, annotator: str, reopen: bool = True) -> None:
        """Take the annotator's answer off the question; it opens again (``reopen``) if no other stands."""
        by_annotator = self._by_task.get(task_hash)
        if by_annotator is None or annotator not in by_annotator:  # written by another process: the store has it
            return
        del by_annotator[annotator]
        if not by_annotator:
            del self._by_task[task_hash]
        standing = next(reversed(by_annotator.values()))[1:] if by_annotator else None
        self._withdraw(task_hash, standing, reopen)

    def of(self, task_hash: int, annotator: str) -> tuple[int, str, bool] | None:
        """The annotator's live answer on the question, if any."""
        return self._by_task.get(task_hash, {}).get(annotator)

    def find(self, annotator: str, answer_id: int) -> int | None:
        """The task hash of the annotator's live answer ``answer_id``, if it is live."""
        return next((task for task, by_annotator in self._by_task.items()
                     if by_annotator.get(annotator, (None,))[0] == answer_id), None)

    def standing(self) -> Iterator[tuple[int, str, bool]]:
        """Every answered question with the answer that counts: ``(task_hash, answer, exploration)``."""
        for task, by_annotator in self._by_task.items():
            _, answer, exploration = next(reversed(by_annotator.values()))
            yield task, answer, exploration

    def every(self) -> Iterator[tuple[int, str]]:
        """Every live answer of every annotator: ``(task_hash, answer)``."""
        for task, by_annotator in self._by_task.items():
            for _, answer, _ in by_annotator.values():
                yield task, answer

"""The candidate table of a corpus: every rule and labeling function applied to every text.

Building it is the slow, read-only first stage (read, tokenize, match, vote), shared by the
session, ``bootstrap stats``, ``report``, ``simulate`` and ``bootstrap train --rules``;
``bootstrap.scale`` builds the same table on a Dask cluster. The texts are stored on the way
(:class:`TextWriter`), and the table's questions go to the store as rows (:func:`question_rows`);
:func:`stored_table` does both, as a session starting from files needs.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import spacy

from .candidates import DocCandidates, generate_candidates
from .config import LANG, PHRASE_ATTR
from .corpus import Record, read_texts
from .labelmatrix import CandidateTable, build_candidate_table, concat_tables
from .lfs import load_lfs
from .matching import RuleMatcher
from .rules import load_rules
from .store import Store


def build_table(
    pattern_files: Sequence[str | Path],
    texts: str | Path | Iterable[Record],
    *,
    lfs: str | Path | None = None,
    labels: Sequence[str] | None = None,
    lang: str = LANG,
    phrase_attr: str = PHRASE_ATTR,
    progress: Callable[[Iterable[Record]], Iterable[Record]] | None = None,
    through: Callable[[Iterable[DocCandidates]], Iterable[DocCandidates]] | None = None,
    parts: Callable[[CandidateTable], None] | None = None,
    first_part: int = 10_000,
) -> CandidateTable:
    """Rules and functions applied to every text: the candidate table a session ranks.

    ``texts`` is a file or folder (``corpus.read_texts``) or the records themselves (``bootstrap
    train`` reads them back from the store). ``through`` sees the candidate stream on its way.
    ``parts`` gets the table of the texts read so far after ``first_part`` texts, then after ten
    times as many, and so on, while more texts follow (a session reading its corpus in the
    background grows with them); the parts are joined by ``labelmatrix.concat_tables``, so the
    table returned is the same.
    """
    nlp = spacy.blank(lang)
    rules = load_rules(pattern_files, nlp.vocab)
    functions = load_lfs(lfs) if lfs else []
    matcher = RuleMatcher(nlp, rules, phrase_attr)
    records: Iterable[Record] = read_texts(texts) if isinstance(texts, (str, Path)) else texts
    if progress is not None:
        records = progress(records)

    def table_of(part: Iterable[Record]) -> CandidateTable:
        results: Iterable[DocCandidates] = generate_candidates(nlp, matcher, part)
        return build_candidate_table(through(results) if through is not None else results, rules, functions, labels)

    if parts is None:
        return table_of(records)
    stream, tables, done, size = iter(records), [], 0, max(first_part, 1)
    while True:
        wanted = size - done
        taken = _Counted(itertools.islice(stream, wanted))
        table = table_of(taken)
        done += taken.count
        if taken.count or not tables:
            tables.append(table)
        so_far = concat_tables(tables) if len(tables) > 1 else tables[0]
        if taken.count < wanted:  # the corpus ended in this part
            return so_far
        following = next(stream, None)  # a part is handed on only if texts follow it: the last one
        if following is None:  # is the whole table, and a session given it twice held two at once
            return so_far
        stream = itertools.chain([following], stream)
        parts(so_far)
        size *= 10


class _Counted:
    """An iterable that counts what it yielded."""

    def __init__(self, items: Iterable[Any]):
        self.items, self.count = items, 0

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.count += 1
            yield item


def stored_table(
    pattern_files: Sequence[str | Path],
    texts: str | Path,
    store: Store,
    dataset: str,
    *,
    lfs: str | Path | None = None,
    labels: Sequence[str] | None = None,
    lang: str = LANG,
    phrase_attr: str = PHRASE_ATTR,
    progress: Callable[[Iterable[Record]], Iterable[Record]] | None = None,
    build: Callable[..., CandidateTable] | None = None,
    parts: Callable[[CandidateTable], None] | None = None,
    first_part: int = 10_000,
) -> CandidateTable:
    """The candidate table of ``texts``, with every text and every question stored in ``dataset``:
    what ``Session.from_files`` starts from.

    ``build`` makes the table (default :func:`build_table`; ``bootstrap.scale`` has one that runs
    on a Dask cluster). It takes the same arguments, and its ``progress`` hook on the record
    stream is how the texts get stored on the way. ``parts`` and ``first_part`` are
    :func:`build_table`'s (not the Dask builder's): each table so far is handed on once its
    texts and questions are stored, so a session can ask about them at once.
    """
    inputs = dict(lfs=lfs, labels=labels, lang=lang, phrase_attr=phrase_attr)
    cached = getattr(build, "cached", None)  # a table_cache.CachedBuilder reads a built table back
    table = cached(pattern_files, texts, **inputs) if cached is not None and isinstance(texts, (str, Path)) else None
    if table is not None and store.question_count(dataset) >= distinct_questions(table):
        return table  # its texts and questions were stored when it was built (inserting them again: 26 s at 1M texts)
    if table is None:
        writer = TextWriter(store, dataset)
        growing: dict[str, Any] = {}
        if parts is not None:
            def stored_part(part: CandidateTable) -> None:
                writer.flush()
                store.add_questions(dataset, question_rows(part))
                parts(part)

            growing = {"parts": stored_part, "first_part": first_part}
        table = (build or build_table)(pattern_files, texts, progress=lambda records: writer(progress(records) if progress else records),
                                       **inputs, **growing)
    store.add_questions(dataset, question_rows(table))
    return table


class TextWriter:
    """Passes a record stream through, storing every text in batches.

    All texts are kept, not only those with a rule match: span proposers and, later, the model
    find candidates in the others, and the page shows texts from the store, not from memory.
    """

    def __init__(self, store: Store, dataset: str, batch: int = 2000):
        self.store, self.dataset, self.batch = store, dataset, batch
        self._buffer: list[Record] = []

    def __call__(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            self._buffer.append(record)
            if len(self._buffer) >= self.batch:
                self.flush()
            yield record
        self.flush()

    def flush(self) -> None:
        """Store the texts passed through so far (a part of the table is about to be asked)."""
        if self._buffer:
            self.store.add_examples(self.dataset, self._buffer)
            self._buffer = []


def distinct_questions(table: CandidateTable) -> int:
    """How many distinct questions (text, span, label) the table holds: a text that occurs twice in
    the corpus gives its questions twice, and the store keeps each once."""
    rows = table.question_row
    keys = np.stack([table.input_hash[rows], table.start[rows], table.end[rows], table.question_class.astype(np.int64)], axis=1)
    return len(np.unique(keys, axis=0)) if len(keys) else 0


def question_rows(table: CandidateTable) -> Iterator[dict[str, Any]]:
    for i in range(table.n_questions):
        row = int(table.question_row[i])
        yield {
            "input_hash": int(table.input_hash[row]), "start": int(table.start[row]), "end": int(table.end[row]),
            "label": table.label_of(int(table.question_class[i])),
            "token_start": int(table.token_start[row]), "token_end": int(table.token_end[row]),
        }

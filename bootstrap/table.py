"""The candidate table of a corpus: every rule and labeling function applied to every text.

Building it is the slow, read-only first stage (read, tokenize, match, vote), shared by the
session, ``bootstrap stats``, ``report``, ``simulate`` and ``bootstrap train --rules``;
``bootstrap.scale`` builds the same table on a Dask cluster. The texts are stored on the way
(:func:`store_texts`), and the table's questions go to the store as rows (:func:`question_rows`);
:func:`stored_table` does both, as a session starting from files needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import spacy

from .candidates import DocCandidates, generate_candidates
from .config import LANG, PHRASE_ATTR
from .corpus import Record, read_texts
from .labelmatrix import CandidateTable, build_candidate_table
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
) -> CandidateTable:
    """Rules and functions applied to every text: the candidate table a session ranks.

    ``texts`` is a file or folder (``corpus.read_texts``) or the records themselves (``bootstrap
    train`` reads them back from the store). ``through`` sees the candidate stream on its way.
    """
    nlp = spacy.blank(lang)
    rules = load_rules(pattern_files, nlp.vocab)
    functions = load_lfs(lfs) if lfs else []
    records: Iterable[Record] = read_texts(texts) if isinstance(texts, (str, Path)) else texts
    if progress is not None:
        records = progress(records)
    results: Iterable[DocCandidates] = generate_candidates(nlp, RuleMatcher(nlp, rules, phrase_attr), records)
    if through is not None:
        results = through(results)
    return build_candidate_table(results, rules, functions, labels)


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
) -> CandidateTable:
    """The candidate table of ``texts``, with every text and every question stored in ``dataset``:
    what ``Session.from_files`` starts from.

    ``build`` makes the table (default :func:`build_table`; ``bootstrap.scale`` has one that runs
    on a Dask cluster). It takes the same arguments, and its ``progress`` hook on the record
    stream is how the texts get stored on the way.
    """
    inputs = dict(lfs=lfs, labels=labels, lang=lang, phrase_attr=phrase_attr)
    cached = getattr(build, "cached", None)  # a table_cache.CachedBuilder reads a built table back
    table = cached(pattern_files, texts, **inputs) if cached is not None and isinstance(texts, (str, Path)) else None
    if table is not None and store.question_count(dataset) >= distinct_questions(table):
        return table  # its texts and questions were stored when it was built (inserting them again: 26 s at 1M texts)
    if table is None:
        reading = lambda records: store_texts(progress(records) if progress else records, store, dataset)  # noqa: E731
        table = (build or build_table)(pattern_files, texts, progress=reading, **inputs)
    store.add_questions(dataset, question_rows(table))
    return table


def store_texts(records: Iterable[Record], store: Store, dataset: str, batch: int = 2000) -> Iterator[Record]:
    """Pass the record stream through, storing every text in batches.

    All texts are kept, not only those with a rule match: span proposers and, later, the model
    find candidates in the others, and the page shows texts from the store, not from memory.
    """
    buffer: list[Record] = []
    for record in records:
        buffer.append(record)
        if len(buffer) >= batch:
            store.add_examples(dataset, buffer)
            buffer = []
        yield record
    if buffer:
        store.add_examples(dataset, buffer)


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

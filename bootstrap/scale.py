"""Candidate generation on a Dask cluster, for corpora one process is too slow for.

The corpus is cut into partitions of consecutive texts; each worker tokenizes, matches and lets
the labeling functions vote on its partitions and sends back a *partial* candidate table (numpy
arrays); the partial tables are merged in corpus order by :func:`~.labelmatrix.concat_tables`,
so the result equals the table of the single-process :func:`~.table.build_table` exactly.

Why ``distributed`` futures and not ``dask.bag`` or Snorkel's ``DaskLFApplier``:

* the texts are a *stream*: this process reads them once (the session stores them in its
  database on the way) and keeps only a bounded number of partitions in flight. ``dask.bag``
  needs the whole sequence when the graph is built (``from_sequence``), or workers that read the
  file themselves (``read_text``), which needs a file system shared with every worker and loses
  the ``file:line`` of each text that error messages name;
* the work per partition is one function (a partial table out of a list of texts), which is
  what ``Client.submit`` runs; results are gathered as they finish and merged in order;
* ``DaskLFApplier`` wants a pandas DataFrame with one row per data point and class-integer
  functions; our rows are candidate spans found while applying the rules, not known up front.

Workers need the rules and functions: the *contents* of the pattern files and of the LF file
are shipped with every task (a few kilobytes), so a worker on another machine needs the
``bootstrap`` package but not the files, and each worker process loads them once (cached by
their digest). The files are read and checked here first, so a bad file is reported before any
work is sent.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import itertools
import logging
import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import spacy

from .candidates import generate_candidates
from .config import LANG, PHRASE_ATTR
from .corpus import Record, read_texts
from .labelmatrix import CandidateTable, build_candidate_table, concat_tables
from .lfs import LabelingFunction, load_lfs
from .matching import RuleMatcher
from .rules import RuleSet, load_rules

LOCAL_PREFIX = "local:"
DEFAULT_PARTITION_SIZE = 5000


@dataclass(frozen=True)
class Recipe:
    """What a worker needs to build a partial table: rule and function files by content, and options."""

    pattern_files: tuple[tuple[str, str], ...]  # (file name, content), in the order given
    lfs: tuple[str, str] | None
    labels: tuple[str, ...] | None
    lang: str
    phrase_attr: str

    @classmethod
    def from_files(cls, pattern_files: Sequence[str | Path], lfs: str | Path | None, labels: Sequence[str] | None,
                   lang: str, phrase_attr: str) -> "Recipe":
        read = lambda path: (Path(path).name, Path(path).read_text(encoding="utf8"))  # noqa: E731
        return cls(tuple(read(p) for p in pattern_files), read(lfs) if lfs else None,
                   tuple(labels) if labels else None, lang, phrase_attr)

    @property
    def digest(self) -> str:
        return hashlib.blake2b(repr(self).encode("utf8"), digest_size=16).hexdigest()


@dataclass
class _Loaded:
    nlp: Any
    rules: RuleSet
    matcher: RuleMatcher
    functions: list[LabelingFunction]


_loaded: dict[str, _Loaded] = {}  # per worker process: recipes loaded so far, by digest


def _load(recipe: Recipe) -> _Loaded:
    """The recipe's tokenizer, rules, matcher and functions, loaded once per worker process.

    The files are written to a folder of this process under their own names (so messages name
    them as the user does) and loaded by the same functions a single process uses.
    """
    loaded = _loaded.get(recipe.digest)
    if loaded is None:
        folder = Path(tempfile.mkdtemp(prefix=f"bootstrap-{recipe.digest[:8]}-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        paths = []
        for i, (name, content) in enumerate(recipe.pattern_files):
            path = folder / str(i) / name
            path.parent.mkdir()
            path.write_text(content, encoding="utf8")
            paths.append(path)
        functions: list[LabelingFunction] = []
        if recipe.lfs is not None:
            lf_path = folder / "lfs" / recipe.lfs[0]
            lf_path.parent.mkdir()
            lf_path.write_text(recipe.lfs[1], encoding="utf8")
            functions = load_lfs(lf_path)
        nlp = spacy.blank(recipe.lang)
        rules = load_rules(paths, nlp.vocab)
        loaded = _loaded[recipe.digest] = _Loaded(nlp, rules, RuleMatcher(nlp, rules, recipe.phrase_attr), functions)
    return loaded


def partial_table(recipe: Recipe, records: list[Record]) -> CandidateTable:
    """The candidate table of one partition of texts (what a worker runs)."""
    loaded = _load(recipe)
    results = generate_candidates(loaded.nlp, loaded.matcher, records)
    return build_candidate_table(results, loaded.rules, loaded.functions, recipe.labels)


def partitions(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """Consecutive lists of ``size`` records, without the rest of each task (workers need the
    text, its hash and its ``file:line``; ``meta`` and ``spans`` stay here)."""
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, size)):
        yield [Record(r.text, r.input_hash, r.source) for r in chunk]


def builder(address: str) -> Callable[..., CandidateTable]:
    """A table builder for ``Session.from_files(build=...)`` that runs on ``address``
    (``local:N`` or a scheduler's), checked now: a bad address is a usage error before any work."""
    if importlib.util.find_spec("distributed") is None:
        raise ValueError("needs dask and distributed: pip install 'bootstrap[dask]'")
    if address.startswith(LOCAL_PREFIX):
        _local_workers(address)
    return functools.partial(build_table_dask, client_or_address=address)


def _local_workers(address: str) -> int:
    workers = address.removeprefix(LOCAL_PREFIX)
    if not workers.isdigit() or int(workers) < 1:
        raise ValueError(f"{address!r}: expected local:N with N a number of workers, e.g. local:2")
    return int(workers)


def connect(address: str):
    """A ``distributed.Client`` for ``ADDRESS`` (a running scheduler) or ``local:N`` (a new
    cluster of N worker processes on this machine, closed with the client)."""
    from distributed import Client, LocalCluster

    if address.startswith(LOCAL_PREFIX):
        cluster = LocalCluster(n_workers=_local_workers(address), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
        client._bootstrap_cluster = cluster  # closed with the client (see close)
        return client
    return Client(address)


def close(client) -> None:
    """Close a client from :func:`connect`, and its local cluster if it started one."""
    cluster = getattr(client, "_bootstrap_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def build_table_dask(
    pattern_files: Sequence[str | Path],
    texts: str | Path,
    *,
    client_or_address,
    lfs: str | Path | None = None,
    labels: Sequence[str] | None = None,
    lang: str = LANG,
    phrase_attr: str = PHRASE_ATTR,
    partition_size: int = DEFAULT_PARTITION_SIZE,
    progress: Callable[[Iterable[Record]], Iterable[Record]] | None = None,
) -> CandidateTable:
    """:func:`~.table.build_table` on a Dask cluster: the same table, built by its workers.

    ``client_or_address`` is a ``distributed.Client`` or an address for :func:`connect`.
    ``progress`` sees the record stream as it is read here (the session stores texts from it).
    At most two partitions per worker thread are in flight, so this process never holds more
    than those of the texts.
    """
    nlp = spacy.blank(lang)
    rules = load_rules(pattern_files, nlp.vocab)  # a bad file is reported here, before any work is sent
    functions = load_lfs(lfs) if lfs else []
    recipe = Recipe.from_files(pattern_files, lfs, labels, lang, phrase_attr)
    owned = isinstance(client_or_address, str)
    client = connect(client_or_address) if owned else client_or_address
    try:
        records: Iterable[Record] = read_texts(texts)
        if progress is not None:
            records = progress(records)
        tables = list(_run(client, recipe, partitions(records, partition_size)))
        return concat_tables(tables) if tables else build_candidate_table((), rules, functions, labels)
    finally:
        if owned:
            close(client)


def _run(client, recipe: Recipe, chunks: Iterable[list[Record]]) -> Iterator[CandidateTable]:
    """Partial tables in corpus order, with a bounded number of partitions submitted at once."""
    window = 2 * max(1, sum(client.nthreads().values()))
    in_flight: deque = deque()
    for chunk in chunks:
        in_flight.append(client.submit(partial_table, recipe, chunk, pure=False))
        if len(in_flight) >= window:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()

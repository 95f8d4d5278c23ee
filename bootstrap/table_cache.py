"""The candidate table of a session, kept on disk so a restart reads it back instead of matching again.

Building the table (:func:`~bootstrap.table.build_table`: read, tokenize, match every rule, run
every labeling function) is almost all of a session's start-up: 7 s at 10k texts, 8 minutes at a
million. Its inputs rarely change between two starts of the same session, so the first start
saves the table and the next ones load it (:class:`CachedBuilder`, a drop-in ``build=`` for
``Session.from_files`` that wraps any builder, the Dask one too).

* **Never stale.** An entry is found by a key over everything the table is made of: the bytes of
  each pattern file and of the labeling-function file, the texts' identity (path, size and
  modification time of the file, or of every file of a folder), the labels, language and phrase
  attribute, and the code that builds tables (bootstrap's version, a hash of the sources of the
  modules that build it, spaCy's and Python's versions). A change in any of them is a miss: the
  table is built again. What the key cannot see is a module the user's labeling functions
  import: after changing one, start with ``--rebuild``.
* **Only with the texts stored.** A session shows texts from its database, and the texts are
  stored while the table is built. So a table is loaded only if the dataset it was built for is
  the one in the database now (same creation time) and holds at least as many texts as the
  corpus has distinct ones; a fresh database, or a first run killed before all its texts were
  stored, builds (and stores) again.
* **One file, written atomically.** An entry is one ``.npz`` (numpy arrays, no pickle; the
  span strings as one UTF-8 buffer with offsets; the rest as JSON), written to a temporary file
  and moved into place, so a killed write leaves no broken entry. An unreadable entry is a
  warning and a rebuild, never a traceback. Writing an entry removes the dataset's older ones.

Where entries live (:func:`default_cache_dir`): beside a SQLite database (``bootstrap.db.cache/``),
or ``.bootstrap-cache/`` in the working directory for a database URL.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import tempfile
import warnings
from array import array
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from . import __version__
from .config import LANG, PHRASE_ATTR
from .corpus import Record
from .errors import Notice
from .labelmatrix import CandidateTable, Column
from .lfs import LFErrors

FORMAT = 1
SUFFIX = ".npz"
URL_CACHE_DIR = ".bootstrap-cache"
ARRAYS = ("input_hash", "start", "end", "token_start", "token_end", "L", "question_row", "question_class")
# The modules a table is built by: a change in any of them is a new table.
BUILDING_MODULES = ("candidates", "matching", "rules", "labelmatrix", "lfs", "table", "corpus", "hashing", "limits", "tasks")

GROWING = {"parts", "first_part"}  # build_table's options that hand on parts of the same table: cached as usual
Builder = Callable[..., CandidateTable]
StoredTexts = Callable[[], "tuple[float, int] | None"]  # (dataset created, texts stored), None: no such dataset


# -- saving and loading ------------------------------------------------------------------------


def save_table(table: CandidateTable, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``table`` (and ``extra``, JSON) to ``path`` atomically: a temporary file moved into place."""
    path = Path(path)
    strings = "".join(table.text).encode("utf8", "surrogatepass")
    offsets = np.zeros(len(table.text) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in table.text], out=offsets[1:])
    meta = {
        "format": FORMAT, "labels": table.labels, "texts": table.texts,
        "columns": [[c.name, c.kind, c.label, c.negative] for c in table.columns],
        "errors": {"counts": table.errors.counts, "first": table.errors.first, "what": table.errors.what,
                   "timeouts": table.errors.timeouts},
        "extra": extra or {},
    }
    arrays = {name: getattr(table, name) for name in ARRAYS}
    if table.model_probability is not None:
        arrays["model_probability"] = table.model_probability
    arrays["text_utf8"] = np.frombuffer(strings, dtype=np.uint8)
    arrays["text_offsets"] = offsets
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_table(path: Path) -> tuple[CandidateTable, dict[str, Any]]:
    """The table :func:`save_table` wrote, and its ``extra``. Raises ``ValueError`` (or ``OSError``)
    on a file that is not a whole entry."""
    with np.load(Path(path), allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes().decode("utf8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT}")
        arrays = {name: data[name] for name in ARRAYS}
        model_probability = data["model_probability"] if "model_probability" in data.files else None
        strings = data["text_utf8"].tobytes().decode("utf8", "surrogatepass")
        offsets = data["text_offsets"].tolist()
    text = [strings[a:b] for a, b in zip(offsets, offsets[1:])]
    columns = [Column(name, kind, label, negative) for name, kind, label, negative in meta["columns"]]
    n = len(arrays["input_hash"])
    if (len(text) != n or offsets[-1] != len(strings) or arrays["L"].shape != (n, len(columns))
            or any(len(arrays[name]) != n for name in ARRAYS[1:5])
            or len(arrays["question_class"]) != len(arrays["question_row"])):
        raise ValueError("arrays of different lengths")
    errors = meta["errors"]
    table = CandidateTable(
        labels=meta["labels"], columns=columns, text=text, texts=meta["texts"], model_probability=model_probability,
        errors=LFErrors(counts=errors["counts"], first=errors["first"], what=errors["what"], timeouts=errors["timeouts"]),
        **arrays,
    )
    return table, meta["extra"]


# -- the key -----------------------------------------------------------------------------------


@functools.cache
def code_version() -> str:
    """bootstrap's version and a hash of the sources that build a table (computed once a process)."""
    digest = hashlib.blake2b(digest_size=16)
    package = Path(__file__).parent
    for name in BUILDING_MODULES:
        digest.update(name.encode() + b"\0" + (package / f"{name}.py").read_bytes() + b"\0")
    try:
        spacy_version = metadata.version("spacy")
    except metadata.PackageNotFoundError:
        spacy_version = "?"
    return f"bootstrap {__version__} {digest.hexdigest()} spacy {spacy_version} python {sys.version_info[0]}.{sys.version_info[1]}"


def _file_digest(path: str | Path) -> str:
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


def texts_identity(path: str | Path) -> list[Any]:
    """What says the texts are the same ones: the file's resolved path, size and modification
    time, or those of every file of a folder (its name relative to the folder)."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return [str(path), [[str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]]
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def table_key(pattern_files: Sequence[str | Path], texts: str | Path, *, lfs: str | Path | None = None,
              labels: Sequence[str] | None = None, lang: str = LANG, phrase_attr: str = PHRASE_ATTR) -> str:
    """A digest of everything the table depends on (``OSError`` if a file cannot be read)."""
    parts = {
        "code": code_version(),
        "patterns": [[str(p), _file_digest(p)] for p in pattern_files],
        "lfs": [str(lfs), _file_digest(lfs)] if lfs else None,
        "texts": texts_identity(texts),
        "labels": list(labels) if labels else None, "lang": lang, "phrase_attr": phrase_attr,
    }
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode("utf8"), digest_size=16).hexdigest()


# -- the caching builder -----------------------------------------------------------------------


def default_cache_dir(db: str | Path) -> Path:
    """``<db>.cache/`` beside a SQLite file; ``.bootstrap-cache/`` in the working directory for a URL."""
    from .store import is_sqlite_path

    if is_sqlite_path(db):
        path = Path(db).expanduser().resolve()
        return path.with_name(path.name + ".cache")
    return Path.cwd() / URL_CACHE_DIR


def entry_prefix(db: str | Path, dataset: str) -> str:
    """The start of the file names of one database's dataset: readable, and distinct per database."""
    from .store import engine_url

    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", dataset)[:40]
    scope = hashlib.blake2b(f"{engine_url(db)}\0{dataset}".encode("utf8"), digest_size=6).hexdigest()
    return f"{slug}-{scope}"


class CachedBuilder:
    """A table builder with ``build``'s signature (default :func:`~bootstrap.table.build_table`) that
    loads the table from ``cache_dir`` when it can, and otherwise builds and saves it.

    ``prefix`` names one dataset's entries (:func:`entry_prefix`); ``stored`` says when the dataset
    in the database was created and how many texts it holds (None: not there), asked before a
    load (are this entry's texts there?) and after a build (recorded with the entry).
    ``rebuild`` builds whatever the cache holds (and replaces the entry).
    """

    def __init__(self, cache_dir: str | Path, prefix: str, *, stored: StoredTexts, build: Builder | None = None,
                 rebuild: bool = False):
        self.folder = Path(cache_dir)
        self.prefix = prefix
        self.stored = stored
        self.build = build
        self.rebuild = rebuild

    def _entry(self, pattern_files: Sequence[str | Path], texts: str | Path, **inputs: Any) -> Path | None:
        """The entry's path for these inputs; None when a file cannot be read (the builder says why)."""
        try:
            return self.folder / f"{self.prefix}.{table_key(pattern_files, texts, **inputs)}{SUFFIX}"
        except OSError:
            return None

    def usable(self, pattern_files: Sequence[str | Path], texts: str | Path, *, lfs: str | Path | None = None,
               labels: Sequence[str] | None = None, lang: str = LANG, phrase_attr: str = PHRASE_ATTR) -> Path | None:
        """The entry of these inputs if it can be read back (never with ``rebuild``), found without
        loading its table; None to build."""
        path = self._entry(pattern_files, texts, lfs=lfs, labels=labels, lang=lang, phrase_attr=phrase_attr)
        if self.rebuild or path is None or not path.exists() or not _texts_stored(path, self.stored):
            return None
        return path

    def cached(self, pattern_files: Sequence[str | Path], texts: str | Path, **inputs: Any) -> CandidateTable | None:
        """The cached table of these inputs if there is one to load (never with ``rebuild``); None to build."""
        path = self.usable(pattern_files, texts, **inputs)
        return None if path is None else _load(path)

    def __call__(self, pattern_files: Sequence[str | Path], texts: str | Path | Iterable[Record], *,
                 lfs: str | Path | None = None, labels: Sequence[str] | None = None, lang: str = LANG,
                 phrase_attr: str = PHRASE_ATTR,
                 progress: Callable[[Iterable[Record]], Iterable[Record]] | None = None, **options: Any) -> CandidateTable:
        inner = self.build
        if inner is None:
            from .table import build_table as inner
        arguments = dict(lfs=lfs, labels=labels, lang=lang, phrase_attr=phrase_attr, **options)
        if set(options) - GROWING or not isinstance(texts, (str, Path)):  # records, or a stream watcher (through=): not cached
            return inner(pattern_files, texts, progress=progress, **arguments)
        path = self._entry(pattern_files, texts, lfs=lfs, labels=labels, lang=lang, phrase_attr=phrase_attr)
        if path is None:  # a missing file: the builder says what is wrong with it
            return inner(pattern_files, texts, progress=progress, **arguments)
        table = self.cached(pattern_files, texts, lfs=lfs, labels=labels, lang=lang, phrase_attr=phrase_attr)
        if table is not None:
            return table
        distinct = array("q")

        def counted(records: Iterable[Record]) -> Iterator[Record]:
            for record in progress(records) if progress is not None else records:
                distinct.append(record.input_hash)
                yield record

        table = inner(pattern_files, texts, progress=counted, **arguments)
        _save_entry(table, path, self.prefix, self.stored, len(np.unique(np.frombuffer(distinct, dtype=np.int64))))
        return table


def cached_builder(cache_dir: str | Path, prefix: str, *, stored: StoredTexts, build: Builder | None = None,
                   rebuild: bool = False) -> CachedBuilder:
    """A :class:`CachedBuilder`: a drop-in ``build=`` for ``Session.from_files`` that reads the table
    back from ``cache_dir`` when it can."""
    return CachedBuilder(cache_dir, prefix, stored=stored, build=build, rebuild=rebuild)


def store_builder(db: str | Path, dataset: str, *, cache_dir: str | Path | None = None, build: Builder | None = None,
                  rebuild: bool = False) -> CachedBuilder:
    """:func:`cached_builder` for a session of ``dataset`` in the database ``db`` (``--db``)."""

    def stored() -> tuple[float, int] | None:
        from .store import Store

        with Store(db) as store:
            return store.dataset_texts(dataset)

    return cached_builder(cache_dir if cache_dir is not None else default_cache_dir(db), entry_prefix(db, dataset),
                          stored=stored, build=build, rebuild=rebuild)


def _texts_stored(path: Path, stored: StoredTexts) -> bool:
    """Whether the entry's texts are in the database (its small ``meta`` member read, not the table)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            extra = json.loads(data["meta"].tobytes().decode("utf8"))["extra"]
        created, distinct = float(extra["dataset_created"]), int(extra["distinct_texts"])
    except Exception as error:  # noqa: BLE001 - any unreadable entry is rebuilt, never a traceback
        _unreadable(path, error)
        return False
    now = stored()
    return now is not None and now[0] == created and now[1] >= distinct  # else another database, or texts missing


def _load(path: Path) -> CandidateTable | None:
    try:
        return load_table(path)[0]
    except Exception as error:  # noqa: BLE001 - any unreadable entry is rebuilt, never a traceback
        _unreadable(path, error)
        return None


def _unreadable(path: Path, error: Exception) -> None:
    warnings.warn(f"the cached candidate table {path} cannot be read ({type(error).__name__}: {error}); "
                  "building it again", Notice)


def _save_entry(table: CandidateTable, path: Path, prefix: str, stored: StoredTexts, distinct: int) -> None:
    """Save the entry, then remove the dataset's other entries; a cache that cannot be written is a warning."""
    now = stored()
    if now is None:  # the texts were not stored (a builder called without the session's store)
        return
    try:
        save_table(table, path, {"dataset_created": now[0], "distinct_texts": distinct})
        for old in path.parent.glob(f"{prefix}.*"):  # (a prefix has no "." and no glob character)
            if old != path and (old.suffix in (SUFFIX, ".tmp")):
                old.unlink(missing_ok=True)
    except OSError as error:
        warnings.warn(f"the candidate table could not be cached in {path.parent} ({error}); "
                      "the next start will build it again", Notice)

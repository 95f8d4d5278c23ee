"""The first question in seconds, whatever the corpus size: the rest of the corpus joins while the
person answers.

Building the candidate table of a corpus (read, store, tokenize, match, vote) takes 7 s at 10k
texts and 8 minutes at a million. A session that waited for it would show its first question
after eight minutes. :func:`start_session` starts on the corpus's first ``first_texts`` texts
instead (a table of those is a second's work), and a spawned process reads, stores and matches
the whole corpus meanwhile, exactly as a one-stage start would (the same builder: one process,
or the Dask cluster of ``--dask``, and the same table cache). On the way (one process), it hands
on the table of the first ``GROWTH`` × ``first_texts`` texts, then of ten times as many, and so
on, each once its texts and questions are stored (``table.build_table(parts=...)``); the whole
table comes last. Each replaces the session's table (:meth:`~bootstrap.session.Session.grow`)
between two questions, as an adopted model's table does, and the aggregate is fit on it:

* **Nothing lost, nothing asked twice.** A question is named by its task hash, which depends on
  the text and span alone, so every question of the first table is a question of the whole one;
  the answers stored meanwhile are replayed into it (closed questions stay closed) and a
  question on someone's screen stays there.
* **Restart mid-way.** Nothing of the background work is trusted until it is finished: the
  texts it stored are inserted again without harm, and the cache entry is written atomically
  once the table is whole. A restart after a kill starts on the first texts again, resumes
  their answers, and reads the corpus again in the background; a restart after it finished
  reads the whole table back from the cache (seconds, not minutes).
* **Honest early sample.** Until the whole table is in, questions come from the texts matched
  so far: the page says so, with how many texts have been read. Models train on the texts the
  session has matched (:attr:`~bootstrap.handoff.Handoff.texts`), and one more is trained on
  all of them once they are in.
* **Errors.** A bad line further down the corpus is found by the background process: the page
  and the console show it (``file:line: what``) and the session goes on with the texts it has.

A corpus of at most ``first_texts`` texts is built in one stage, as before.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import shutil
import tempfile
import threading
import warnings
from array import array
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from .config import SessionConfig
from .corpus import Record, read_texts
from .errors import InputError, Notice
from .workers import exit_with_parent
from .labelmatrix import CandidateTable
from .session import Session
from .store import Store
from .table import stored_table
from .table_cache import load_table, save_table, store_builder

REPORT_EVERY = 500  # texts between two updates of the shared "texts read" counter
GROWTH = 10  # the session's table grows to 10× the first texts, then 100×, ... until the whole corpus
POLL_SECONDS = 0.5  # how often the session looks for a larger table
WHOLE, ERROR = "table.npz", "error.txt"


def start_session(pattern_files: Sequence[str | Path], texts: str | Path, *, db: str, dataset: str,
                  config: SessionConfig | None = None, first_texts: int, build: Callable[..., CandidateTable] | None = None,
                  cache_dir: str | Path | None = None, rebuild: bool = False,
                  progress: Callable[[Iterable[Record]], Iterable[Record]] | None = None, **inputs: Any) -> Session:
    """A session on ``texts``: on the whole cached table if there is one, else on the first
    ``first_texts`` texts with the rest read in the background (module docstring).

    ``build`` is the table builder of the whole corpus (one process by default, ``scale.builder``
    for Dask); it is wrapped in the table cache here. ``inputs`` are ``lfs``, ``labels``,
    ``lang`` and ``phrase_attr``; ``progress`` watches the records of a one-stage start.
    """
    whole = store_builder(db, dataset, cache_dir=cache_dir, build=build, rebuild=rebuild)
    if whole.usable(pattern_files, texts, **inputs) is not None or first_texts <= 0:  # (read back by from_files)
        return Session.from_files(pattern_files, texts, db=db, dataset=dataset, config=config, build=whole,
                                  progress=progress, **inputs)
    records = read_texts(texts)  # (a bad line among the first texts is an error here, as in one stage)
    first = list(itertools.islice(records, first_texts + 1))
    records.close()
    if len(first) <= first_texts:  # the whole corpus is small: one stage, cached as usual
        return Session.from_files(pattern_files, texts, db=db, dataset=dataset, config=config, build=whole,
                                  progress=progress, **inputs)
    first = first[:first_texts]
    session = Session.from_files(pattern_files, first, db=db, dataset=dataset, config=config, partial=True, **inputs)
    session.pattern_files = [Path(p) for p in pattern_files]
    reading = CorpusReading(pattern_files, texts, db=db, dataset=dataset, build=build, cache_dir=cache_dir,
                            rebuild=rebuild, inputs=inputs, first=len(first))
    session.read_rest(reading, {record.input_hash for record in first})
    return session


class CorpusReading:
    """The whole corpus read, stored and matched in a spawned process; each larger table handed back."""

    def __init__(self, pattern_files: Sequence[str | Path], texts: str | Path, *, db: str, dataset: str,
                 build: Callable[..., CandidateTable] | None, cache_dir: str | Path | None, rebuild: bool,
                 inputs: dict[str, Any], first: int):
        self._context = multiprocessing.get_context("spawn")  # fork would copy the server's threads and locks
        self._read = self._context.Value("q", 0, lock=False)
        self._folder = Path(tempfile.mkdtemp(prefix="bootstrap-reading-"))
        self.first = first  # texts the session started on
        self.installed = first  # texts of the table the session asks from
        self.error: str | None = None
        self.done = False
        self._arguments = ([str(p) for p in pattern_files], str(texts), str(db), dataset, build,
                           None if cache_dir is None else str(cache_dir), rebuild, inputs)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._thread: threading.Thread | None = None

    def start(self, install: Callable[[CandidateTable, "frozenset[int] | None"], None]) -> None:
        """Start reading; ``install`` gets each larger table, in a thread of this process, with the
        input hashes of the texts read so far (None with the whole corpus's table)."""
        # Daemonic, so it ends with the session's process; but a Dask LocalCluster (``--dask
        # local:N``) starts processes of its own, which a daemonic process may not: then it is
        # stopped by close() and by exit_with_parent.
        local_cluster = "local:" in repr(self._arguments[4])
        self._process = self._context.Process(
            target=read_corpus,
            args=(*self._arguments, str(self._folder), GROWTH * self.first, self._read, os.getpid()),
            name="bootstrap-reading", daemon=not local_cluster,
        )
        self._process.start()
        self._thread = threading.Thread(target=self._wait, args=(install,), name="bootstrap-reading-wait", daemon=True)
        self._thread.start()

    def _wait(self, install: Callable[[CandidateTable, "frozenset[int] | None"], None]) -> None:
        """Install every part the process hands on (the newest, when several wait), then the whole table."""
        assert self._process is not None
        try:
            while self._process.is_alive():
                self._install_parts(install)
                self._process.join(POLL_SECONDS)
            problem = self._folder / ERROR
            if problem.exists():
                self.error = problem.read_text(encoding="utf8").strip()
            elif self._process.exitcode != 0:
                self.error = f"reading the corpus stopped (exit code {self._process.exitcode})"
            else:
                table, _ = load_table(self._folder / WHOLE)
                install(table, None)
                self.installed, self.done = self.texts_read, True
        except Exception as error:  # noqa: BLE001 - the session goes on with the texts it has
            self.error = f"the corpus's table could not be installed ({type(error).__name__}: {error})"
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)
        if self.error:
            warnings.warn(f"{self.error}; questions come from the first {self.installed:,} texts only", Notice)

    def _install_parts(self, install: Callable[[CandidateTable, "frozenset[int] | None"], None]) -> None:
        parts = sorted(self._folder.glob("part-*.npz"), key=lambda path: int(path.stem.split("-")[1]))
        if not parts:
            return
        newest = parts[-1]
        table, _ = load_table(newest)
        hashes = frozenset(np.load(newest.with_suffix(".hashes.npy")).tolist())
        install(table, hashes)
        self.installed = len(hashes)
        for path in parts:
            path.unlink(missing_ok=True)
            path.with_suffix(".hashes.npy").unlink(missing_ok=True)

    @property
    def texts_read(self) -> int:
        return max(int(self._read.value), self.first)

    def status(self) -> dict[str, Any]:
        """What the page shows: reading or done, texts read, and the error that stopped it, if one did."""
        return {"reading": not self.done and self.error is None, "texts_read": self.texts_read,
                "first_texts": self.first, "texts_asked": self.installed, "error": self.error}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the whole table is installed or reading failed; False on timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop reading (the session is closing): the next start reads again."""
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(5)
        if self._thread is not None:
            self._thread.join(5)
        shutil.rmtree(self._folder, ignore_errors=True)


def read_corpus(pattern_files: list[str], texts: str, db: str, dataset: str, build: Callable[..., CandidateTable] | None,
                cache_dir: str | None, rebuild: bool, inputs: dict[str, Any], folder: str, first_part: int, read,
                parent: int) -> None:
    """The background process: build the whole table as a one-stage start would (texts and
    questions stored, cache entry written) and save it in ``folder`` for the session; on the way
    (one process only, not on Dask), save the table of the first ``first_part`` texts, then of
    ten times as many, and so on, each with the input hashes of its texts, once they and their
    questions are stored.

    A problem is written to ``error.txt`` in ``folder`` as one line (an input error names the
    file and line), never a traceback.
    """
    exit_with_parent(parent)
    folder_path, hashes = Path(folder), array("q")

    def part(table: CandidateTable) -> None:
        name = f"part-{table.texts}"
        # (its texts are the first ones read: the builder has looked one text beyond them)
        np.save(folder_path / f"{name}.hashes.npy", np.frombuffer(hashes, dtype=np.int64)[:table.texts])
        save_table(table, folder_path / f"{name}.npz")  # (atomic: the session sees it whole or not at all)

    def counted(records: Iterable[Record]) -> Iterator[Record]:
        for count, record in enumerate(records, 1):
            hashes.append(record.input_hash)
            if count % REPORT_EVERY == 0:
                read.value = count
            yield record
        read.value = len(hashes)

    try:
        builder = store_builder(db, dataset, cache_dir=cache_dir, build=build, rebuild=rebuild)
        growing = {"parts": part, "first_part": first_part} if build is None else {}
        with Store(db) as store:
            table = stored_table(pattern_files, texts, store, dataset, build=builder, progress=counted, **growing, **inputs)
        save_table(table, folder_path / WHOLE)
    except InputError as error:
        _report(folder_path, str(error).splitlines()[0])
    except Exception as error:  # noqa: BLE001 - reported on the page, the session goes on
        _report(folder_path, f"reading {texts} failed ({type(error).__name__}: {error})")


def _report(folder: Path, message: str) -> None:
    (folder / ERROR).write_text(message + "\n", encoding="utf8")

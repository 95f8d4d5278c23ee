"""Read texts as a stream: JSONL tasks, plain text files (one text a line), or folders of both.

Nothing here holds the corpus in memory: every reader is a generator over lines. Each text
gets an ``input_hash`` that depends on the text alone, so the same text has the same hash on
every run and machine, and decisions stored against it can be found again.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InputError, Notice, Problem
from .hashing import input_hash
from .tasks import task_problem

TEXT_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True, slots=True)
class Record:
    """One text of the corpus, with the rest of its task (``meta``, Prodigy ``spans``, ...) kept."""

    text: str
    input_hash: int
    source: str  # "file:line", for messages
    task: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.task.get("meta")
        return meta if isinstance(meta, dict) else {}


OnProblem = Callable[[Problem], None]


def _raise(problem: Problem) -> None:
    raise InputError([problem])


def read_texts(path: str | Path, on_problem: OnProblem = _raise) -> Iterator[Record]:
    """Stream the texts of a JSONL file, a ``.txt`` file or a folder of them.

    A bad line raises :class:`InputError` naming the file and line, unless ``on_problem`` is
    given: then it is told about the line and reading goes on (``bootstrap check`` uses that to
    report every bad line of a corpus at once). Nothing is dropped without a word: lines without
    a text and files of a folder that are not texts are counted in a :class:`Notice` warning,
    and a path that yields no text at all is a problem (a session would have nothing to ask).
    """
    path = Path(path)
    problems = 0

    def counted(problem: Problem) -> None:
        nonlocal problems
        problems += 1
        on_problem(problem)

    count = 0
    for record in _read_path(path, counted):
        count += 1
        yield record
    if count == 0 and problems == 0:  # bad lines say why themselves
        on_problem(Problem(str(path), None, "no texts to annotate: no line has a text"))


def _read_path(path: Path, on_problem: OnProblem) -> Iterator[Record]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        texts = [p for p in files if p.suffix.lower() in TEXT_SUFFIXES + JSONL_SUFFIXES]
        if not texts:
            raise InputError.single(path, None, "folder has no .txt or .jsonl files")
        _warn_ignored(path, [p for p in files if p not in texts])
        for file in texts:
            yield from _read_path(file, on_problem)
        return
    if not path.exists():
        raise InputError.single(path, None, "no such file or folder")
    empty: list[int] = []
    if path.suffix.lower() in JSONL_SUFFIXES:
        yield from _read_jsonl(path, on_problem, empty)
    else:
        yield from _read_lines(path, on_problem, empty)
    if empty:
        shown = ", ".join(map(str, empty[:5])) + (", …" if len(empty) > 5 else "")
        plural = "s" if len(empty) > 1 else ""
        warnings.warn(Notice(f"{path}: {len(empty):,} line{plural} without a text skipped (line{plural} {shown})"), stacklevel=2)


def _warn_ignored(folder: Path, ignored: list[Path]) -> None:
    """Say which files of a folder are not read (a .csv is not a text file here)."""
    if ignored:
        names = ", ".join(str(p.relative_to(folder)) for p in ignored[:5]) + (", …" if len(ignored) > 5 else "")
        suffixes = ", ".join(TEXT_SUFFIXES + JSONL_SUFFIXES)
        warnings.warn(Notice(f"{folder}: {len(ignored):,} file{'s' if len(ignored) > 1 else ''} ignored, not {suffixes}: {names}"), stacklevel=2)


def _decoded_lines(path: Path, on_problem: OnProblem, empty: list[int]) -> Iterator[tuple[int, str]]:
    """Non-empty lines of a file, decoded one by one so a bad byte names its own line; the
    numbers of blank lines go to ``empty``."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf8")
            except UnicodeDecodeError as error:
                on_problem(Problem(str(path), number, f"not valid UTF-8 (byte {error.start + 1} of the line)"))
                continue
            if number == 1:
                line = line.removeprefix("\ufeff")
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line
            else:
                empty.append(number)


def _read_lines(path: Path, on_problem: OnProblem, empty: list[int]) -> Iterator[Record]:
    for number, line in _decoded_lines(path, on_problem, empty):
        source = f"{path}:{number}"
        yield Record(line, input_hash(line), source, {"text": line, "meta": {"source": str(path), "line": number}})


def _read_jsonl(path: Path, on_problem: OnProblem, empty: list[int]) -> Iterator[Record]:
    for number, line in _decoded_lines(path, on_problem, empty):
        try:
            task = json.loads(line)
        except json.JSONDecodeError as error:
            on_problem(Problem(str(path), number, f"invalid JSON: {error.msg} (column {error.colno})"))
            continue
        problem = task_problem(task)
        if problem:
            on_problem(Problem(str(path), number, problem))
            continue
        text = task["text"]
        if not text.strip():
            empty.append(number)
            continue
        yield Record(text, input_hash(text), f"{path}:{number}", task)

"""Read texts as a stream: JSONL tasks, plain text files (one text a line), or folders of both.

Nothing here holds the corpus in memory: every reader is a generator over lines. Each text
gets an ``input_hash`` that depends on the text alone, so the same text has the same hash on
every run and machine, and decisions stored against it can be found again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InputError, Problem, json_type
from .hashing import input_hash

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
    report every bad line of a corpus at once).
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES + JSONL_SUFFIXES
        )
        if not files:
            raise InputError.single(path, None, "folder has no .txt or .jsonl files")
        for file in files:
            yield from read_texts(file, on_problem)
        return
    if not path.exists():
        raise InputError.single(path, None, "no such file or folder")
    if path.suffix.lower() in JSONL_SUFFIXES:
        yield from _read_jsonl(path, on_problem)
    else:
        yield from _read_lines(path, on_problem)


def _decoded_lines(path: Path, on_problem: OnProblem) -> Iterator[tuple[int, str]]:
    """Non-empty lines of a file, decoded one by one so a bad byte names its own line."""
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


def _read_lines(path: Path, on_problem: OnProblem) -> Iterator[Record]:
    for number, line in _decoded_lines(path, on_problem):
        source = f"{path}:{number}"
        yield Record(line, input_hash(line), source, {"text": line, "meta": {"source": str(path), "line": number}})


def _read_jsonl(path: Path, on_problem: OnProblem) -> Iterator[Record]:
    for number, line in _decoded_lines(path, on_problem):
        try:
            task = json.loads(line)
        except json.JSONDecodeError as error:
            on_problem(Problem(str(path), number, f"invalid JSON: {error.msg} (column {error.colno})"))
            continue
        problem = _task_problem(task)
        if problem:
            on_problem(Problem(str(path), number, problem))
            continue
        text = task["text"]
        if not text.strip():
            continue
        yield Record(text, input_hash(text), f"{path}:{number}", task)


def _task_problem(task: Any) -> str | None:
    if not isinstance(task, dict):
        return f"expected a JSON object with a \"text\" key, got {json_type(task)}"
    if "text" not in task:
        return 'missing "text"'
    if not isinstance(task["text"], str):
        return f'"text" must be a string, got {json_type(task["text"])}'
    if "meta" in task and not isinstance(task["meta"], dict):
        return f'"meta" must be an object, got {json_type(task["meta"])}'
    spans = task.get("spans")
    if spans is not None:
        if not isinstance(spans, list):
            return f'"spans" must be a list, got {json_type(spans)}'
        for i, span in enumerate(spans):
            if not isinstance(span, dict) or not all(_is_int(span.get(key)) for key in ("start", "end")):
                return f'span {i} needs integer "start" and "end"'
            if not isinstance(span.get("label"), str) or not span["label"]:
                return f'span {i} needs a "label" string'
            if not 0 <= span["start"] < span["end"] <= len(task["text"]):
                return f"span {i} ({span['start']}, {span['end']}) is outside the text of {len(task['text'])} characters"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is no offset

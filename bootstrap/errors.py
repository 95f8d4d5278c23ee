"""Errors about the user's input files.

Every problem names the file, the line and what is wrong, so that the command line can print
all of them at once and exit without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one line of one input file (``line`` is None for the whole file)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.message}"


class InputError(Exception):
    """Raised with every problem found in a file, not just the first one."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    def __reduce__(self):  # rebuilt from its problems, not its message: it crosses from worker processes
        return _rebuilt, (type(self), self.problems, self.__dict__)

    @classmethod
    def single(cls, path: str | Path, line: int | None, message: str) -> "InputError":
        return cls([Problem(str(path), line, message)])


def _rebuilt(cls: type[InputError], problems: list[Problem], state: dict) -> InputError:
    """An unpickled :class:`InputError` (or subclass, whatever its own arguments), as it was."""
    error = cls.__new__(cls)
    InputError.__init__(error, problems)
    error.__dict__.update(state)
    return error


class Notice(UserWarning):
    """Something the user should know that is not an error: lines skipped, files ignored, a slow
    rule switched off. Raised with :func:`warnings.warn`; the command line prints each as one
    ``warning`` line (``cli/_util.py``), and tests catch them with ``pytest.warns(Notice)``."""


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages about a user's JSON ("got number")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"

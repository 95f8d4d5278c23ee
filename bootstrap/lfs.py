"""Labeling functions written in Python, beside the rules of ``patterns.jsonl``.

A user's ``lfs.py`` holds two kinds of function, each marked with a decorator::

    from bootstrap.lfs import labeling_function, span_proposer

    @labeling_function(label="DISEASE")
    def before_patients(span):
        \"\"\"'X patients' names a disease more often than not.\"\"\"
        doc = span.doc
        if span.end < len(doc) and doc[span.end].lower_ == "patients":
            return True          # vote DISEASE
        return None              # abstain

    @labeling_function(label="DISEASE")
    def gene_symbol(span):
        return False if span.text.isupper() and any(c.isdigit() for c in span.text) else None

    @span_proposer(label="DISEASE")
    def syndromes(doc):
        for token in doc:
            if token.lower_ == "syndrome" and token.i > 0:
                yield doc[token.i - 1 : token.i + 1]

A **labeling function** looks at one candidate span (a spaCy ``Span``; ``span.doc`` gives the
tokens around it) and returns ``True`` (it is ``label``), ``False`` (it is not ``label``) or
``None`` (no opinion). A function declared without a label may return a label string instead
of ``True``. A **span proposer** looks at a whole ``Doc`` and yields ``Span`` objects or
``(start_char, end_char)`` pairs: spans no rule found become candidates, and the proposer votes
for every span it yields.

Why not Snorkel's own ``@labeling_function``: its functions return class *integers*, which tie
a user's file to the order of labels in the matrix; returning ``True``/``False``/a label keeps
``lfs.py`` readable and stable when a label is added.

A function that raises is counted as abstaining on that span; the session goes on, and the
error is reported once per function with a count (:class:`LFErrors`). So is a function that runs
longer than :data:`~bootstrap.limits.FUNCTION_SECONDS` on one span (a proposer: on one text);
after :data:`~bootstrap.limits.SWITCH_OFF_AFTER` timeouts it is not called any more, so one that
never returns delays start-up by seconds (``bootstrap/limits.py`` says how calls are bounded).
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from spacy.tokens import Doc, Span

from . import limits
from .errors import InputError
from .limits import TimedOut

LF_PREFIX = "lf:"


@dataclass(frozen=True)
class LabelingFunction:
    """A user function that votes on candidate spans (``kind="vote"``) or proposes spans (``"propose"``)."""

    name: str
    func: Callable[..., Any]
    label: str | None
    kind: str  # "vote" or "propose"
    source: str = ""  # "file:line" of the definition, for messages

    @property
    def id(self) -> str:
        """The column name of this function in the label matrix, distinct from every rule id."""
        return f"{LF_PREFIX}{self.name}"

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)


def labeling_function(label: str | None = None, name: str | None = None) -> Callable[[Callable], LabelingFunction]:
    """Mark ``func(span) -> True | False | None`` (or a label string) as a labeling function."""
    return lambda func: _wrap(func, label, name, "vote")


def span_proposer(label: str | None = None, name: str | None = None) -> Callable[[Callable], LabelingFunction]:
    """Mark ``func(doc) -> Iterable[Span | (start_char, end_char)]`` as a proposer of candidate spans."""
    return lambda func: _wrap(func, label, name, "propose")


def _wrap(func: Callable, label: str | None, name: str | None, kind: str) -> LabelingFunction:
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ValueError(f"label of {func.__name__} must be a non-empty string, got {label!r}")
    code = getattr(func, "__code__", None)
    source = f"{code.co_filename}:{code.co_firstlineno}" if code else ""
    return LabelingFunction(name or func.__name__, func, label, kind, source)


def load_lfs(path: str | Path) -> list[LabelingFunction]:
    """Import a user's LF file and return its labeling functions and proposers, in file order.

    A file that fails to import raises :class:`InputError` naming the file and the line where it
    failed (the syntax error's line, or the deepest frame of the traceback inside that file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError.single(path, None, "no such file")
    module_name = f"bootstrap_user_lfs_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError.single(path, None, "not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(module_name, None)
        raise InputError.single(path, error.lineno, f"SyntaxError: {error.msg}") from None
    except Exception as error:  # noqa: BLE001 - any failure of user code is reported, not raised
        sys.modules.pop(module_name, None)
        raise InputError.single(path, _line_in(path, error), f"{type(error).__name__}: {error}") from None
    found = [value for value in vars(module).values() if isinstance(value, LabelingFunction)]
    if not found:
        raise InputError.single(path, None, "defines no @labeling_function or @span_proposer")
    names = [lf.name for lf in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError.single(path, None, f"several functions named {', '.join(duplicates)}")
    return sorted(found, key=lambda lf: int(lf.source.rpartition(":")[2] or 0))


def _line_in(path: Path, error: BaseException) -> int | None:
    """The line of ``path`` where ``error`` was raised, from the deepest frame inside that file."""
    line = None
    target = str(path.resolve())
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename and str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    return line


@dataclass
class LFErrors:
    """Errors and timeouts of user functions and rules: counted, the first of each kept for the message.

    Keyed by name (a function's name or a rule's id). One that timed out
    :data:`~bootstrap.limits.SWITCH_OFF_AFTER` times is :meth:`switched_off`: not run any more.
    """

    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)
    what: dict[str, str] = field(default_factory=dict)  # "labeling function 'x'", "rule 'x' (patterns.jsonl:3)"
    timeouts: dict[str, int] = field(default_factory=dict)

    def record(self, lf: LabelingFunction, where: str, error: BaseException) -> None:
        self.record_named(lf.name, f"labeling function {lf.name!r}", where, error)

    def record_named(self, name: str, what: str, where: str, error: BaseException) -> None:
        if name not in self.counts:
            self.first[name] = f"{type(error).__name__}: {error} (on {where})"
            self.what[name] = what
        self.counts[name] = self.counts.get(name, 0) + 1
        if isinstance(error, TimedOut):
            self.timeouts[name] = self.timeouts.get(name, 0) + 1

    def switched_off(self, name: str) -> bool:
        return self.timeouts.get(name, 0) >= limits.SWITCH_OFF_AFTER

    def merge(self, other: "LFErrors") -> None:
        """Add another part's counts (a table built in parts, ``concat_tables``)."""
        for name, count in other.counts.items():
            self.first.setdefault(name, other.first[name])
            self.what.setdefault(name, other.what.get(name, f"labeling function {name!r}"))
            self.counts[name] = self.counts.get(name, 0) + count
            if other.timeouts.get(name):
                self.timeouts[name] = self.timeouts.get(name, 0) + other.timeouts[name]

    def __bool__(self) -> bool:
        return bool(self.counts)

    def messages(self) -> list[str]:
        return [self._message(name, count) for name, count in self.counts.items()]

    def _message(self, name: str, count: int) -> str:
        what = self.what.get(name, f"labeling function {name!r}")
        outcome = "no match" if what.startswith("rule ") else "abstaining"
        message = f"{what} failed {count:,} time{'s' if count > 1 else ''}, counted as {outcome}; first: {self.first[name]}"
        if self.switched_off(name):
            message += f"; switched off after {self.timeouts[name]} timeouts (not run on the texts after)"
        return message


def vote_of(lf: LabelingFunction, span: Span, labels: Iterable[str], errors: LFErrors, where: str) -> tuple[str, bool] | None:
    """Call a voting function on a span: ``(label, True)`` for, ``(label, False)`` against, None to abstain."""
    if errors.switched_off(lf.name):
        return None
    try:
        value = limits.call_with_deadline(limits.FUNCTION_SECONDS, lf.func, span)
    except TimedOut:
        errors.record(lf, where, TimedOut(f"ran longer than {limits.FUNCTION_SECONDS:g} s on one span"))
        return None
    except Exception as error:  # noqa: BLE001 - a user function's bug must not end the session
        errors.record(lf, where, error)
        return None
    if value is None:
        return None
    if isinstance(value, bool):
        label = lf.label or span.label_
        if not label:
            errors.record(lf, where, ValueError("returned a bool but the function has no label"))
            return None
        return label, value
    if isinstance(value, str) and value in labels:
        return value, True
    errors.record(lf, where, ValueError(f"returned {value!r}; expected True, False, None or one of {sorted(labels)}"))
    return None


def proposals_of(lf: LabelingFunction, doc: Doc, errors: LFErrors, where: str) -> Iterator[tuple[int, int, str]]:
    """Call a proposer on a doc and yield ``(start_char, end_char, label)`` for each span it proposes."""
    if errors.switched_off(lf.name):
        return
    try:  # list(): a generator's work happens while it is consumed, so inside the deadline
        proposed = limits.call_with_deadline(limits.FUNCTION_SECONDS, lambda: list(lf.func(doc)))
    except TimedOut:
        errors.record(lf, where, TimedOut(f"ran longer than {limits.FUNCTION_SECONDS:g} s on one text"))
        return
    except Exception as error:  # noqa: BLE001
        errors.record(lf, where, error)
        return
    for item in proposed:
        if isinstance(item, Span):
            label = lf.label or item.label_
            start, end = item.start_char, item.end_char
        elif isinstance(item, tuple) and len(item) in (2, 3) and all(isinstance(x, int) for x in item[:2]):
            start, end = item[0], item[1]
            label = item[2] if len(item) == 3 else lf.label
        else:
            errors.record(lf, where, ValueError(f"yielded {item!r}; expected a Span or (start_char, end_char)"))
            continue
        if not label:
            errors.record(lf, where, ValueError("proposed a span without a label"))
            continue
        yield start, end, label

"""Load and validate pattern files: spaCy's EntityRuler format plus regexes and negative rules.

One JSON object a line::

    {"label": "DISEASE", "pattern": "heart failure"}                         phrase
    {"label": "DISEASE", "pattern": [{"LOWER": "parkinson"}, {"LOWER": "disease"}]}   tokens
    {"label": "GENE", "regex": "\\b[A-Z]{2,5}\\d+\\b"}                          regex
    {"label": "DISEASE", "pattern": "disease", "negative": true}             "not DISEASE"

Optional keys: ``"id"`` and ``"comment"``. Lines that start with ``#`` or ``//`` are comments.

A *rule* is what votes later (a labeling function). Lines that share an ``"id"`` form one rule,
as in the EntityRuler, where an id groups the patterns of one entity; they must then share the
label and the polarity. A line without an id is a rule of its own, whose id is derived from
its content, so it stays the same when lines are reordered or files are combined.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import regex
from spacy.matcher import Matcher
from spacy.schemas import validate_token_pattern
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .errors import InputError, Problem, json_type

PatternKind = Literal["phrase", "tokens", "regex"]
ALLOWED_KEYS = {"label", "pattern", "regex", "negative", "id", "comment"}


@dataclass(frozen=True, slots=True)
class Pattern:
    """One line of a pattern file."""

    kind: PatternKind
    value: str | list[dict[str, Any]]
    source: str  # "file:line"

    def describe(self) -> str:
        """A short human-readable form, for tables and the annotation page."""
        if self.kind == "phrase":
            return json.dumps(self.value, ensure_ascii=False)
        if self.kind == "regex":
            return f"/{self.value}/"
        return " ".join(_describe_token(token) for token in self.value)


@dataclass(frozen=True, slots=True)
class Rule:
    """A labeling function made of patterns: it votes ``label`` (or, if negative, not ``label``)."""

    id: str
    label: str
    negative: bool
    patterns: tuple[Pattern, ...]

    def describe(self) -> str:
        shown = " | ".join(pattern.describe() for pattern in self.patterns[:3])
        if len(self.patterns) > 3:
            shown += f" | … ({len(self.patterns)} patterns)"
        return shown


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    paths: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {rule.id: rule for rule in self.rules})

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def __getitem__(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]  # type: ignore[attr-defined]

    @property
    def labels(self) -> list[str]:
        """Labels in order of first appearance."""
        return list(dict.fromkeys(rule.label for rule in self.rules))


def load_rules(paths: str | Path | Sequence[str | Path], vocab: Vocab | None = None) -> RuleSet:
    """Read one or more pattern files; raise :class:`InputError` with every problem of every file."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    vocab = vocab if vocab is not None else Vocab()
    problems: list[Problem] = []
    lines: list[tuple[str | None, str, bool, Pattern]] = []
    for path in paths:
        lines.extend(_read_pattern_file(Path(path), vocab, problems))
    rules = _group_into_rules(lines, problems)
    if problems:
        order = {str(Path(path)): i for i, path in enumerate(paths)}  # grouping finds its problems last
        raise InputError(sorted(problems, key=lambda p: (order.get(p.path, len(order)), p.line or 0)))
    return RuleSet(tuple(rules), tuple(str(p) for p in paths))


def _read_pattern_file(path: Path, vocab: Vocab, problems: list[Problem]) -> Iterable[tuple[str | None, str, bool, Pattern]]:
    if not path.is_file():
        problems.append(Problem(str(path), None, "no such file" if not path.exists() else "not a file"))
        return []
    found = []
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            report = lambda message: problems.append(Problem(str(path), number, message))  # noqa: E731
            try:
                line = raw.decode("utf8").removeprefix("\ufeff").strip()
            except UnicodeDecodeError:
                report("not valid UTF-8")
                continue
            if not line or line.startswith(("#", "//")):
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                report(f"invalid JSON: {error.msg} (column {error.colno})")
                continue
            parsed = _parse_entry(entry, f"{path}:{number}", vocab, report)
            if parsed is not None:
                found.append(parsed)
    if not found and not any(p.path == str(path) for p in problems):
        problems.append(Problem(str(path), None, "file has no patterns"))
    return found


def _parse_entry(entry: Any, source: str, vocab: Vocab, report) -> tuple[str | None, str, bool, Pattern] | None:
    if not isinstance(entry, dict):
        report(f"expected a JSON object, got {json_type(entry)}")
        return None
    ok = True
    unknown = sorted(set(entry) - ALLOWED_KEYS)
    if unknown:
        report(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(ALLOWED_KEYS))})")
        ok = False
    label = entry.get("label")
    if label is None:
        report('missing "label"')
        ok = False
    elif not isinstance(label, str) or not label.strip() or label != label.strip():
        report(f'"label" must be a non-empty string without surrounding spaces, got {json.dumps(label)}')
        ok = False
    negative = entry.get("negative", False)
    if not isinstance(negative, bool):
        report(f'"negative" must be true or false, got {json.dumps(negative)}')
        ok = False
    rule_id = entry.get("id")
    if rule_id is not None and (not isinstance(rule_id, str) or not rule_id.strip()):
        report(f'"id" must be a non-empty string, got {json.dumps(rule_id)}')
        ok = False
    pattern = _parse_pattern(entry, source, vocab, report)
    if not ok or pattern is None:
        return None
    return rule_id, label, negative, pattern


def _parse_pattern(entry: dict, source: str, vocab: Vocab, report) -> Pattern | None:
    if "pattern" in entry and "regex" in entry:
        report('give either "pattern" or "regex", not both')
        return None
    if "regex" in entry:
        value = entry["regex"]
        if not isinstance(value, str) or not value:
            report(f'"regex" must be a non-empty string, got {json.dumps(value)}')
            return None
        try:
            regex.compile(value)
        except regex.error as error:
            report(f"invalid regex {json.dumps(value)}: {error}")
            return None
        return Pattern("regex", value, source)
    if "pattern" not in entry:
        report('missing "pattern" (or "regex")')
        return None
    value = entry["pattern"]
    if isinstance(value, str):
        if not value.strip():
            report('"pattern" is an empty string')
            return None
        return Pattern("phrase", value, source)
    if isinstance(value, list):
        message = _token_pattern_problem(value, vocab)
        if message:
            report(message)
            return None
        return Pattern("tokens", value, source)
    report(f'"pattern" must be a string (phrase) or a list of token objects, got {json_type(value)}')
    return None


def _token_pattern_problem(value: list, vocab: Vocab) -> str | None:
    """Validate with spaCy's own schema, then by compiling, which also catches bad REGEX values."""
    if not value:
        return '"pattern" is an empty list'
    errors = validate_token_pattern(value)
    if errors:
        return "invalid token pattern: " + "; ".join(_strip_schema_prefix(e) for e in errors)
    matcher = Matcher(vocab)
    try:
        matcher.add("validate", [value])
    except (ValueError, re.error, regex.error) as error:
        return f"invalid token pattern: {str(error).strip()}"
    # Some problems only show when the Matcher runs, and would then stop every text: attributes
    # only a trained component sets (POS, LEMMA, DEP: E155) and unregistered ``_`` ones (E046).
    try:
        matcher(Doc(vocab, words=["token"]))
    except (ValueError, AttributeError) as error:
        return f"invalid token pattern: {_runtime_problem(str(error))}"
    return None


def _runtime_problem(message: str) -> str:
    if match := re.search(r"needs to include (.+?) in order to use .* attribute (\w+)", message):
        component, attr = match.groups()
        return f"{attr} needs {component} in the pipeline, and bootstrap tokenizes with a blank one"
    if match := re.search(r"unregistered extension attribute '(\w+)'", message):
        return f"no custom attribute _.{match.group(1)} is registered"
    return message


def _strip_schema_prefix(message: str) -> str:
    # "[pattern -> 0 -> LOWR] Extra inputs..." reads better as "token 0, LOWR: Extra inputs..."
    match = re.match(r"\[pattern -> (\d+)(?: -> (.*?))?\] (.*)", message)
    if not match:
        return message
    token, where, what = match.groups()
    return f"token {token}" + (f", {where}" if where else "") + f": {what}"


def _group_into_rules(lines: list[tuple[str | None, str, bool, Pattern]], problems: list[Problem]) -> list[Rule]:
    grouped: dict[str, tuple[str, bool, list[Pattern]]] = {}
    for rule_id, label, negative, pattern in lines:
        key = rule_id if rule_id is not None else derive_rule_id(label, negative, pattern)
        if key not in grouped:
            grouped[key] = (label, negative, [pattern])
            continue
        first_label, first_negative, patterns = grouped[key]
        first = patterns[0].source
        path, _, line = pattern.source.rpartition(":")
        if rule_id is None:
            problems.append(Problem(path, int(line), f"same pattern as {first}"))
        elif (label, negative) != (first_label, first_negative):
            problems.append(Problem(
                path, int(line),
                f'id {json.dumps(rule_id)} is used at {first} for {polarity(first_label, first_negative)}, '
                f"here for {polarity(label, negative)}: lines that share an id must share label and \"negative\"",
            ))
        else:
            patterns.append(pattern)
    return [Rule(key, label, negative, tuple(patterns)) for key, (label, negative, patterns) in grouped.items()]


def polarity(label: str, negative: bool) -> str:
    return f"not {label}" if negative else label


def derive_rule_id(label: str, negative: bool, pattern: Pattern) -> str:
    """A readable id that depends only on the rule's content: ``DISEASE:heart-failure-1a2b3c``."""
    content = json.dumps([label, negative, pattern.kind, pattern.value], sort_keys=True, ensure_ascii=False)
    digest = hashlib.blake2b(content.encode("utf8"), digest_size=3).hexdigest()
    # The slug comes from the key-sorted content too: {"LOWER", "IS_ALPHA"} in either order is one rule.
    canonical = Pattern(pattern.kind, json.loads(content)[3], pattern.source)
    slug = re.sub(r"[^\w]+", "-", canonical.describe().lower()).strip("-")[:32].strip("-") or pattern.kind
    return f"{'not-' if negative else ''}{label}:{slug}-{digest}"


def _describe_token(token: dict[str, Any]) -> str:
    parts = []
    for attr, value in token.items():
        if attr == "OP":
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(shown if attr in ("LOWER", "ORTH", "TEXT") and isinstance(value, str) else f"{attr}={shown}")
    text = "&".join(parts) if parts else "*"
    op = token.get("OP")
    return f"[{text}]{op}" if op else (text if len(parts) == 1 else f"[{text}]")

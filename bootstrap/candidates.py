"""Candidate spans: the questions the loop may ask, each with every rule vote on it.

A candidate is ``(input_hash, start, end, label)``: one span of one text and one label, which
is exactly one binary question ("is this span a DISEASE?"). A positive rule of that label that
matched the span votes *for* it, a negative rule of that label that matched it votes *against*.
Only positive votes propose a candidate; a negative rule on its own asks nothing.

Overlapping and nested candidates are all kept, and so are candidates of different labels on
the same span: those are the conflicts the aggregate and the ranking use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc

from .corpus import Record
from .errors import InputError
from .matching import Failure, Match, RuleMatcher
from .rules import RuleSet


@dataclass(frozen=True, slots=True)
class Candidate:
    input_hash: int
    start: int
    end: int
    label: str
    token_start: int
    token_end: int
    text: str  # the span's surface string
    votes_for: tuple[str, ...]
    votes_against: tuple[str, ...]

    @property
    def key(self) -> tuple[int, int, int, str]:
        return (self.input_hash, self.start, self.end, self.label)


@dataclass(frozen=True, slots=True)
class DocCandidates:
    """What one text yields: its Doc (for labeling functions), every rule match and the candidates,
    and the rules that ran out of time on it (counted in the table's errors)."""

    record: Record
    doc: Doc
    matches: list[Match]
    candidates: list[Candidate]
    failures: tuple[Failure, ...] = ()


def candidates_from_matches(record: Record, matches: list[Match], rules: RuleSet) -> list[Candidate]:
    """Group matches by (span, label) into candidates, in text order."""
    votes: dict[tuple[int, int, str], tuple[list[str], list[str], Match]] = {}
    for match in matches:
        rule = rules[match.rule_id]
        key = (match.start, match.end, rule.label)
        if key not in votes:
            votes[key] = ([], [], match)
        votes[key][1 if rule.negative else 0].append(rule.id)
    text = record.text
    return [
        Candidate(
            record.input_hash, start, end, label, match.token_start, match.token_end, text[start:end],
            tuple(sorted(pro)), tuple(sorted(con)),
        )
        for (start, end, label), (pro, con, match) in votes.items()
        if pro
    ]


def generate_candidates(
    nlp: Language, matcher: RuleMatcher, records: Iterable[Record], batch_size: int = 256
) -> Iterator[DocCandidates]:
    """Tokenize the stream with ``nlp.pipe`` and yield every text's matches and candidates.

    A text longer than the tokenizer's limit is an error naming its line (see :func:`max_length`).
    """
    rules = matcher.rules
    limit = max_length(nlp)
    nlp.max_length = max(nlp.max_length, limit)  # raised if asked; a lower limit is checked here
    checked = (_within_limit(record, limit) for record in records)
    for doc, record in nlp.pipe(((record.text, record) for record in checked), as_tuples=True, batch_size=batch_size):
        matches, failures = matcher.match(doc, record.source)
        yield DocCandidates(record, doc, matches, candidates_from_matches(record, matches, rules), tuple(failures))


MAX_LENGTH_VARIABLE = "BOOTSTRAP_MAX_LENGTH"


def max_length(nlp: Language) -> int:
    """The longest text, in characters, bootstrap tokenizes: spaCy's ``nlp.max_length`` (1,000,000)
    unless ``BOOTSTRAP_MAX_LENGTH`` says otherwise.

    Long texts are refused, not split: a text is one unit everywhere (its hash, its answers, the
    page, training), and a split would make two texts of it. spaCy's limit guards the memory of
    trained components; the blank tokenizer here needs about 100 MB per million characters, so the
    limit can be raised for a corpus of long documents.
    """
    value = os.environ.get(MAX_LENGTH_VARIABLE)
    if value is None:
        return nlp.max_length
    try:
        limit = int(value.replace("_", "").replace(",", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise InputError.single(MAX_LENGTH_VARIABLE, None, f"must be a positive number of characters, got {value!r}")
    return limit


def _within_limit(record: Record, limit: int) -> Record:
    if len(record.text) > limit:
        path, _, line = record.source.rpartition(":")
        raise InputError.single(path, int(line) if line.isdigit() else None, (
            f"text of {len(record.text):,} characters exceeds the limit of {limit:,}: split it into several "
            f"texts, or raise the limit with {MAX_LENGTH_VARIABLE}={len(record.text)}"))
    return record

"""Candidate spans: the questions the loop may ask, each with every rule vote on it.

A candidate is ``(input_hash, start, end, label)``: one span of one text and one label, which
is exactly one binary question ("is this span a DISEASE?"). A positive rule of that label that
matched the span votes *for* it, a negative rule of that label that matched it votes *against*.
Only positive votes propose a candidate; a negative rule on its own asks nothing.

Overlapping and nested candidates are all kept, and so are candidates of different labels on
the same span: those are the conflicts the aggregate and the ranking use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc

from .corpus import Record
from .matching import Match, RuleMatcher
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
    """What one text yields: its Doc (for labeling functions), every rule match and the candidates."""

    record: Record
    doc: Doc
    matches: list[Match]
    candidates: list[Candidate]


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
    """Tokenize the stream with ``nlp.pipe`` and yield every text's matches and candidates."""
    rules = matcher.rules
    for doc, record in nlp.pipe(((record.text, record) for record in records), as_tuples=True, batch_size=batch_size):
        matches = matcher(doc)
        yield DocCandidates(record, doc, matches, candidates_from_matches(record, matches, rules))

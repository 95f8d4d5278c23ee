"""Find where rules match a Doc, with spaCy's Matcher and PhraseMatcher and the ``regex`` module.

Every match of every rule is kept, overlapping and nested ones too: where rules overlap is
where they disagree, and disagreement is what the ranking feeds on.

Two choices worth knowing:

* **Regex offsets are snapped outwards to token boundaries** (``Doc.char_span(...,
  alignment_mode="expand")``). NER labels whole tokens, so a question about part of a token
  could never be learned; expanding keeps the match (the annotator sees the whole tokens and
  can reject them), where ``"contract"`` or ``"strict"`` would silently drop it.
* **Whitespace tokens are trimmed from both ends of every match**: spaCy refuses entities that
  start or end on whitespace (E024), so such a span could never become training data.

Token patterns are added with ``greedy="LONGEST"``, as a user of ``{"OP": "+"}`` expects one
vote for the longest stretch, not one for every sub-span of it.
"""

from __future__ import annotations

from typing import NamedTuple

import regex
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from .rules import RuleSet


class Match(NamedTuple):
    rule_id: str
    start: int  # character offsets into the text
    end: int
    token_start: int
    token_end: int


class RuleMatcher:
    """Applies a :class:`RuleSet` to Docs. ``phrase_attr`` is the EntityRuler's ``phrase_matcher_attr``."""

    def __init__(self, nlp: Language, rules: RuleSet, phrase_attr: str = "ORTH"):
        self.rules = rules
        self.token_matcher = Matcher(nlp.vocab)
        self.phrase_matcher = PhraseMatcher(nlp.vocab, attr=phrase_attr)
        self.regexes: list[tuple[str, regex.Pattern]] = []
        strings = nlp.vocab.strings
        self._rule_of_key: dict[int, str] = {}
        for rule in rules:
            self._rule_of_key[strings.add(rule.id)] = rule.id
            token_patterns = [p.value for p in rule.patterns if p.kind == "tokens"]
            phrases = [p.value for p in rule.patterns if p.kind == "phrase"]
            if token_patterns:
                self.token_matcher.add(rule.id, token_patterns, greedy="LONGEST")
            if phrases:
                self.phrase_matcher.add(rule.id, list(nlp.tokenizer.pipe(phrases)))
            self.regexes.extend((rule.id, regex.compile(p.value)) for p in rule.patterns if p.kind == "regex")

    def __call__(self, doc: Doc) -> list[Match]:
        """Every (rule, span) match in ``doc``, sorted by position, each (rule, span) once."""
        found: set[tuple[str, int, int]] = set()
        rule_of_key = self._rule_of_key
        spans = []
        for matcher in (self.token_matcher, self.phrase_matcher):
            if len(matcher):  # an empty matcher warns (W036) on every Doc
                spans += [(rule_of_key[key], start, end) for key, start, end in matcher(doc)]
        text = doc.text if self.regexes else ""  # Doc.text joins every token: build it once
        for rule_id, pattern in self.regexes:
            for hit in pattern.finditer(text):
                if hit.end() > hit.start():
                    span = doc.char_span(hit.start(), hit.end(), alignment_mode="expand")
                    if span is not None:
                        spans.append((rule_id, span.start, span.end))
        for rule_id, start, end in spans:
            start, end = trim_whitespace(doc, start, end)
            if start < end:
                found.add((rule_id, start, end))
        matches = []
        for rule_id, start, end in found:
            last = doc[end - 1]
            matches.append(Match(rule_id, doc[start].idx, last.idx + len(last), start, end))
        matches.sort(key=lambda m: (m.start, -m.end, m.rule_id))
        return matches


def trim_whitespace(doc: Doc, start: int, end: int) -> tuple[int, int]:
    """Token offsets without whitespace tokens at either end (spaCy refuses such entities: E024)."""
    while start < end and doc[start].is_space:
        start += 1
    while end > start and doc[end - 1].is_space:
        end -= 1
    return start, end


def token_span(doc: Doc, start_char: int, end_char: int) -> tuple[int, int] | None:
    """Token offsets of a character span, snapped outwards and trimmed as rule matches are; None if empty."""
    span = doc.char_span(start_char, end_char, alignment_mode="expand") if end_char > start_char else None
    if span is None:
        return None
    start, end = trim_whitespace(doc, span.start, span.end)
    return (start, end) if start < end else None

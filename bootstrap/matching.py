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

**Every regex has a time limit** (:data:`~bootstrap.limits.REGEX_SECONDS`): a rule is user input,
and ``(a+)+$`` takes minutes on a long text. Text-level regexes run with the ``regex`` module's
``timeout=``; token-level ``REGEX`` predicates, which spaCy would run with ``re`` (no timeout),
are compiled here with ``regex``. On ``ORTH``/``TEXT``/``LOWER`` (nearly all of them) the
predicate becomes a lexeme flag (``Vocab.add_flag``): spaCy computes it once per distinct word,
when the word is first seen, and the Matcher reads it as fast as ``IS_ALPHA``. (A custom token
attribute, the first way we bounded them, is called for every token of every text: it made
matching 2.3 times slower.) spaCy leaves 45 flag bits free and never gives one back, so matchers
built on one vocabulary share one flag per expression (:class:`WordFlag`) rather than taking
new bits each. Other attributes, or a vocabulary out of free flag bits, get such a custom
attribute. A rule that times out on a text has no match there (reported as a
:class:`Failure`, counted as a labeling function's error is); after
:data:`~bootstrap.limits.SWITCH_OFF_AFTER` timeouts it is not run any more.
"""

from __future__ import annotations

import functools
import itertools
import time
from typing import Any, Callable, NamedTuple

import regex
from spacy.attrs import IDS
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Token

from . import limits
from .limits import TimedOut
from .rules import Rule, RuleSet

_extension_ids = itertools.count()
FLAG_IDS = [IDS[f"FLAG{n}"] for n in range(19, 64) if f"FLAG{n}" in IDS]  # the bits spaCy leaves to users
IDS_NAMES = {value: name for name, value in IDS.items()}
FLAG_ATTRS = {"ORTH": False, "TEXT": False, "LOWER": True}  # attribute -> lower-cased first


class Match(NamedTuple):
    rule_id: str
    start: int  # character offsets into the text
    end: int
    token_start: int
    token_end: int


class Failure(NamedTuple):
    """A rule that timed out on one text: ``LFErrors.record_named(*failure)`` counts it."""

    name: str  # the rule's id
    what: str  # "rule 'id' (patterns.jsonl:3)"
    where: str  # the text's "file:line"
    error: BaseException


class WordFlag:
    """A lexeme flag: does a word (lower-cased first with ``lower``) match ``expression`` within
    the time limit? One per vocabulary and expression (:meth:`RuleMatcher._regex_flag`).

    The words it timed out on are kept: a text holding one of them is one the rules using the
    flag did not finish on. Once a rule using it is switched off, ``stopped`` is set and it
    searches no more (each new word could cost the whole time limit).
    """

    def __init__(self, expression: str, lower: bool):
        self.key = (expression, lower)
        self.compiled = regex.compile(expression)
        self.lower = lower
        self.seconds = limits.REGEX_SECONDS
        self.timed_out: set[str] = set()
        self.stopped = False

    def __call__(self, word: str) -> bool:
        if self.stopped:
            return False
        try:
            return self.compiled.search(word.lower() if self.lower else word, timeout=self.seconds) is not None
        except TimeoutError:
            self.timed_out.add(word)
            return False

    def timeout_in(self, words: set[str]) -> TimedOut | None:
        """The timeout on one of ``words`` (a text's), if the flag had one."""
        hit = next(iter(self.timed_out & words), None) if self.timed_out else None
        if hit is None:
            return None
        return TimedOut(f"token REGEX /{self.key[0]}/ ran longer than {self.seconds:g} s on the token {hit[:40]!r}")


class RuleMatcher:
    """Applies a :class:`RuleSet` to Docs. ``phrase_attr`` is the EntityRuler's ``phrase_matcher_attr``."""

    def __init__(self, nlp: Language, rules: RuleSet, phrase_attr: str = "ORTH"):
        self.rules = rules
        self.token_matcher = Matcher(nlp.vocab, validate=False)  # rules.py validated the patterns, with file:line; FLAG<n> keys are ours
        self.phrase_matcher = PhraseMatcher(nlp.vocab, attr=phrase_attr)
        self.regexes: list[tuple[str, regex.Pattern]] = []
        self.vocab = nlp.vocab
        self._timeouts: dict[str, int] = {}  # rule id -> texts it timed out on
        self._failed: dict[str, TimedOut] = {}  # rules that timed out on the current text
        self._flags: dict[str, list[WordFlag]] = {}  # rule id -> the lexeme flags of its token REGEX
        strings = nlp.vocab.strings
        self._rule_of_key: dict[int, str] = {}
        for rule in rules:
            self._rule_of_key[strings.add(rule.id)] = rule.id
            token_patterns = [p.value for p in rule.patterns if p.kind == "tokens"]
            phrases = [p.value for p in rule.patterns if p.kind == "phrase"]
            if token_patterns:
                bounded = [self._bounded(pattern, rule) for pattern in token_patterns]
                self.token_matcher.add(rule.id, bounded, greedy="LONGEST")
            if phrases:
                self.phrase_matcher.add(rule.id, list(nlp.tokenizer.pipe(phrases)))
            self.regexes.extend((rule.id, regex.compile(p.value)) for p in rule.patterns if p.kind == "regex")
        self._what = {rule.id: f"rule {rule.id!r} ({rule.patterns[0].source})" for rule in rules}

    def __call__(self, doc: Doc) -> list[Match]:
        """Every (rule, span) match in ``doc``, sorted by position, each (rule, span) once."""
        return self.match(doc)[0]

    def match(self, doc: Doc, where: str = "") -> tuple[list[Match], list[Failure]]:
        """The matches in ``doc`` and the rules that timed out on it (``where`` names the text)."""
        self._failed = {}
        flagged = [(rule_id, flag) for rule_id, flags in self._flags.items() for flag in flags if flag.timed_out]
        if flagged:  # flags are computed when a word is first read: find the texts with it
            words = {token.text for token in doc}
            for rule_id, flag in flagged:
                error = flag.timeout_in(words)
                if error is not None:
                    self._failed.setdefault(rule_id, error)
        found: set[tuple[str, int, int]] = set()
        rule_of_key = self._rule_of_key
        spans = []
        for matcher in (self.token_matcher, self.phrase_matcher):
            if len(matcher):  # an empty matcher warns (W036) on every Doc
                spans += [(rule_of_key[key], start, end) for key, start, end in matcher(doc)]
        text = doc.text if self.regexes else ""  # Doc.text joins every token: build it once
        for rule_id, pattern in self.regexes:
            if not self._switched_off(rule_id):
                spans += [(rule_id, start, end) for start, end in self._regex_spans(rule_id, pattern, doc, text)]
        failed, self._failed = self._failed, {}
        for rule_id in failed:
            self._timeouts[rule_id] = self._timeouts.get(rule_id, 0) + 1
            if self._switched_off(rule_id):
                for flag in self._flags.get(rule_id, ()):
                    flag.stopped = True
        failures = [Failure(rule_id, self._what[rule_id], where or "a text", error) for rule_id, error in failed.items()]
        for rule_id, start, end in spans:
            if rule_id in failed or self._switched_off(rule_id):  # no match of a rule that did not finish
                continue
            start, end = trim_whitespace(doc, start, end)
            if start < end:
                found.add((rule_id, start, end))
        matches = []
        for rule_id, start, end in found:
            last = doc[end - 1]
            matches.append(Match(rule_id, doc[start].idx, last.idx + len(last), start, end))
        matches.sort(key=lambda m: (m.start, -m.end, m.rule_id))
        return matches, failures

    def _switched_off(self, rule_id: str) -> bool:
        return self._timeouts.get(rule_id, 0) >= limits.SWITCH_OFF_AFTER

    def _regex_spans(self, rule_id: str, pattern: regex.Pattern, doc: Doc, text: str) -> list[tuple[int, int]]:
        """Token spans of a text-level regex's matches, within the rule's time limit on this text."""
        seconds = limits.REGEX_SECONDS
        started = time.monotonic()
        spans = []
        try:
            for hit in pattern.finditer(text, timeout=seconds):  # the timeout bounds each search step
                if time.monotonic() - started > seconds:  # ... and this the text as a whole
                    raise TimeoutError
                if hit.end() > hit.start():
                    span = doc.char_span(hit.start(), hit.end(), alignment_mode="expand")
                    if span is not None:
                        spans.append((span.start, span.end))
        except TimeoutError:
            self._failed.setdefault(rule_id, TimedOut(f"regex /{pattern.pattern}/ ran longer than {seconds:g} s on a text of {len(text):,} characters"))
            return []
        return spans

    def _bounded(self, pattern: list[dict[str, Any]], rule: Rule) -> list[dict[str, Any]]:
        """A token pattern whose ``REGEX`` predicates run with a time limit (see the module docstring)."""
        return [self._bounded_token(token, rule) for token in pattern]

    def _bounded_token(self, token: dict[str, Any], rule: Rule) -> dict[str, Any]:
        bounded: dict[str, Any] = {}
        extensions: dict[str, Any] = {}
        for attr, value in token.items():
            read = _attr_reader(attr)
            if isinstance(value, dict) and "REGEX" in value and read is not None:
                flag = self._regex_flag(rule, value["REGEX"], FLAG_ATTRS[attr]) if attr in FLAG_ATTRS else None
                if flag is not None:
                    bounded[flag] = True
                else:
                    extensions[self._regex_extension(rule, value["REGEX"], read)] = True
                value = {op: v for op, v in value.items() if op != "REGEX"}
                if not value:
                    continue
            bounded[attr] = value
        if extensions:
            bounded["_"] = {**bounded.get("_", {}), **extensions}
        return bounded

    def _regex_flag(self, rule: Rule, expression: str, lower: bool) -> str | None:
        """The lexeme flag for ``expression`` (:class:`WordFlag`): the vocabulary's own if an
        earlier matcher registered it, else a new one. Its name for the Matcher (``FLAG<n>``),
        or None when no flag bit is free."""
        getters = self.vocab.lex_attr_getters
        bit = next((bit for bit in FLAG_IDS if isinstance(getters.get(bit), WordFlag) and getters[bit].key == (expression, lower)), None)
        if bit is None:
            bit = next((bit for bit in FLAG_IDS if bit not in getters), None)
            if bit is None:
                return None
            self.vocab.add_flag(WordFlag(expression, lower), flag_id=bit)
        self._flags.setdefault(rule.id, []).append(getters[bit])
        return IDS_NAMES[bit]

    def _regex_extension(self, rule: Rule, expression: str, read: Callable[[Token], str]) -> str:
        """Register ``Token._.<name>``: does the token's attribute match ``expression`` (in time)?"""
        compiled = regex.compile(expression)
        seconds = limits.REGEX_SECONDS

        @functools.lru_cache(maxsize=1 << 16)  # token strings repeat: each is searched once
        def matches(value: str) -> bool:
            return compiled.search(value, timeout=seconds) is not None

        def getter(token: Token) -> bool:
            if rule.id in self._failed or self._switched_off(rule.id):
                return False
            value = read(token)
            try:
                return matches(value)
            except TimeoutError:
                self._failed[rule.id] = TimedOut(f"token REGEX /{expression}/ ran longer than {seconds:g} s on the token {value[:40]!r}")
                return False

        name = f"bootstrap_regex_{next(_extension_ids)}"
        Token.set_extension(name, getter=getter)
        return name


def _attr_reader(attr: str) -> Callable[[Token], str] | None:
    """How spaCy reads a token attribute for a ``REGEX`` predicate (the attribute's string, or an
    extension's value); None for one we leave to spaCy."""
    if attr == "_":
        return None  # {"_": {"ext": {"REGEX": ...}}}: left to spaCy
    name = "orth_" if attr in ("TEXT", "ORTH") else f"{attr.lower()}_"
    if not hasattr(Token, name):
        return None
    return lambda token: getattr(token, name)


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

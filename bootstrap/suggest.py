"""Rules learned back from decisions: pattern lines the user can review and add to ``patterns.jsonl``.

Two kinds of decision say a rule is missing:

* an **accepted span no positive rule of its label matches** (the model proposed it, it was
  imported, or the rules changed since): it becomes a proposed *phrase* pattern, and groups of
  such spans a proposed *token* pattern;
* a **rejected span a positive rule proposed and no negative rule of its label vetoes**: it
  becomes a proposed *negative* phrase pattern, and groups of them a negative token pattern.

A group shares its token count and one trait of its last token: the same lemma (lower case
without a plural ending — blank pipelines have no lemmatizer, and ``LEMMA`` patterns would not
run in them), the same suffix (``-itis``) or, for every token, the same shape (``XXX``). The
other positions keep what all members share (``LOWER``, ``IS_TITLE``, ...) or match any token.

Every proposal is run, as the rules are (:class:`~bootstrap.matching.RuleMatcher`), over the texts
that have decisions, and comes with how many accepted and rejected decisions it would have
matched: that is what lets the user tell a good generalisation from a greedy one. Only
proposals that fix at least ``min_count`` decisions and match more decisions for them than
against them are kept.

The result is plain dicts (the CLI writes their ``"pattern"`` as JSONL; the annotation page can
show them as a panel): the line is a valid pattern line, with the counts in its ``"comment"``.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import spacy
from spacy.tokens import Doc, Span

from .config import LANG, PHRASE_ATTR
from .matching import RuleMatcher
from .rules import Pattern, Rule, RuleSet, derive_rule_id, load_rules
from .store import Store

SpanKey = tuple[int, int, int, str]  # (input_hash, start, end, label)
SUFFIX_LENGTHS = (5, 4, 3)
MAX_EXAMPLES = 5


@dataclass
class _Decided:
    """The live decisions on one question, counted over annotators."""

    accepts: int = 0
    rejects: int = 0

    @property
    def accepted(self) -> bool:
        return self.accepts > self.rejects

    @property
    def rejected(self) -> bool:
        return self.rejects > self.accepts


@dataclass
class _Proposal:
    """A pattern worth counting, and the decided spans it was generalised from."""

    label: str
    negative: bool
    kind: str  # "phrase" or "tokens"
    value: str | list[dict[str, Any]]
    basis: str  # why it was proposed: "phrase", "lemma", "suffix" or "shape"


def suggest_patterns(
    store: Store,
    dataset: str,
    pattern_files: Sequence[str | Path],
    *,
    min_count: int = 2,
    lang: str = LANG,
    phrase_attr: str = PHRASE_ATTR,
) -> list[dict[str, Any]]:
    """Proposed pattern lines for ``dataset``'s decisions under the rules in ``pattern_files``.

    Each item: ``pattern`` (the patterns.jsonl line, a dict), ``kind`` ("phrase" or "tokens"),
    ``basis`` ("phrase", "lemma", "suffix", "shape"), ``label``, ``negative``, ``accepts`` and
    ``rejects`` (decisions it matches), ``fixes`` (the decisions it gets right that the rules
    get wrong today), ``undecided`` (its other matches in the texts with decisions),
    ``precision`` (decisions it gets right among those it matches), ``examples`` (span texts it
    fixes) and ``rules`` (for a negative: the rules whose rejected matches it vetoes). Best first.

    Raises :class:`~bootstrap.errors.InputError` for bad pattern files and
    :class:`~bootstrap.store.UnknownDataset` for a dataset the store lacks.
    """
    store.dataset_id(dataset, create=False)
    nlp = spacy.blank(lang)
    rules = load_rules(pattern_files, nlp.vocab)
    decided = _decisions(store, dataset)
    docs = _docs(nlp, store, dataset, sorted({key[0] for key in decided}))
    matcher = RuleMatcher(nlp, rules, phrase_attr)
    proposed_by: dict[SpanKey, set[str]] = defaultdict(set)  # span and label -> positive rules matching it
    vetoed: set[SpanKey] = set()  # span and label a negative rule matches
    for input_hash, doc in docs.items():
        for match in matcher(doc):
            rule = rules[match.rule_id]
            key = (input_hash, match.start, match.end, rule.label)
            if rule.negative:
                vetoed.add(key)
            else:
                proposed_by[key].add(rule.id)

    missed = [key for key, d in decided.items() if d.accepted and key not in proposed_by and key[0] in docs]
    wrong = [key for key, d in decided.items() if d.rejected and key in proposed_by and key not in vetoed and key[0] in docs]
    proposals = _proposals(missed, docs, negative=False, lower=phrase_attr == "LOWER")
    proposals += _proposals(wrong, docs, negative=True, lower=phrase_attr == "LOWER")
    if not proposals:
        return []
    fixable = {False: set(missed), True: set(wrong)}
    return _evaluate(nlp, proposals, docs, decided, fixable, proposed_by, min_count, phrase_attr)


# -- the decisions and their texts ------------------------------------------------------------


def _decisions(store: Store, dataset: str) -> dict[SpanKey, _Decided]:
    decided: dict[SpanKey, _Decided] = defaultdict(_Decided)
    for answer in store.answers(dataset):
        key = (answer.input_hash, answer.start, answer.end, answer.label)
        if answer.answer == "accept":
            decided[key].accepts += 1
        elif answer.answer == "reject":
            decided[key].rejects += 1
    return dict(decided)


def _docs(nlp, store: Store, dataset: str, input_hashes: list[int]) -> dict[int, Doc]:
    """The stored texts with decisions, tokenized as the session tokenized them."""
    texts = [(store.example(dataset, input_hash) or ("", {}))[0] for input_hash in input_hashes]
    return {input_hash: doc for input_hash, doc, text in zip(input_hashes, nlp.pipe(texts), texts) if text}


# -- proposing -----------------------------------------------------------------------------------


def _proposals(keys: Iterable[SpanKey], docs: dict[int, Doc], *, negative: bool, lower: bool) -> list[_Proposal]:
    """A phrase per distinct span text, and a token pattern per group of two or more texts."""
    proposals: dict[str, _Proposal] = {}

    def add(label: str, kind: str, value, basis: str) -> None:
        ident = derive_rule_id(label, negative, Pattern(kind, value, ""))  # the same pattern from two groups is one
        proposals.setdefault(ident, _Proposal(label, negative, kind, value, basis))

    by_label: dict[str, list[tuple[SpanKey, Span]]] = defaultdict(list)
    for key in keys:
        span = docs[key[0]].char_span(key[1], key[2], alignment_mode="expand")
        if span is not None:
            by_label[key[3]].append((key, span))
    for label, spans in by_label.items():
        phrases: dict[str, str] = {}
        for _, span in spans:
            phrases.setdefault(span.text.lower() if lower else span.text, span.text)
        for phrase in phrases.values():
            add(label, "phrase", phrase, "phrase")
        for (basis, _), members in _groups(spans).items():
            heads = {span[-1].lower_ for _, span in members}
            if basis == "suffix" and len(heads) == 1:
                continue  # one shared last word: the lemma group says it without a regex
            if len({span.text.lower() for _, span in members}) >= 2:
                add(label, "tokens", _token_pattern(basis, [span for _, span in members]), basis)
    return list(proposals.values())


def _groups(spans: list[tuple[SpanKey, Span]]) -> dict[tuple[str, tuple], list[tuple[SpanKey, Span]]]:
    """Spans of equal length grouped by a trait they share: lemma or suffix of the last token, shape."""
    groups: dict[tuple[str, tuple], list[tuple[SpanKey, Span]]] = defaultdict(list)
    for key, span in spans:
        n, last = len(span), span[-1]
        groups[("lemma", (n, lemma(last.lower_)))].append((key, span))
        if last.is_alpha:
            for length in SUFFIX_LENGTHS:
                if len(last) >= length + 3:
                    groups[("suffix", (n, last.lower_[-length:]))].append((key, span))
        if n == 1 and _telling_shape(last.shape_):
            groups[("shape", (n, last.shape_))].append((key, span))
    return groups


def lemma(lower: str) -> str:
    """A stand-in for a lemma that needs no trained pipeline: the word without a plural ending."""
    if len(lower) > 4 and lower.endswith("ies"):
        return lower[:-3] + "y"
    if len(lower) > 3 and lower.endswith("s") and not lower.endswith(("ss", "is", "us", "sis")):
        return lower[:-1]
    return lower


def _telling_shape(shape: str) -> bool:
    """Shapes narrow enough to be a rule: codes and abbreviations (``XXX``, ``Xdd``), not plain words."""
    return "d" in shape or shape.count("X") >= 2


def _token_pattern(basis: str, spans: list[Span]) -> list[dict[str, Any]]:
    n = len(spans[0])
    if basis == "shape":
        return [{"SHAPE": spans[0][i].shape_} for i in range(n)]
    tokens = [_shared([span[i] for span in spans]) for i in range(n - 1)]
    lowers = sorted({span[-1].lower_ for span in spans})
    if basis == "suffix":
        suffix = _common_suffix(lowers)
        tokens.append({"LOWER": {"REGEX": f"{re.escape(suffix)}$"}})
    else:
        tokens.append({"LOWER": lowers[0]} if len(lowers) == 1 else {"LOWER": {"IN": lowers}})
    return tokens


def _common_suffix(words: list[str]) -> str:
    suffix = words[0]
    for word in words[1:]:
        while not word.endswith(suffix):
            suffix = suffix[1:]
    return suffix


def _shared(tokens: list) -> dict[str, Any]:
    """The most specific thing every token at one position has in common (``{}``: any token)."""
    lowers = {token.lower_ for token in tokens}
    if len(lowers) == 1:
        return {"LOWER": lowers.pop()}
    for attr in ("is_upper", "is_title", "is_digit", "is_alpha", "is_punct"):
        if all(getattr(token, attr) for token in tokens):
            return {attr.upper(): True}
    return {}


# -- counting ------------------------------------------------------------------------------------


def _evaluate(
    nlp, proposals: list[_Proposal], docs: dict[int, Doc], decided: dict[SpanKey, _Decided],
    fixable: dict[bool, set[SpanKey]], proposed_by: dict[SpanKey, set[str]], min_count: int, phrase_attr: str,
) -> list[dict[str, Any]]:
    """Run every proposal as a rule over the texts with decisions; keep those that earn their place."""
    rules = RuleSet(tuple(
        Rule(str(i), p.label, p.negative, (Pattern(p.kind, p.value, "suggestion"),)) for i, p in enumerate(proposals)
    ), ("suggestions",))
    matcher = RuleMatcher(nlp, rules, phrase_attr)
    counts = [Counter() for _ in proposals]
    examples: list[Counter] = [Counter() for _ in proposals]
    vetoes: list[Counter] = [Counter() for _ in proposals]
    for input_hash, doc in docs.items():
        for match in matcher(doc):
            i = int(match.rule_id)
            proposal, count = proposals[i], counts[i]
            key = (input_hash, match.start, match.end, proposal.label)
            decision = decided.get(key)
            if decision is None:
                count["undecided"] += 1
                continue
            count["accepts"] += decision.accepts
            count["rejects"] += decision.rejects
            if key in fixable[proposal.negative]:
                count["fixes"] += decision.rejects if proposal.negative else decision.accepts
                examples[i][doc.text[match.start:match.end]] += 1
                if proposal.negative:
                    vetoes[i].update(proposed_by[key])
    suggestions = []
    for proposal, count, seen, vetoed in zip(proposals, counts, examples, vetoes):
        right, wrong = (count["rejects"], count["accepts"]) if proposal.negative else (count["accepts"], count["rejects"])
        if count["fixes"] < min_count or right <= wrong:
            continue
        suggestions.append(_suggestion(proposal, count, right / (right + wrong), seen, vetoed))
    order = {"phrase": 0, "lemma": 1, "suffix": 2, "shape": 3}
    suggestions.sort(key=lambda s: (-s["fixes"], -s["precision"], order[s["basis"]], s["label"], str(s["pattern"])))
    return suggestions


def _suggestion(proposal: _Proposal, count: Counter, precision: float, seen: Counter, vetoed: Counter) -> dict[str, Any]:
    line: dict[str, Any] = {"label": proposal.label, "pattern": proposal.value}
    if proposal.negative:
        line["negative"] = True
    what = "rejected matches of rules" if proposal.negative else "accepted spans no rule matches"
    line["comment"] = (
        f"suggested ({proposal.basis}): covers {count['fixes']} {what}; matches {count['accepts']} accepted, "
        f"{count['rejects']} rejected, {count['undecided']} undecided in texts with decisions"
    )
    return {
        "pattern": line,
        "kind": proposal.kind,
        "basis": proposal.basis,
        "label": proposal.label,
        "negative": proposal.negative,
        "fixes": count["fixes"],
        "accepts": count["accepts"],
        "rejects": count["rejects"],
        "undecided": count["undecided"],
        "precision": round(precision, 4),
        "examples": [text for text, _ in seen.most_common(MAX_EXAMPLES)],
        "rules": [rule for rule, _ in vetoed.most_common()],
    }

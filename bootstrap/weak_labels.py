"""The training set over the whole corpus: every text, each span labelled by the strongest evidence.

The rules and functions label every text of the corpus; a person decides a few hundred
questions. Training a model on the decided texts alone throws the corpus away and caps the
model below the rules whatever the order of questions (``../shared/FINDINGS.md``). Weakly
supervised NER trains on every text from the aggregated labels instead, and one binary decision
("this string is not a DISEASE") is evidence about every occurrence of that string. This module
builds that training set, the same one for the session's handoff, ``bootstrap train`` and
``bootstrap simulate`` (:func:`build_training_set`), so the three cannot drift apart.

**Precedence**, strongest first, for each candidate span and label:

1. ``decision``: a person's answer on exactly this question (the latest one per question);
2. ``carried``: the answers on the same string and label elsewhere, when they all agree, in the
   same setting — standing alone, or overlapping another candidate (a reject of "cancer" inside
   "breast cancer" is about the boundary, not about "cancer"): an accepted string is an entity
   at every such occurrence, a rejected one nowhere. Accepted strings are also matched again
   over every text, so they count where no rule proposed them: where the occurrence overlaps no
   candidate, by the answers given standing alone; where it overlaps some (the rules proposed
   only "dystrophy" inside it), by the answers given overlapping — so "Myotonic dystrophy",
   accepted over its nested "dystrophy", is an entity at its other occurrences too, where no
   rule proposes the whole string (the long form came from a function, or a model). When
   accepted strings were matched only where they overlapped no candidate, that accept reached
   none of them; matched in both settings, the corrected rules on NCBI-disease without a model
   (12 seeds) scored 0.014 higher at 200 decisions in active order, 0.007 in random order;
3. ``weak``: the rules' probability from the fit a replay of the store chooses (a fresh
   :class:`~bootstrap.aggregate.Aggregate` with the training decisions: the plain vote, or the
   LabelModel once the decisions show it better), before the decisions moved each rule's
   precision (see ``_weak_candidates`` for why) — above ``positive`` an entity (or where labels
   compete for the span: the most probable one, if the span is an entity with a probability
   above ``positive``; ``aggregate.labelled``), at ``negative`` or less an
   incorrect span (spaCy's ``incorrect_spans``), in between unknown. With ``f_optimal`` (off by
   default: measured worse with these probabilities) ``positive`` is lowered to the threshold
   that maximises the labels' expected F (:func:`f_optimal_threshold`) once
   ``aggregate.MIN_COMPARED`` decisions have made the probabilities theirs: when the decisions
   show rules right 15% of the time, every candidate of theirs sits near 0.15, and a threshold
   of one half would leave nothing to learn from. Before that, ``positive`` is what the rules
   say (a candidate a negative rule contradicts, at 0.5, is not an entity).

Overlapping entities are resolved decisions first, then longest first (the rules' own reading);
the rivals of an accepted span that cross or nest in it become incorrect spans.

**Tokens nobody labelled.** Taking every token the rules missed as "not an entity" teaches the
model the rules' recall, no more. ``outside="sparse"`` (the default) marks as outside only what
is nearly always right: function words (stop words, punctuation, numbers), the tokens of
rejected and confidently wrong candidates, and a fixed ``outside_share`` of the other tokens;
the rest is missing (no loss). ``"all"`` is the closed world: every token outside an entity
and not in an undecided candidate is outside. ``benchmarks/annotation_efficiency.py`` measures
the choice.

**Honest comparison.** The texts of the held-out decisions (``train.split_decisions``: a fixed
fifth of the decided texts, by hash) never enter the training set, not even with weak labels:
the handoff scores model and rules on them.

**The pipeline handed over.** :func:`train_model` trains the model, then scores it, the rules
corrected by the decisions before its ``ner``, and those rules alone (:mod:`bootstrap.pipeline`,
which labels a new text with this module's precedence: :func:`corrected_entities`) on the
held-out texts. The corrected rules are handed over unless the model after them, and then the
model alone, beat the choice so far there with confidence (:func:`bootstrap.comparison.choose`):
where a blank model cannot learn the entity type (WNUT-17), the decisions still improve the
rules, and a few held-out entities are too few to prove the model better.

**Bounded time.** At most ``max_texts`` texts and ``max_words`` words are used: every decided
training text, and a fixed sample (by input hash, so it grows stably with the corpus) of the
others. Training time grows with the words, not with the corpus (``benchmarks/handoff_training.py``).
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from .aggregate import MIN_COMPARED, Aggregate, entity_probability_if_chosen, fit_probabilities, labelled
from .config import LANG, MAX_EPOCHS, PHRASE_ATTR, SEED, PipelineRules
from .labelmatrix import CandidateTable, overlaps_with, surface_key
from .pipeline import LADDER, pipeline_choices, rule_specificity
from .tasks import task_input_hash
from .train import INCORRECT_SPANS_KEY, _is_function_word, _runs, split_decisions, token_span

Outside = Literal["sparse", "all"]
SOURCES = ("decision", "carried", "weak")


@dataclass(frozen=True)
class WeakLabelConfig:
    """How the whole-corpus training set is made (module docstring); the defaults are measured."""

    positive: float = 0.5  # an undecided candidate above this probability is an entity
    negative: float = 0.15  # ... at this or less an incorrect span
    outside: Outside = "sparse"
    outside_share: float = 0.1  # with "sparse": the share of other tokens taken as outside
    max_texts: int = 20_000  # texts in the training set at most (decided ones always in) ...
    max_words: int = 200_000  # ... and words (whitespace-separated) at most: training time grows with them
    dev_share: float = 0.2  # of the decided texts, held out for the handoff's comparison
    model_dev_share: float = 0.1  # of the training texts, kept aside to pick the best epoch
    carry: bool = True  # carry decisions to every occurrence of the string
    f_optimal: bool = False  # lower ``positive`` to the threshold that maximises the labels' expected F

    def __post_init__(self) -> None:
        if not 0.0 <= self.negative < self.positive <= 1.0:
            raise ValueError(f"need 0 <= negative < positive <= 1, got {self.negative} and {self.positive}")
        if self.outside not in ("sparse", "all"):
            raise ValueError(f"outside must be 'sparse' or 'all', got {self.outside!r}")
        if self.max_texts < 2:
            raise ValueError(f"max_texts must be at least 2, got {self.max_texts}")


@dataclass
class TrainingSet:
    """Reference Docs to train on and to pick the best epoch with, and the decisions held out."""

    train: list[Doc]
    dev: list[Doc]
    held_out: list[dict[str, Any]]  # Prodigy tasks whose texts are in neither train nor dev
    stats: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    method_reason: str = ""
    # each fit's view of the held-out texts: its spans there and its accuracy on ``held_out``
    rules_view: dict[str, Any] = field(default_factory=dict)
    # what a pipeline's corrected rules need (``pipeline.CorrectedRules.set_rules``): the strings
    # the training decisions settled, and each rule's matches in the corpus
    carried: dict[tuple[str, str, bool], str] = field(default_factory=dict)
    # ... and the strings every decision settles, the held-out ones too: what the pipeline handed
    # over carries, once the held-out texts have chosen it (``train_model``)
    carried_all: dict[tuple[str, str, bool], str] = field(default_factory=dict)
    specificity: dict[str, int] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return sorted({span.label_ for doc in self.train for span in doc.ents})


@dataclass
class _Candidate:
    start: int
    end: int
    label: str
    probability: float
    source: str
    overlapping: bool = False  # the span overlaps another candidate of the text
    # weak ones: P(the span is an entity) where its label is the span's most probable one, else 0
    # (``aggregate.labelled``: labels that tie on a span leave each below one half)
    entity_probability: float = 0.0


def replay(table: CandidateTable, tasks: Iterable[dict[str, Any]], *, seed: int = SEED,
           aggregate_options: Mapping[str, Any] | None = None) -> Aggregate:
    """A fresh aggregate over ``table`` with the decisions in ``tasks`` applied (the latest per
    question counts) and refit with their class balance: what a session that had been given
    exactly these answers believes, without a session. ``aggregate_options`` are the session's
    keyword arguments of :class:`~bootstrap.aggregate.Aggregate` (``SessionConfig.aggregate``),
    so both fit alike."""
    aggregate = Aggregate(table, seed=seed, **(aggregate_options or {}))
    question_of = question_index(table)
    latest: dict[int, tuple[str, bool]] = {}
    for task in tasks:
        if task.get("answer") not in ("accept", "reject", "ignore"):
            continue
        for span in task.get("spans", []):
            index = question_of.get((task_input_hash(task), span["start"], span["end"], span["label"]))
            if index is not None:
                latest[index] = (task["answer"], bool((task.get("meta") or {}).get("exploration")))
    for index, (answer, exploration) in latest.items():
        aggregate.observe(int(table.question_row[index]), int(table.question_class[index]), answer, exploration)
    if latest:
        aggregate.refit()
    return aggregate


def question_index(table: CandidateTable) -> dict[tuple[int, int, int, str], int]:
    """``(input_hash, start, end, label) -> question index`` of a table."""
    return {table.question(i): i for i in range(table.n_questions)}


def build_training_set(
    nlp: Language,
    table: CandidateTable,
    tasks: Iterable[dict[str, Any]],
    texts: Iterable[tuple[int, str]],
    config: WeakLabelConfig | None = None,
    *,
    seed: int = SEED,
    aggregate_options: Mapping[str, Any] | None = None,
) -> TrainingSet:
    """The training set over the corpus ``texts`` (``(input_hash, text)``, e.g. ``Store.texts``)
    from the rules' ``table`` and the decisions ``tasks`` (Prodigy tasks, e.g.
    ``Store.export_tasks``); see the module docstring. ``aggregate_options``:
    ``SessionConfig.aggregate`` (:func:`replay`)."""
    config = config or WeakLabelConfig()
    tasks = [task for task in tasks if task.get("answer") in ("accept", "reject")]  # an ignore says nothing
    train_tasks, held_out = split_decisions(tasks, config.dev_share) if tasks else ([], [])
    held_out_texts = {task_input_hash(task) for task in held_out}
    aggregate = replay(table, train_tasks, seed=seed, aggregate_options=aggregate_options)
    decided = _decisions_by_text(train_tasks)
    overlapping = table.overlapping()
    candidates = _weak_candidates(table, aggregate, overlapping, held_out_texts)
    carried = _carried(train_tasks, table, overlapping) if config.carry else {}
    carried_all = _carried(tasks, table, overlapping) if config.carry else {}
    chosen = _sample(texts, held_out_texts, set(decided), config.max_texts, config.max_words)
    docs = [nlp.make_doc(text) for _, text in chosen]
    accepted_strings = accepted_string_matcher(nlp, carried)
    counts: Counter = Counter()
    resolved = []
    for (input_hash, _), doc in zip(chosen, docs):
        spans = _resolve(doc.text, candidates.get(input_hash, []), decided.get(input_hash, {}), carried)
        if accepted_strings is not None:
            spans += _string_matches(doc, accepted_strings, spans, carried)
        resolved.append(spans)
    positive = config.positive
    if config.f_optimal and len(train_tasks) >= MIN_COMPARED:  # the probabilities are the decisions' by then
        positive = min(positive, f_optimal_threshold([c.probability for spans in resolved for c in spans]))
    thresholds = replace(config, positive=positive, negative=min(config.negative, positive / 2))
    labelled = [_reference_doc(doc, input_hash, spans, thresholds, counts)
                for (input_hash, _), doc, spans in zip(chosen, docs, resolved)]
    dev_keys = {key for key, _ in chosen if _bucket(key, salt=1) < config.model_dev_share and key not in decided}
    train = [doc for (key, _), doc in zip(chosen, labelled) if key not in dev_keys]
    dev = [doc for (key, _), doc in zip(chosen, labelled) if key in dev_keys]
    if not dev and len(train) > 1:
        dev.append(train.pop())
    stats = {
        "texts": len(labelled), "train_texts": len(train), "dev_texts": len(dev),
        "decided_texts": len(set(decided) & {key for key, _ in chosen}), "held_out_texts": len(held_out_texts),
        "held_out_decisions": len(held_out), "training_decisions": len(train_tasks),
        "entities": {source: counts[f"entity:{source}"] for source in SOURCES},
        "incorrect": {source: counts[f"incorrect:{source}"] for source in SOURCES},
        "carried_strings": len(carried), "method": aggregate.method,
        "positive_threshold": round(positive, 4), "negative_threshold": round(thresholds.negative, 4),
    }
    return TrainingSet(train, dev, held_out, stats, aggregate.method, aggregate.method_reason,
                       rules_on_held_out(table, aggregate, held_out), carried=carried, carried_all=carried_all,
                       specificity=rule_specificity(table))


def training_set_from_store(
    nlp: Language, store, dataset: str, pattern_files: Sequence[str | Path], *, lfs: str | Path | None = None,
    config: WeakLabelConfig | None = None, seed: int = SEED, phrase_attr: str = PHRASE_ATTR,
    aggregate_options: Mapping[str, Any] | None = None,
) -> TrainingSet:
    """The handoff's training set with nothing but the store and the rules' files: the rules are
    applied again to the stored texts (``bootstrap train DATASET --rules ...``)."""
    from .corpus import Record
    from .table import build_table

    records = (Record(text, key, f"{dataset}:{key}") for key, text in store.texts(dataset))
    table = build_table(pattern_files, records, lfs=lfs, lang=nlp.lang, phrase_attr=phrase_attr)
    return build_training_set(nlp, table, store.export_tasks(dataset), store.texts(dataset), config, seed=seed,
                              aggregate_options=aggregate_options)


def f_optimal_threshold(probabilities: Sequence[float]) -> float:
    """The probability above which candidates should be entities for the highest expected F1.

    Taking the ``k`` most probable candidates as entities has expected F about
    ``2 · Σ_top-k p / (k + Σ_all p)``; its maximum is where ``p`` falls to about half the F it
    reaches. With rules right one time in six (measured on WNUT-17: 15%) every candidate's
    probability, once the decisions show it, is near 0.15: a threshold of one half would drop
    them all and train a model that finds nothing, where the F-optimal labels keep the rules'
    recall. Decided and carried candidates (1 and 0) count like any other.
    """
    p = np.sort(np.asarray(probabilities, dtype=float))[::-1]
    if not len(p) or p[0] <= 0:
        return 0.5
    expected_f = 2 * np.cumsum(p) / (np.arange(1, len(p) + 1) + p.sum())
    best = int(np.argmax(expected_f))
    below = p[best + 1] if best + 1 < len(p) else 0.0
    return float((p[best] + below) / 2)  # between the last one in and the first one out


# -- the evidence --------------------------------------------------------------------------------


def _decisions_by_text(tasks: Iterable[dict[str, Any]]) -> dict[int, dict[tuple[int, int, str], str]]:
    """``input_hash -> {(start, end, label): answer}``, the latest answer per span counting."""
    by_text: dict[int, dict[tuple[int, int, str], str]] = defaultdict(dict)
    for task in tasks:
        for span in task.get("spans", []):
            by_text[task_input_hash(task)][(span["start"], span["end"], span["label"])] = task["answer"]
    return by_text


def _carried(
    tasks: Iterable[dict[str, Any]], table: CandidateTable, overlapping: np.ndarray,
) -> dict[tuple[str, str, bool], str]:
    """``(surface_key of the string, label, overlapping) -> "accept" | "reject"`` where every answer on
    it agrees. Occurrences that overlap another candidate are a setting of their own: a reject
    of "cancer" inside "breast cancer" is about the boundary, not about "cancer". A span no rule
    proposed (a model's) is in the setting the rules' candidates give it, as in the ranking
    (``CandidateTable.overlapping``)."""
    row_of = {(int(h), int(s), int(e)): row for row, (h, s, e) in enumerate(zip(table.input_hash, table.start, table.end))}
    answered: list[tuple[str, str, str]] = []  # surface, label, answer
    spans: list[tuple[int, int, int]] = []  # text, start, end
    for task in tasks:
        if task["answer"] == "ignore":
            continue
        for span in task.get("spans", []):
            surface = surface_key(task["text"][span["start"]:span["end"]])
            if surface:
                answered.append((surface, span["label"], task["answer"]))
                spans.append((task_input_hash(task), span["start"], span["end"]))
    rows = [row_of.get(span) for span in spans]
    setting = np.array([row is not None and bool(overlapping[row]) for row in rows], dtype=bool)
    elsewhere = np.array([row is None for row in rows], dtype=bool)
    if elsewhere.any():  # spans no rule proposed (a model's): the setting the rules' spans give them
        text, start, end = np.array(spans, dtype=np.int64)[elsewhere].T
        setting[elsewhere] = overlaps_with(text, start, end, (table.input_hash, table.start, table.end))
    answers: dict[tuple[str, str, bool], set[str]] = defaultdict(set)
    for (surface, label, answer), overlaps_rules in zip(answered, setting.tolist()):
        answers[(surface, label, overlaps_rules)].add(answer)
    return {key: next(iter(given)) for key, given in answers.items() if len(given) == 1}


def _weak_candidates(
    table: CandidateTable, aggregate: Aggregate, overlapping: np.ndarray, skip: set[int],
) -> dict[int, list[_Candidate]]:
    """Per text, every question with the rules' probability for it, as weak candidates.

    That is the chosen fit's own probability (``Aggregate.fits``), before the decisions moved
    each rule's precision: the questions asked are no sample of a rule's matches (the most
    frequent strings come first, and many of them are rejected for their boundaries), so a
    rule's precision measured on them would drop its rare, often right, matches everywhere.
    The decisions reach the training set through their own spans and their strings instead.
    """
    rows_proba = fit_probabilities(aggregate.fits[aggregate.method])
    proba = rows_proba[table.question_row, table.question_class]
    entity = entity_probability_if_chosen(table, rows_proba)
    by_text: dict[int, list[_Candidate]] = defaultdict(list)
    for i, (row, cls) in enumerate(zip(table.question_row.tolist(), table.question_class.tolist())):
        input_hash = int(table.input_hash[row])
        if input_hash in skip:
            continue
        by_text[input_hash].append(_Candidate(int(table.start[row]), int(table.end[row]), table.label_of(cls),
                                              float(proba[i]), "weak", bool(overlapping[row]), float(entity[i])))
    return by_text


def _resolve(
    text: str, weak: Sequence[_Candidate], decided: dict[tuple[int, int, str], str],
    carried: dict[tuple[str, str, bool], str],
) -> list[_Candidate]:
    """A text's candidates, each labelled by its strongest evidence (decision > carried > weak)."""
    spans = {}
    for c in weak:
        answer = carried.get((surface_key(text[c.start:c.end]), c.label, c.overlapping))
        if answer is not None:
            c = _Candidate(c.start, c.end, c.label, 1.0 if answer == "accept" else 0.0, "carried", c.overlapping)
        spans[(c.start, c.end, c.label)] = c
    for key, answer in decided.items():
        if answer != "ignore":
            spans[key] = _Candidate(*key, 1.0 if answer == "accept" else 0.0, "decision")
    return list(spans.values())


def corrected_entities(
    doc: Doc, votes: Iterable[tuple[int, int, str, float, bool]], carried: Mapping[tuple[str, str, bool], str],
    accepted: PhraseMatcher | None, positive: float = WeakLabelConfig.positive,
) -> list[Span]:
    """The entities this module gives a text whose only evidence is the rules' ``votes``
    (``(start, end, label, probability, overlapping)`` per candidate) and the strings the
    decisions settled (``carried``; ``accepted``: :func:`accepted_string_matcher` of them), by
    the same precedence as a stored text: how ``pipeline.CorrectedRules`` labels a new one."""
    weak = [_Candidate(start, end, label, probability, "weak", overlapping)
            for start, end, label, probability, overlapping in votes]
    spans = _resolve(doc.text, weak, {}, carried)
    if accepted is not None:
        spans += _string_matches(doc, accepted, spans, carried)
    positives = []
    for c in spans:
        span = token_span(doc, c.start, c.end, c.label) if c.probability > positive else None
        if span is not None:
            positives.append((c.source, c.probability, span))
    return _choose_entities(positives)[0]


def accepted_string_matcher(nlp: Language, carried: Mapping[tuple[str, str, bool], str]) -> PhraseMatcher | None:
    """A PhraseMatcher (case-blind; :func:`_string_matches` checks the case and the setting)
    for every accepted string, by label."""
    accepted: dict[str, set[str]] = defaultdict(set)
    for (surface, label, _), answer in carried.items():
        if answer == "accept":
            accepted[label].add(surface)
    if not accepted:
        return None
    matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
    for label, strings in accepted.items():
        matcher.add(label, list(nlp.tokenizer.pipe(sorted(strings))))
    return matcher


def _string_matches(
    doc: Doc, matcher: PhraseMatcher, known: Sequence[_Candidate], carried: dict[tuple[str, str, bool], str],
) -> list[_Candidate]:
    """Occurrences of accepted strings that no candidate of the text has exactly: carried
    entities, in the setting the candidates give them (overlapping some or none), each counted
    only where the answers in that setting accept it (module docstring, ``carried``). An
    occurrence counts only under the accepted string's own key ("WAS" is not "was"); it then
    competes with the spans it overlaps as any entity does, longest first."""
    covered = [(c.start, c.end) for c in known]
    found = []
    for match_id, start, end in matcher(doc):
        span = doc[start:end]
        label = doc.vocab.strings[match_id]
        if (span.start_char, span.end_char) in covered:
            continue
        setting = any(s < span.end_char and span.start_char < e for s, e in covered)
        if carried.get((surface_key(span.text), label, setting)) == "accept":
            found.append(_Candidate(span.start_char, span.end_char, label, 1.0, "carried", setting))
    return found


# -- one reference Doc --------------------------------------------------------------------------


def _reference_doc(doc: Doc, input_hash: int, candidates: Sequence[_Candidate], config: WeakLabelConfig,
                   counts: Counter) -> Doc:
    """Entities, incorrect spans and outside tokens of one text, by the precedence above."""
    positives, negatives = [], []
    for c in candidates:
        span = token_span(doc, c.start, c.end, c.label)
        if span is None:
            continue
        if max(c.probability, c.entity_probability) > config.positive:  # as ``aggregate.labelled``
            positives.append((c.source, c.probability, span))
        elif c.probability <= config.negative:
            negatives.append((c.source, span))
    ents, rivals = _choose_entities(positives)
    taken = {(s.start, s.end, s.label_) for s in ents}
    incorrect: dict[tuple[int, int, str], tuple[str, Span]] = {}
    for source, span in [*negatives, *(("decision", rival) for rival in rivals)]:
        key = (span.start, span.end, span.label_)
        if key not in taken:
            incorrect.setdefault(key, (source, span))
    entity_tokens = {i for s in ents for i in range(s.start, s.end)}
    outside = _outside(doc, input_hash, positives, [span for _, span in incorrect.values()], config)
    outside -= entity_tokens
    doc.set_ents(ents, outside=_runs(doc, outside), default="missing")
    doc.spans[INCORRECT_SPANS_KEY] = [span for _, span in incorrect.values()]
    for source, _, span in positives:
        if (span.start, span.end, span.label_) in taken:
            counts[f"entity:{source}"] += 1
            taken.discard((span.start, span.end, span.label_))
    for source, _ in incorrect.values():
        counts[f"incorrect:{source}"] += 1
    return doc


def _choose_entities(positives: list[tuple[str, float, Span]]) -> tuple[list[Span], list[Span]]:
    """Non-overlapping entities: decisions first, then longest, then most probable.

    Returns the entities and the rivals of decided ones (spans crossing or inside an accepted
    span): a flat annotation has one entity there, and the person said which.
    """
    rank = {"decision": 0, "carried": 1, "weak": 1}
    ordered = sorted(positives, key=lambda item: (rank[item[0]], -(item[2].end - item[2].start), -item[1], item[2].start))
    taken: set[int] = set()
    ents, rivals = [], []
    decided_tokens: set[int] = set()
    for source, _, span in ordered:
        tokens = set(range(span.start, span.end))
        if tokens & taken:
            if tokens & decided_tokens:
                rivals.append(span)
            continue
        taken |= tokens
        if source == "decision":
            decided_tokens |= tokens
        ents.append(span)
    return sorted(ents, key=lambda s: s.start), rivals


def _outside(doc: Doc, input_hash: int, positives, incorrect: Sequence[Span], config: WeakLabelConfig) -> set[int]:
    """Tokens taken as known non-entities (module docstring, "Tokens nobody labelled")."""
    in_positive = {i for _, _, span in positives for i in range(span.start, span.end)}
    if config.outside == "all":
        return set(range(len(doc))) - in_positive
    draw = random.Random(input_hash).random
    outside = {i for span in incorrect for i in range(span.start, span.end)}
    for token in doc:
        if token.i in in_positive:
            continue
        if _is_function_word(token) or draw() < config.outside_share:
            outside.add(token.i)
    return outside


# -- sampling -----------------------------------------------------------------------------------


def _bucket(input_hash: int, salt: int = 0) -> float:
    """A stable share in [0, 1) per text, independent of the decisions' dev split."""
    return random.Random(input_hash * 2 + salt).random()


def sample_texts(texts: Iterable[tuple[int, str]], config: WeakLabelConfig) -> list[tuple[int, str]]:
    """The texts a training set reads besides the decided ones: the whole of a small corpus, a
    fixed sample of a large one (``max_texts``, ``max_words``)."""
    return _sample(texts, set(), set(), config.max_texts, config.max_words)


def _sample(
    texts: Iterable[tuple[int, str]], skip: set[int], always: set[int], max_texts: int, max_words: int,
) -> list[tuple[int, str]]:
    """Every text in ``always`` and, of the rest, those with the lowest bucket while the budget of
    texts and words lasts: a sample that keeps its members as the corpus grows. ``skip`` never
    enters."""
    kept: list[tuple[int, str]] = []
    others: list[tuple[float, int, str]] = []
    seen: set[int] = set()
    for input_hash, text in texts:
        if input_hash in skip or input_hash in seen:
            continue
        seen.add(input_hash)
        if input_hash in always:
            kept.append((input_hash, text))
        else:
            others.append((_bucket(input_hash), input_hash, text))
    texts_left = max_texts - len(kept)
    words_left = max_words - sum(len(text.split()) for _, text in kept)
    for _, input_hash, text in sorted(others):
        words = len(text.split())
        if texts_left <= 0 or words_left < words:
            break
        kept.append((input_hash, text))
        texts_left, words_left = texts_left - 1, words_left - words
    return sorted(kept, key=lambda item: item[0])


# -- the rules' view on the held-out decisions ----------------------------------------------------


def rules_on_held_out(table: CandidateTable, aggregate: Aggregate, held_out: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The rules' view of the held-out texts by each fit of ``aggregate`` (before any decision
    moved it): the spans it labels there (``predicted``, span keys) and its agreement with the
    held-out decisions (``accuracy``, counted as the model's). A model must beat the better of the
    plain vote and the LabelModel, not only the one that ranks the questions; which is better is
    :func:`~bootstrap.comparison.against_rules`'s to say. A held-out question about a span no rule
    proposed counts as the rules saying "no": an accepted one is an entity they miss."""
    from .handoff import rules_accuracy

    question_of = question_index(table)
    held_out = list(held_out)
    texts = {task_input_hash(task) for task in held_out}
    in_held_out = {key: index for key, index in question_of.items() if key[0] in texts}
    views = {}
    for name, fit in aggregate.fits.items():
        yes = labelled(table, fit_probabilities(fit))

        def says_accept(task: dict[str, Any]) -> bool:
            # a span no rule proposed (the model's) is one the rules say nothing is
            span = task["spans"][0]
            index = question_of.get((task_input_hash(task), span["start"], span["end"], span["label"]))
            return index is not None and bool(yes[index])

        views[name] = {"accuracy": rules_accuracy(held_out, says_accept),
                       "predicted": frozenset(key for key, index in in_held_out.items() if yes[index])}
    return views


# -- training -----------------------------------------------------------------------------------


MIN_TOKEN_PASSES = 150_000  # a small corpus is passed over until the model has seen this many tokens
MAX_EPOCHS_SMALL = 40


def epochs_for(tokens: int, max_epochs: int, patience: int) -> tuple[int, int]:
    """Epochs and patience for a training set of ``tokens``: ``max_epochs`` bounds the time on a
    big corpus, but a small one (the bundled examples: 3,000 tokens) needs more passes, or spaCy's
    ``ner`` has had a few dozen updates when it stops and predicts nothing. Patience grows with
    the epochs, so early evaluations where nothing is predicted yet do not end the training."""
    wanted = min(MAX_EPOCHS_SMALL, -(-MIN_TOKEN_PASSES // max(tokens, 1)))
    if wanted <= max_epochs:
        return max_epochs, patience
    return wanted, patience * max(1, wanted // max_epochs)


def train_model(
    training_set: TrainingSet,
    output_dir: str | Path,
    *,
    lang: str = LANG,
    seed: int = SEED,
    max_epochs: int = MAX_EPOCHS,
    patience: int = 2,
    progress: bool = False,
    rules: PipelineRules | None = None,
) -> dict[str, Any]:
    """Train on ``training_set`` (``train.train_ner``) and score the best model on its held-out
    texts. Returns ``{"model": path of model-best, "pipeline": output_dir/pipeline, "scores": {...}}``.

    ``model`` is the NER model (the loop's proposer). ``pipeline`` is one of the pipelines that
    can be made of it and the ``rules`` corrected by the decisions
    (:func:`~bootstrap.pipeline.pipeline_choices`): the corrected rules, unless the model after
    them, and then the model alone, beat the choice so far on the held-out texts with confidence
    (``comparison.choose``); without ``rules``, the model. ``scores["pipeline"]`` names it and
    keeps every choice's path and held-out F, and each step's trial.

    The choices compared carry the training decisions only: the held-out texts must judge rules
    that never saw their answers. Once one is chosen, the pipelines kept (``choices``; those
    compared are under ``compared``) carry every decision, the held-out ones too — the
    usual refit on all the data after a choice on part of it, free here for the rules: a fifth
    of the decisions (measured on NCBI-disease, 3 seeds, at 200 decisions in active order: the
    corrected rules' F 0.443 with the training decisions, 0.465 with all).
    """
    import spacy

    from .comparison import against_rules, choose, held_out_answers, model_predictions
    from .train import evaluate_decisions, train_ner

    labels = training_set.labels
    if not labels:
        raise ValueError("no entity in the training set: the rules proposed nothing the aggregate believes")
    epochs, patience = epochs_for(sum(len(doc) for doc in training_set.train), max_epochs, patience)
    started = time.process_time()
    best = train_ner(training_set.train, training_set.dev, output_dir, lang=lang, labels=labels, seed=seed,
                     max_epochs=epochs, patience=patience, progress=progress)
    seconds = time.process_time() - started
    scores: dict[str, Any] = {"training_set": training_set.stats, "train_cpu_seconds": round(seconds, 1),
                              "max_epochs": epochs}
    choices = {"ner": Path(best)}
    if rules is not None:
        choices.update(pipeline_choices(best, Path(output_dir), rules, training_set.carried, training_set.specificity))
    ladder = [name for name in LADDER if name in choices]
    pipeline: dict[str, Any] = {"name": ladder[0], "path": str(choices[ladder[0]]),
                                "choices": {name: str(path) for name, path in choices.items()}}
    if training_set.held_out:
        answers = held_out_answers(training_set.held_out)
        predicted, compared = {}, {}
        for name, path in choices.items():
            nlp = spacy.load(path)
            predicted[name] = model_predictions(nlp, training_set.held_out)
            compared[name] = against_rules(training_set.rules_view, predicted[name], answers)
            if name == "ner":
                scores["held_out_decisions"] = evaluate_decisions(nlp, training_set.held_out)
        scores["comparison"] = compared["ner"]
        held_out_f = {name: result["model"]["f"] for name, result in compared.items()}
        chosen, trials = choose(predicted, answers, ladder)
        pipeline.update(name=chosen, path=str(choices[chosen]), held_out_f=held_out_f, trials=trials)
        if rules is not None and training_set.carried_all != training_set.carried:
            # chosen on the held-out texts, the rules then carry their decisions too: a string
            # rejected in a held-out text is as wrong everywhere else (the NER model is not
            # retrained: a training takes minutes, and its held-out F would then be no estimate)
            final = pipeline_choices(best, Path(output_dir) / "all-decisions", rules, training_set.carried_all,
                                     training_set.specificity)
            pipeline.update(path=str(final.get(chosen, choices[chosen])),
                            choices={**pipeline["choices"], **{name: str(path) for name, path in final.items()}},
                            compared={name: str(path) for name, path in choices.items()})
    handed_over = Path(output_dir) / "pipeline"  # one place to load, whichever it is
    shutil.rmtree(handed_over, ignore_errors=True)
    shutil.copytree(pipeline["path"], handed_over, dirs_exist_ok=True)
    scores["pipeline"] = {**pipeline, "path": str(handed_over)}
    return {"model": best, "pipeline": handed_over, "scores": scores}


"""Binary decisions → spaCy training data → an NER pipeline, and how to score it.

A binary decision says one thing about one span: it *is* (accept) or *is not* (reject) an entity
of that label. Everything else about the text is unknown. spaCy can hold exactly that:

* accepted spans become ``doc.ents``;
* rejected spans go to ``doc.spans["incorrect_spans"]``, which the ``ner`` component reads
  through its ``incorrect_spans_key`` and penalises as "not this start, end and label";
* every other token is either *missing* (``ent_iob_ == ""``: no loss at all) or *outside*
  (``"O"``: a known non-entity), and which one is what a :class:`Scheme` decides.

Missing everywhere (the ``"missing"`` scheme) is the honest reading, and it does not learn:
nothing ever tells the model what is *not* an entity, so precision collapses as training goes
on (``benchmarks/training_schemes.py``; README, "Training"). The other schemes add what the
annotation process knows implicitly: on a text whose proposals were answered, a token that no
rule, labeling function or model proposed was, in effect, reviewed and found to be nothing.

Taken literally, that closed-world guess is wrong exactly where the model should learn: every
mention no rule found is marked "not an entity", and the model learns the rules' recall at best.
The default, ``"sparse-outside"``, keeps the guess where it is nearly always right (stop words,
punctuation, numbers, and the tokens of rejected proposals) and for a fixed 10% sample of the
other unproposed tokens, and leaves the rest missing. On NCBI-disease, with the rules' candidates
alone, every scheme that marks tokens outside lands near the rules' F; once mentions no rule found
are proposed and answered too, sparse-outside is clearly best (``benchmarks/training_schemes.py``).

Conflicting answers on one question (two annotators, or a change of mind) are resolved by
majority; a tie leaves the span out of both ``ents`` and ``incorrect_spans``. spaCy refuses a
span that is both (E868), and a tie is no evidence either way.
"""

from __future__ import annotations

import io
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

import spacy
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import filter_spans, registry
from thinc.api import Config

from .config import LANG, MAX_EPOCHS, SEED
from .corpus import read_texts
from .errors import InputError, Problem
from .hashing import input_hash as hash_text
from .tasks import decision_accuracy, task_input_hash, task_problem

INCORRECT_SPANS_KEY = "incorrect_spans"

Outside = Literal["none", "unproposed", "rejected", "all"]
SpanKey = tuple[int, int, str]  # (start_char, end_char, label)


@dataclass(frozen=True)
class Scheme:
    """Which tokens of an answered text count as known non-entities ("O"), and how to train.

    ``outside``:

    * ``"none"``: no token is outside; only accepted and rejected spans carry a signal;
    * ``"unproposed"``: tokens inside no proposed span (rule, LF or model) are outside;
    * ``"rejected"``: as ``"unproposed"``, and tokens whose every proposal was rejected too;
    * ``"all"``: every token outside an accepted span, as if each answered text were complete.

    ``unproposed_share`` < 1 keeps only that share of the unproposed tokens as outside (a fixed
    random sample per text), so the mentions no rule found, wrongly taken as outside, weigh less
    against the accepted ones; ``function_words_outside`` keeps every stop word, punctuation
    mark and number outside still, as they are hardly ever a mention and teach the boundaries.
    """

    name: str
    outside: Outside
    beam: bool = False
    unproposed_share: float = 1.0  # of the unproposed tokens, the share taken as outside
    function_words_outside: bool = False  # with unproposed_share < 1: stop words, punctuation, numbers always
    description: str = ""


SCHEMES: dict[str, Scheme] = {
    scheme.name: scheme
    for scheme in (
        Scheme("missing", "none", description="accepts as entities, rejects as incorrect spans, every other token missing"),
        Scheme("reviewed-outside", "unproposed", description="tokens of answered texts that nothing proposed are outside"),
        Scheme("rejected-outside", "rejected", description="reviewed-outside, plus tokens whose every proposal was rejected"),
        Scheme("all-outside", "all", description="every token of an answered text outside an accepted span is outside"),
        Scheme("reviewed-outside-beam", "unproposed", beam=True, description="reviewed-outside, trained with beam_ner's global updates"),
        Scheme("rejected-outside-beam", "rejected", beam=True, description="rejected-outside, trained with beam_ner's global updates"),
        Scheme("rejected-outside-sampled", "rejected", unproposed_share=0.3,
               description="rejected-outside, but only 30% of the unproposed tokens (a fixed sample) outside"),
        Scheme("sparse-outside", "rejected", unproposed_share=0.1, function_words_outside=True,
               description="rejected-outside, but of the unproposed tokens only function words (stop words, "
                           "punctuation, numbers) and a fixed 10% sample of the rest are outside"),
        Scheme("sparse-outside-beam", "rejected", beam=True, unproposed_share=0.1, function_words_outside=True,
               description="sparse-outside, trained with beam_ner's global updates"),
    )
}
DEFAULT_SCHEME = "sparse-outside"


def get_scheme(scheme: str | Scheme) -> Scheme:
    if isinstance(scheme, Scheme):
        return scheme
    if scheme not in SCHEMES:
        raise ValueError(f"unknown training scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    return SCHEMES[scheme]


# --- decisions ---------------------------------------------------------------------------------


@dataclass
class TextDecisions:
    """Every decision about one text, resolved to one answer per question."""

    text: str
    input_hash: int
    votes: dict[SpanKey, Counter] = field(default_factory=lambda: defaultdict(Counter))
    proposed: set[SpanKey] = field(default_factory=set)
    silver: dict[SpanKey, float] = field(default_factory=dict)  # weak-supervision probabilities

    def _resolved(self, answer: str) -> set[SpanKey]:
        other = "reject" if answer == "accept" else "accept"
        return {key for key, counts in self.votes.items() if counts[answer] > counts[other]}

    @property
    def accepted(self) -> set[SpanKey]:
        return self._resolved("accept")

    @property
    def rejected(self) -> set[SpanKey]:
        return self._resolved("reject")

    @property
    def answered(self) -> bool:
        """A text counts as reviewed once one of its questions got an accept or a reject."""
        return any(counts["accept"] or counts["reject"] for counts in self.votes.values())


def group_decisions(
    tasks: Iterable[dict[str, Any]],
    proposed: dict[int, Iterable[Sequence]] | None = None,
    silver: Iterable[tuple[str, Iterable[Sequence]]] | None = None,
) -> dict[int, TextDecisions]:
    """Collect the decisions per text (in first-seen order) with the spans proposed on it.

    A task with several spans says the same answer about each of them. Without ``proposed``,
    the spans asked about are the proposed ones. ``silver`` texts without decisions come last.
    """
    texts: dict[int, TextDecisions] = {}
    for number, task in enumerate(tasks, start=1):
        problem = task_problem(task, decision=True)
        if problem:
            raise ValueError(f"decision {number}: {problem}")
        key = task_input_hash(task)
        decisions = texts.get(key)
        if decisions is None:
            decisions = texts[key] = TextDecisions(task["text"], key)
        for span in task.get("spans", []):
            span_key = (span["start"], span["end"], span["label"])
            decisions.votes[span_key][task["answer"]] += 1
            decisions.proposed.add(span_key)
    for key, decisions in texts.items():
        for start, end, label, *_ in (proposed or {}).get(key, ()):
            decisions.proposed.add((start, end, label))
    key_of_text = {decisions.text: key for key, decisions in texts.items()}
    for text, spans in silver or ():
        key = key_of_text.get(text, hash_text(text))
        decisions = texts.get(key)
        if decisions is None:
            decisions = texts[key] = key_of_text[text] = TextDecisions(text, key)
        for start, end, label, probability in spans:
            decisions.silver[(start, end, label)] = float(probability)
    return texts


def read_decisions(path: str | Path) -> list[dict[str, Any]]:
    """Read Prodigy JSONL decisions; every bad line is reported as ``file:line: what``."""
    problems: list[Problem] = []
    tasks = []
    for record in read_texts(path, on_problem=problems.append):
        problem = task_problem(record.task, decision=True)
        if problem:
            file, _, line = record.source.rpartition(":")
            problems.append(Problem(file, int(line), problem))
        else:
            tasks.append(record.task)
    if problems:
        raise InputError(problems)
    if not tasks:
        raise InputError.single(path, None, "no decisions in the file")
    return tasks


def split_decisions(tasks: Iterable[dict[str, Any]], dev_share: float = 0.2) -> tuple[list[dict], list[dict]]:
    """Split decisions into (train, dev) by text, the same way on every run and machine.

    A text's bucket comes from the hash of its text, so all its decisions land on one side, and
    a text keeps its side when the dataset grows. With two texts or more, dev gets at least one.
    """
    tasks = list(tasks)
    bucket = {}
    for task in tasks:
        bucket.setdefault(task_input_hash(task), dev_bucket(hash_text(task["text"])))
    dev_keys = {key for key, value in bucket.items() if value < dev_share}
    if not dev_keys and dev_share > 0 and len(bucket) >= 2:
        dev_keys = {min(bucket, key=bucket.get)}
    train = [task for task in tasks if task_input_hash(task) not in dev_keys]
    dev = [task for task in tasks if task_input_hash(task) in dev_keys]
    return train, dev


def dev_bucket(input_hash: int) -> float:
    """A text's place in [0, 1) for held-out splits: below the dev share, it is held out. The
    decisions' split and the simulation's supervised ceiling use the same one, so they hold out
    the same texts."""
    return input_hash % 10_000 / 10_000


# --- decisions → Docs --------------------------------------------------------------------------


def token_span(doc: Doc, start: int, end: int, label: str = "") -> Span | None:
    """The whole tokens covering characters ``start:end``, without whitespace tokens at the ends.

    Expanding to token boundaries matches what the rule matcher asks about; trimming whitespace
    avoids spaCy's E024 (an entity may not start or end on whitespace).
    """
    span = doc.char_span(start, end, alignment_mode="expand")
    if span is None:
        return None
    first, last = span.start, span.end
    while first < last and doc[first].is_space:
        first += 1
    while last > first and doc[last - 1].is_space:
        last -= 1
    return Span(doc, first, last, label=label) if first < last else None


def doc_from_decisions(
    nlp: Language, decisions: TextDecisions, scheme: str | Scheme = DEFAULT_SCHEME, silver_threshold: float = 0.9
) -> Doc:
    """One reference Doc: accepted spans as ents, rejected as incorrect spans, the rest by scheme.

    Silver spans (weak-supervision probabilities) count only where no person answered: at or
    above ``silver_threshold`` as entities (where they overlap no accepted span), at or below
    ``1 - silver_threshold`` as incorrect spans.
    """
    scheme = get_scheme(scheme)
    doc = nlp.make_doc(decisions.text)
    accepted = filter_spans(_spans(doc, decisions.accepted))
    asked = set(decisions.votes)
    silver_yes = {key for key, p in decisions.silver.items() if p >= silver_threshold and key not in asked}
    silver_no = {key for key, p in decisions.silver.items() if p <= 1 - silver_threshold and key not in asked}
    taken = {i for span in accepted for i in range(span.start, span.end)}
    accepted += [
        span for span in filter_spans(_spans(doc, silver_yes)) if taken.isdisjoint(range(span.start, span.end))
    ]
    accepted_keys = {(span.start, span.end, span.label_) for span in accepted}
    rejected = [
        span for span in _unique(_spans(doc, decisions.rejected | silver_no))
        if (span.start, span.end, span.label_) not in accepted_keys  # E868 after snapping to tokens
    ]
    outside = _outside_tokens(doc, decisions, scheme) if decisions.answered else set()
    for span in accepted:
        outside.difference_update(range(span.start, span.end))
    doc.set_ents(accepted, outside=_runs(doc, outside), default="missing")
    doc.spans[INCORRECT_SPANS_KEY] = rejected
    return doc


def docs_from_decisions(
    nlp: Language,
    tasks: Iterable[dict[str, Any]],
    proposed: dict[int, Iterable[Sequence]] | None = None,
    scheme: str | Scheme = DEFAULT_SCHEME,
    silver: Iterable[tuple[str, Iterable[Sequence]]] | None = None,
    silver_threshold: float = 0.9,
) -> list[Doc]:
    """Training Docs from binary decisions, one per text that has any (see the module docstring).

    ``proposed`` maps an input hash to every span any rule, labeling function or model proposed
    on that text (the store's ``proposed_spans``); without it, the spans asked about are taken
    as the proposed ones. Texts whose only answers are "ignore" still yield a Doc (so their
    decisions are kept), but none of their tokens is taken as outside.

    ``silver`` (off by default, and not measured yet) adds weak-supervision labels:
    ``[(text, [(start, end, label, probability), ...]), ...]``. A span at or above
    ``silver_threshold`` becomes an entity and one at or below ``1 - silver_threshold`` an
    incorrect span, unless a person answered that question. Texts with silver spans only get a
    Doc too, with every other token missing: nobody reviewed them.
    """
    scheme = get_scheme(scheme)
    if not 0.5 < silver_threshold <= 1:
        raise ValueError(f"silver_threshold must be above 0.5 and at most 1, got {silver_threshold}")
    texts = group_decisions(tasks, proposed, silver).values()
    return [doc_from_decisions(nlp, decisions, scheme, silver_threshold) for decisions in texts]


def _spans(doc: Doc, keys: Iterable[SpanKey]) -> list[Span]:
    spans = (token_span(doc, start, end, label) for start, end, label in sorted(keys))
    return [span for span in spans if span is not None]


def _unique(spans: list[Span]) -> list[Span]:
    seen = {}
    for span in spans:
        seen.setdefault((span.start, span.end, span.label_), span)
    return list(seen.values())


def _outside_tokens(doc: Doc, decisions: TextDecisions, scheme: Scheme) -> set[int]:
    if scheme.outside == "none":
        return set()
    everything = set(range(len(doc)))
    if scheme.outside == "all":
        return everything
    rejected = decisions.rejected
    # "rejected": a token only counts as proposed while some proposal on it was not rejected.
    still_open = decisions.proposed - rejected if scheme.outside == "rejected" else decisions.proposed
    for span in _spans(doc, still_open):
        everything.difference_update(range(span.start, span.end))
    if scheme.unproposed_share < 1.0:
        # Keep a share of the unproposed tokens as outside, the same ones on every run; tokens
        # of rejected proposals always stay, and function words too if the scheme says so.
        draw = random.Random(decisions.input_hash).random
        in_proposal = {i for span in _spans(doc, decisions.proposed) for i in range(span.start, span.end)}
        function_words = scheme.function_words_outside
        everything = {
            i for i in sorted(everything)
            if i in in_proposal or (function_words and _is_function_word(doc[i])) or draw() < scheme.unproposed_share
        }
    return everything


def _is_function_word(token) -> bool:
    """Tokens that are almost never (part of) a new entity type's mention on their own."""
    return token.is_stop or token.is_punct or token.like_num or token.is_space


def _runs(doc: Doc, tokens: set[int]) -> list[Span]:
    """Contiguous runs of token indices as Spans (what ``Doc.set_ents(outside=...)`` takes)."""
    runs, start, previous = [], None, None
    for i in sorted(tokens):
        if start is None:
            start = previous = i
        elif i == previous + 1:
            previous = i
        else:
            runs.append(Span(doc, start, previous + 1))
            start = previous = i
    if start is not None:
        runs.append(Span(doc, start, previous + 1))
    return runs


# --- training ----------------------------------------------------------------------------------


def ner_config(
    lang: str = LANG, *, seed: int = SEED, max_epochs: int = MAX_EPOCHS, patience: int = 3, eval_frequency: int = 200,
    beam: bool = False, progress: bool = False,
) -> Config:
    """spaCy's own default config for ``spacy.blank(lang)`` + ``ner`` (or ``beam_ner``), trained
    from ``${paths.train}`` / ``${paths.dev}`` with incorrect spans switched on.

    ``patience`` counts evaluations without improvement (spaCy counts steps: it is
    ``patience * eval_frequency`` in the written config).
    """
    nlp = spacy.blank(lang)
    nlp.add_pipe("beam_ner" if beam else "ner", name="ner", config={"incorrect_spans_key": INCORRECT_SPANS_KEY})
    config = nlp.config.copy()
    training = config["training"]
    training.update(
        seed=seed, max_epochs=max_epochs, max_steps=0, eval_frequency=eval_frequency,
        patience=patience * eval_frequency,
    )
    config["system"]["seed"] = seed
    training["seed"] = "${system.seed}"
    training["logger"] = {"@loggers": "spacy.ConsoleLogger.v3", "progress_bar": "eval" if progress else None,
                          "console_output": True, "output_file": None}
    return config


def steps_per_epoch(config: Config, docs: Sequence[Doc]) -> int:
    """Batches in one pass over ``docs``, with the config's own batcher (its first epoch)."""
    batcher = registry.resolve({"batcher": config["training"]["batcher"]})["batcher"]
    return max(1, sum(1 for _ in batcher(docs)))


def train_ner(
    train_docs: Sequence[Doc],
    dev_docs: Sequence[Doc],
    output_dir: str | Path,
    *,
    lang: str = LANG,
    labels: Iterable[str] | None = None,
    seed: int = SEED,
    max_epochs: int = MAX_EPOCHS,
    patience: int = 3,
    eval_frequency: int | None = None,
    beam: bool = False,
    progress: bool = False,
) -> Path:
    """Train a blank ``lang`` pipeline with an ``ner`` as ``spacy train`` would, and return the
    best pipeline's path, ``output_dir/model-best`` (``model-last`` beside it).

    ``output_dir`` also gets ``config.cfg``, ``train.spacy`` and ``dev.spacy``:
    ``spacy train output_dir/config.cfg --output DIR`` repeats the run. Without
    ``eval_frequency`` the dev set is scored about once an epoch. With ``progress`` spaCy's
    console logger prints its table and a progress bar on stderr; otherwise training is silent.
    """
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_loop

    if not train_docs:
        raise ValueError("no training documents: no decisions on the training side of the split")
    if not dev_docs:
        raise ValueError("no development documents: too few texts with decisions to hold any out")
    found = {span.label_ for doc in train_docs for span in doc.ents}
    missing = sorted(set(labels or ()) - found)
    if missing:
        raise ValueError(f"no accepted span of {', '.join(missing)} in the training decisions: nothing to learn from")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    train_path, dev_path = output_dir / "train.spacy", output_dir / "dev.spacy"
    DocBin(docs=train_docs, store_user_data=False).to_disk(train_path)
    DocBin(docs=dev_docs, store_user_data=False).to_disk(dev_path)

    config = ner_config(lang, seed=seed, max_epochs=max_epochs, patience=patience, beam=beam, progress=progress)
    if eval_frequency is None:
        eval_frequency = steps_per_epoch(config, train_docs)
    config["training"].update(eval_frequency=eval_frequency, patience=patience * eval_frequency)
    config["paths"]["train"] = str(train_path.resolve())
    config["paths"]["dev"] = str(dev_path.resolve())
    config.to_disk(output_dir / "config.cfg")

    out = sys.stderr if progress else io.StringIO()
    nlp = init_nlp(config)
    train_loop(nlp, output_dir, stdout=out, stderr=out)
    return output_dir / "model-best"


def train_from_decisions(
    nlp: Language,
    tasks: Iterable[dict[str, Any]],
    output_dir: str | Path,
    *,
    proposed: dict[int, Iterable[Sequence]] | None = None,
    scheme: str | Scheme = DEFAULT_SCHEME,
    gold: str | Path | Sequence[Doc] | None = None,
    dev_share: float = 0.2,
    seed: int = SEED,
    max_epochs: int = MAX_EPOCHS,
    patience: int = 3,
    progress: bool = False,
    log: Callable[[str], Any] = lambda message: None,
) -> dict[str, Any]:
    """The whole job: split the decisions by text, convert them by ``scheme``, train, and score
    the best model on the held-out decisions (and on ``gold``, complete annotations, if given).

    Returns ``{"model": path of model-best, "scores": {...}}``.
    """
    tasks = list(tasks)
    chosen = get_scheme(scheme)
    train_tasks, dev_tasks = split_decisions(tasks, dev_share)
    if not train_tasks or not dev_tasks:
        texts = len({task_input_hash(task) for task in tasks})
        raise ValueError(f"{texts} text(s) with decisions: training needs at least two, to hold one out")
    train_docs = docs_from_decisions(nlp, train_tasks, proposed, chosen)
    dev_docs = docs_from_decisions(nlp, dev_tasks, proposed, chosen)
    labels = sorted({span["label"] for task in tasks if task["answer"] == "accept" for span in task.get("spans", [])})
    log(f"Training on {len(train_tasks):,} decisions ({len(train_docs):,} texts), holding out {len(dev_tasks):,} "
        f"({len(dev_docs):,} texts); scheme {chosen.name}, labels {', '.join(labels) or '(none)'}")
    best = train_ner(train_docs, dev_docs, output_dir, lang=nlp.lang, labels=labels, seed=seed,
                     max_epochs=max_epochs, patience=patience, beam=chosen.beam, progress=progress)
    model = spacy.load(best)
    scores: dict[str, Any] = {"scheme": chosen.name, "held_out_decisions": evaluate_decisions(model, dev_tasks)}
    if gold is not None:
        scores["gold"] = evaluate_gold(model, gold)
    return {"model": best, "scores": scores}


# --- evaluation --------------------------------------------------------------------------------


def evaluate_decisions(nlp: Language, tasks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """How often the model agrees with held-out decisions.

    The model "accepts" a span when it predicts exactly that entity (tokens and label).
    ``accept_accuracy`` is the share of accepted spans it predicts, ``reject_accuracy`` the
    share of rejected spans it does not, ``accuracy`` both together.
    """
    texts = list(group_decisions(tasks).values())
    right = Counter()
    total = Counter()
    for doc, decisions in zip(nlp.pipe(d.text for d in texts), texts):
        predicted = {(ent.start, ent.end, ent.label_) for ent in doc.ents}
        for answer, keys in (("accept", decisions.accepted), ("reject", decisions.rejected)):
            for span in _unique(_spans(doc, keys)):
                total[answer] += 1
                right[answer] += ((span.start, span.end, span.label_) in predicted) == (answer == "accept")
    return decision_accuracy(right, total)


def gold_docs(nlp: Language, path: str | Path, labels: Iterable[str] | None = None) -> list[Doc]:
    """Completely annotated reference Docs from ``{"text", "spans"}`` JSONL: every token not in
    a span is outside. Spans are snapped to whole tokens; overlapping ones keep the longest.

    With ``labels``, spans of other labels are dropped (their tokens are outside): a corpus that
    annotates chemicals and diseases scores rules for diseases on diseases only."""
    wanted = None if labels is None else set(labels)
    docs = []
    for record in read_texts(path):
        doc = nlp.make_doc(record.text)
        spans = [token_span(doc, s["start"], s["end"], s.get("label", "")) for s in record.task.get("spans", [])
                 if wanted is None or s.get("label") in wanted]
        doc.set_ents(filter_spans([span for span in spans if span is not None]), default="outside")
        docs.append(doc)
    return docs


def score_ents(predicted: Sequence[Doc], reference: Sequence[Doc]) -> dict[str, Any]:
    """Entity P/R/F, micro and per label, with the scorer of spaCy's ``ner`` (missing reference
    tokens are neither right nor wrong)."""
    scores = get_ner_prf([Example(pred, ref) for pred, ref in zip(predicted, reference)])
    return {
        "precision": scores["ents_p"], "recall": scores["ents_r"], "f": scores["ents_f"],
        "per_label": {label: {"precision": s["p"], "recall": s["r"], "f": s["f"]}
                      for label, s in (scores["ents_per_type"] or {}).items()},
    }


def evaluate_gold(nlp: Language, gold: str | Path | Sequence[Doc]) -> dict[str, Any]:
    """P/R/F per label and micro against complete annotations (a JSONL path or reference Docs)."""
    reference = gold_docs(nlp, gold) if isinstance(gold, (str, Path)) else list(gold)
    predicted = list(nlp.pipe(doc.text for doc in reference))
    return {"texts": len(reference), **score_ents(predicted, reference)}

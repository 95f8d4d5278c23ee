"""The rules, corrected by the decisions, as a spaCy component: what a pipeline keeps of the loop
besides its NER model.

Where a blank NER model cannot learn an entity type from a few thousand weakly labelled texts,
the model the decisions train stays below the rules whatever the decisions (WNUT-17: a model
trained on the pool's *full gold* scores F 0.105 on the test split, the rules 0.198). The
decisions still improve the rules: a rejected string is wrong at its other occurrences, an
accepted one right. ``bootstrap_rules`` applies the pattern rules to a Doc as the training set
reads them (:mod:`bootstrap.weak_labels`): a span some positive rule proposes and no negative
rule of its label contradicts is an entity, a span several labels propose takes the label of
its most specific rule (the one with the fewest matches in the corpus, as
``aggregate.most_probable_class`` breaks ties), and every decided string is carried, with the
training set's own functions — so the component labels a new text as the training set labels
a stored one, with the rules' votes in place of the aggregate's probabilities (the user's
Python labeling functions stay out: a pipeline must load without them).

Placed before ``ner`` its entities are kept and the model adds those the rules miss: spaCy's
NER predicts around preset entities. :func:`with_rules` builds that pipeline from a trained
one; the training (``weak_labels.train_model``) scores both on the held-out texts and keeps the
better (:mod:`bootstrap.comparison`). The factory is registered under spaCy's
``spacy_factories`` entry point, so ``spacy.load`` opens such a pipeline wherever bootstrap is
installed, without importing it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import filter_spans

from .candidates import Candidate, candidates_from_matches
from .config import PHRASE_ATTR, PipelineRules
from .corpus import Record
from .labelmatrix import overlaps
from .matching import RuleMatcher
from .rules import load_rules

FACTORY = "bootstrap_rules"
# the pipelines a training may hand over, from the least change to the rules to the most
# (``comparison.choose`` climbs it): the corrected rules, the model's ner after them, the model alone
LADDER = ("rules", "rules + ner", "ner")
PATTERNS_FILE = "patterns.jsonl"
CORRECTIONS_FILE = "corrections.json"
Carried = Mapping[tuple[str, str, bool], str]  # weak_labels._carried: (string, label, overlapping) -> answer


@Language.factory(FACTORY, default_config={"phrase_attr": PHRASE_ATTR})
def make_corrected_rules(nlp: Language, name: str, phrase_attr: str) -> CorrectedRules:
    return CorrectedRules(nlp, name, phrase_attr=phrase_attr)


class CorrectedRules:
    """Sets ``doc.ents`` from the rules and the decided strings (module docstring)."""

    def __init__(self, nlp: Language, name: str = FACTORY, *, phrase_attr: str = PHRASE_ATTR):
        self.nlp, self.name, self.phrase_attr = nlp, name, phrase_attr
        self.patterns = ""  # the pattern files' lines, one JSONL text
        self.carried: dict[tuple[str, str, bool], str] = {}
        self.specificity: dict[str, int] = {}  # rule id -> its matches in the corpus
        self._matcher: RuleMatcher | None = None
        self._accepted = None  # a PhraseMatcher of the accepted strings

    def set_rules(self, pattern_files: Sequence[str | Path], carried: Carried, specificity: Mapping[str, int]) -> None:
        """The rules of ``pattern_files``, the strings the decisions settled (``carried``) and
        each rule's matches in the corpus (to break ties between labels)."""
        self.patterns = "\n".join(Path(path).read_text(encoding="utf8").rstrip("\n") for path in pattern_files) + "\n"
        self.carried, self.specificity = dict(carried), dict(specificity)
        self._build(pattern_files)

    def _build(self, pattern_files: Sequence[str | Path]) -> None:
        from .weak_labels import accepted_string_matcher

        self._matcher = RuleMatcher(self.nlp, load_rules(pattern_files, self.nlp.vocab), self.phrase_attr)
        self._accepted = accepted_string_matcher(self.nlp, self.carried)

    def __call__(self, doc: Doc) -> Doc:
        from .weak_labels import corrected_entities

        if self._matcher is None:
            raise ValueError(f"the {FACTORY!r} component has no rules: call set_rules() or load it from disk")
        matches = self._matcher(doc)
        candidates = candidates_from_matches(Record(doc.text, 0, "doc"), matches, self._matcher.rules)
        votes = [(c.start, c.end, c.label, probability, overlapping) for c, probability, overlapping in self._read(candidates)]
        ents = corrected_entities(doc, votes, self.carried, self._accepted)
        taken = {i for span in ents for i in range(span.start, span.end)}
        kept = [ent for ent in doc.ents if not taken & set(range(ent.start, ent.end))]
        doc.ents = filter_spans([*ents, *kept])
        return doc

    def _read(self, candidates: Sequence[Candidate]) -> Iterable[tuple[Candidate, float, bool]]:
        """Each candidate with the rules' probability (1: an entity of this label; 0.5: a negative
        rule contradicts it, not an entity; 0: another label of its span wins) and whether it
        overlaps another span, the setting decisions are carried in."""
        import numpy as np

        by_span: dict[tuple[int, int], list[Candidate]] = defaultdict(list)
        for c in candidates:
            by_span[(c.start, c.end)].append(c)
        spans = np.array(list(by_span), dtype=np.int64).reshape(-1, 2)
        overlapping_spans = overlaps(np.zeros(len(spans), dtype=np.int64), spans[:, 0], spans[:, 1]).tolist()
        for rivals, overlapping in zip(by_span.values(), overlapping_spans):
            standing = [c for c in rivals if not c.votes_against]
            winner = min(standing, key=self._strength) if standing else None
            for c in rivals:
                yield c, 0.5 if c.votes_against else (1.0 if c is winner else 0.0), overlapping

    def _strength(self, candidate: Candidate) -> tuple[int, int]:
        """Most votes first, then the most specific voter (fewest matches in the corpus)."""
        fewest = min((self.specificity.get(rule, 0) for rule in candidate.votes_for), default=0)
        return -len(candidate.votes_for), fewest

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / PATTERNS_FILE).write_text(self.patterns, encoding="utf8")
        corrections = {"carried": [[*key, answer] for key, answer in sorted(self.carried.items())],
                       "specificity": self.specificity}
        (path / CORRECTIONS_FILE).write_text(json.dumps(corrections, indent=1) + "\n", encoding="utf8")

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> CorrectedRules:
        path = Path(path)
        self.patterns = (path / PATTERNS_FILE).read_text(encoding="utf8")
        corrections = json.loads((path / CORRECTIONS_FILE).read_text(encoding="utf8"))
        self.carried = {(string, label, bool(overlapping)): answer
                        for string, label, overlapping, answer in corrections["carried"]}
        self.specificity = {rule: int(n) for rule, n in corrections["specificity"].items()}
        self._build([path / PATTERNS_FILE])
        return self


def pipeline_choices(model: str | Path, output_dir: Path, rules: PipelineRules, carried: Carried,
                     specificity: Mapping[str, int]) -> dict[str, Path]:
    """The pipelines besides the trained ``model`` (its ``ner`` alone) that a training may hand
    over, saved under ``output_dir``: the corrected rules before the model's ``ner``, and the
    corrected rules alone (where the model adds more wrong spans than right ones: WNUT-17)."""
    import shutil

    import spacy

    blank = output_dir / "blank"
    output_dir.mkdir(parents=True, exist_ok=True)
    spacy.blank(spacy.load(model).lang).to_disk(blank)
    try:
        return {"rules + ner": with_rules(model, output_dir / "rules-ner", rules.pattern_files, carried, specificity,
                                          phrase_attr=rules.phrase_attr),
                "rules": with_rules(blank, output_dir / "rules", rules.pattern_files, carried, specificity,
                                    phrase_attr=rules.phrase_attr)}
    finally:
        shutil.rmtree(blank, ignore_errors=True)


def rule_specificity(table: Any) -> dict[str, int]:
    """Each rule's matches in the corpus (``CandidateTable``), the tie-breaker between labels."""
    import numpy as np

    from .labelmatrix import ABSTAIN

    coverage = (table.L != ABSTAIN).sum(axis=0) if table.n_rows else np.zeros(len(table.columns), dtype=int)
    return {column.name: int(n) for column, n in zip(table.columns, coverage) if column.kind == "rule"}


def corrected_rules(lang: str, rules: PipelineRules, carried: Carried, specificity: Mapping[str, int]) -> Language:
    """A blank pipeline of ``lang`` with the corrected rules alone, in memory: what a training
    hands over when no model beats them (``pipeline_choices``' "rules", without a model to train)."""
    import spacy

    nlp = spacy.blank(lang)
    nlp.add_pipe(FACTORY, config={"phrase_attr": rules.phrase_attr}).set_rules(rules.pattern_files, carried, specificity)
    return nlp


def with_rules(model: str | Path, output: str | Path, pattern_files: Sequence[str | Path], carried: Carried,
               specificity: Mapping[str, int], *, phrase_attr: str = PHRASE_ATTR) -> Path:
    """The pipeline at ``model`` with the corrected rules before its ``ner``, saved to ``output``."""
    import spacy

    nlp = spacy.load(model)
    component = nlp.add_pipe(FACTORY, before="ner" if "ner" in nlp.pipe_names else None,
                             config={"phrase_attr": phrase_attr})
    component.set_rules(pattern_files, carried, specificity)
    nlp.to_disk(output)
    return Path(output)

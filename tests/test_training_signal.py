"""What training from binary decisions must show on real data (issue 5).

* A model trained from gold-answered decisions on the rules' candidates finds entities in unseen
  texts that no positive rule matches: recall beyond the rules.
* The rejects, given to spaCy as incorrect spans, measurably teach the model: trained on the same
  decisions without them, it predicts more of the spans people rejected.

Both train tiny models (a seed makes each run identical), on 80 NCBI-disease abstracts.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest
import spacy

from bootstrap.candidates import generate_candidates
from bootstrap.corpus import read_texts
from bootstrap.hashing import input_hash, task_hash
from bootstrap.matching import RuleMatcher
from bootstrap.rules import load_rules
from bootstrap.train import INCORRECT_SPANS_KEY, docs_from_decisions, evaluate_decisions, gold_docs, split_decisions, train_ner

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ROOT / "examples" / "diseases" / "patterns.jsonl"
TEXTS = 80
EPOCHS = 4


def oracle_tasks(nlp, records):
    """Every rule candidate answered from gold, as Prodigy tasks, and the spans proposed per text."""
    matcher = RuleMatcher(nlp, load_rules(PATTERNS, nlp.vocab))
    tasks, proposed = [], {}
    for result in generate_candidates(nlp, matcher, records):
        gold = {(s["start"], s["end"], s["label"]) for s in result.record.task["spans"]}
        keys = sorted({(c.start, c.end, c.label) for c in result.candidates})
        proposed[result.record.input_hash] = keys
        for start, end, label in keys:
            key = input_hash(result.record.text)
            tasks.append({
                "text": result.record.text, "_input_hash": key, "_task_hash": task_hash(key, start, end, label),
                "spans": [{"start": start, "end": end, "label": label}],
                "answer": "accept" if (start, end, label) in gold else "reject", "meta": {},
            })
    return tasks, proposed


@pytest.fixture(scope="module")
def decisions(shared_data):
    nlp = spacy.blank("en")
    records = list(islice(read_texts(shared_data / "ncbi-disease" / "train.jsonl"), TEXTS))
    return oracle_tasks(nlp, records)


def train(nlp, tasks, proposed, output, scheme, keep_rejects=True):
    train_tasks, dev_tasks = split_decisions(tasks)
    train_docs = docs_from_decisions(nlp, train_tasks, proposed, scheme)
    dev_docs = docs_from_decisions(nlp, dev_tasks, proposed, scheme)
    if not keep_rejects:
        for doc in train_docs + dev_docs:
            doc.spans[INCORRECT_SPANS_KEY] = []
    return spacy.load(train_ner(train_docs, dev_docs, output, labels=["DISEASE"], seed=0, max_epochs=EPOCHS)), dev_tasks


def test_a_model_from_decisions_finds_entities_no_rule_matches(decisions, shared_data, tmp_path):
    nlp = spacy.blank("en")
    tasks, proposed = decisions
    model, _ = train(nlp, tasks, proposed, tmp_path / "model", "sparse-outside")
    test = list(islice(read_texts(shared_data / "ncbi-disease" / "test.jsonl"), 50))
    reference = gold_docs(nlp, shared_data / "ncbi-disease" / "test.jsonl")[:50]
    matcher = RuleMatcher(nlp, load_rules(PATTERNS, nlp.vocab))
    beyond, found = 0, 0
    for record, gold_doc, result in zip(test, reference, generate_candidates(nlp, matcher, test)):
        gold = {(e.start_char, e.end_char) for e in gold_doc.ents}
        by_rules = {(c.start, c.end) for c in result.candidates}
        for ent in model(record.text).ents:
            span = (ent.start_char, ent.end_char)
            found += span in gold
            beyond += span in gold and span not in by_rules
    assert found > 20
    assert beyond >= 3, f"{beyond} correct entities no rule proposed (of {found} correct)"


def test_rejects_as_incorrect_spans_teach_the_model_what_is_not_an_entity(decisions, tmp_path):
    """Same decisions, same seed; only the incorrect spans differ. Under reviewed-outside the
    rejected spans' tokens are not outside, so the incorrect spans are the only signal about them."""
    nlp = spacy.blank("en")
    tasks, proposed = decisions
    with_rejects, held_out = train(nlp, tasks, proposed, tmp_path / "with", "reviewed-outside")
    without_rejects, _ = train(nlp, tasks, proposed, tmp_path / "without", "reviewed-outside", keep_rejects=False)
    scored_with = evaluate_decisions(with_rejects, held_out)
    scored_without = evaluate_decisions(without_rejects, held_out)
    assert scored_with["rejected"] >= 20
    assert scored_with["reject_accuracy"] > scored_without["reject_accuracy"], (scored_with, scored_without)

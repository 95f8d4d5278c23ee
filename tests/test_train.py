"""Training from binary decisions, on a real slice of NCBI-disease answered by an oracle."""

from __future__ import annotations

import importlib.util
import json
import random
from itertools import islice
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import load_config

from bootstrap.candidates import generate_candidates
from bootstrap.corpus import read_texts
from bootstrap.errors import InputError
from bootstrap.hashing import input_hash, task_hash
from bootstrap.matching import RuleMatcher
from bootstrap.model import span_probabilities
from bootstrap.rules import load_rules
from bootstrap.train import (
    DEFAULT_SCHEME, INCORRECT_SPANS_KEY, SCHEMES, docs_from_decisions, evaluate_decisions, evaluate_gold,
    gold_docs, read_decisions, split_decisions, train_ner,
)

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = next(p for p in (ROOT / "examples" / "diseases" / "patterns.jsonl",
                            ROOT / "examples" / "ncbi-disease" / "patterns.jsonl") if p.exists())


def binary_task(text: str, start: int, end: int, label: str, answer: str) -> dict:
    key = input_hash(text)
    return {
        "text": text, "_input_hash": key, "_task_hash": task_hash(key, start, end, label),
        "spans": [{"start": start, "end": end, "label": label}], "answer": answer, "meta": {},
    }


@pytest.fixture(scope="module")
def decisions(shared_data):
    """Oracle answers to every rule candidate on 30 abstracts, plus the gold of those texts."""
    nlp = spacy.blank("en")
    matcher = RuleMatcher(nlp, load_rules(PATTERNS, nlp.vocab))
    records = list(islice(read_texts(shared_data / "ncbi-disease" / "train.jsonl"), 30))
    tasks, proposed = [], {}
    for result in generate_candidates(nlp, matcher, records):
        gold = {(s["start"], s["end"], s["label"]) for s in result.record.task["spans"]}
        keys = sorted({(c.start, c.end, c.label) for c in result.candidates})
        proposed[result.record.input_hash] = keys
        tasks += [binary_task(result.record.text, *key, "accept" if key in gold else "reject") for key in keys]
    return tasks, proposed


def spans_of(tasks, answer):
    return {(t["_input_hash"], t["spans"][0]["start"], t["spans"][0]["end"]) for t in tasks if t["answer"] == answer}


@pytest.mark.parametrize("scheme", ["missing", "reviewed-outside", "rejected-outside", "all-outside", "rejected-outside-sampled", "sparse-outside"])
def test_docs_hold_decisions_and_the_schemes_outside_tokens(nlp, decisions, scheme):
    tasks, proposed = decisions
    docs = docs_from_decisions(nlp, tasks, proposed, scheme)
    assert len(docs) == len({t["_input_hash"] for t in tasks})
    accepted, rejected = spans_of(tasks, "accept"), spans_of(tasks, "reject")
    assert accepted and rejected
    ents = {(input_hash(d.text), e.start_char, e.end_char) for d in docs for e in d.ents}
    incorrect = {(input_hash(d.text), s.start_char, s.end_char) for d in docs for s in d.spans[INCORRECT_SPANS_KEY]}
    assert ents <= accepted and len(ents) >= 0.9 * len(accepted)  # overlapping accepts keep the longest
    assert incorrect == rejected
    for doc in docs:
        in_ent = {i for e in doc.ents for i in range(e.start, e.end)}
        in_proposal = {i for s, e, _ in proposed[input_hash(doc.text)] for i in range(len(doc))
                       if doc[i].idx >= s and doc[i].idx + len(doc[i]) <= e}
        only_rejected = {i for s in doc.spans[INCORRECT_SPANS_KEY] for i in range(s.start, s.end)} - in_ent
        iob = {i: doc[i].ent_iob_ for i in range(len(doc)) if i not in in_ent}
        if scheme == "missing":
            assert set(iob.values()) <= {""}
        elif scheme == "all-outside":
            assert set(iob.values()) <= {"O"}
        else:
            unproposed = [iob[i] for i in iob if i not in in_proposal]
            if SCHEMES[scheme].unproposed_share < 1:
                if SCHEMES[scheme].function_words_outside:
                    assert all(iob[i] == "O" for i in iob if i not in in_proposal and (doc[i].is_stop or doc[i].is_punct))
                    unproposed = [iob[i] for i in iob if i not in in_proposal and not (
                        doc[i].is_stop or doc[i].is_punct or doc[i].like_num or doc[i].is_space)]
                assert set(unproposed) <= {"", "O"}
                assert abs(unproposed.count("O") / len(unproposed) - SCHEMES[scheme].unproposed_share) < 0.1
            else:
                assert set(unproposed) <= {"O"}
            # Every proposal here was answered, so a proposed token outside the ents was rejected.
            expected = "" if scheme == "reviewed-outside" else "O"
            assert all(iob[i] == expected for i in only_rejected)
    again = docs_from_decisions(nlp, tasks, proposed, scheme)
    assert [[t.ent_iob_ for t in d] for d in again] == [[t.ent_iob_ for t in d] for d in docs]


def test_conflicting_answers_are_resolved_by_majority(nlp):
    text = "Patients with cystic fibrosis were studied."
    yes, no = binary_task(text, 14, 29, "DISEASE", "accept"), binary_task(text, 14, 29, "DISEASE", "reject")
    (tie,) = docs_from_decisions(nlp, [yes, no], scheme="all-outside")
    assert not tie.ents and not tie.spans[INCORRECT_SPANS_KEY]
    (majority,) = docs_from_decisions(nlp, [yes, no, dict(yes)], scheme="all-outside")
    assert [(e.text, e.label_) for e in majority.ents] == [("cystic fibrosis", "DISEASE")]
    assert not majority.spans[INCORRECT_SPANS_KEY]
    # The same span rejected under another label is no conflict, and spaCy trains on it (no E868).
    other = binary_task(text, 14, 29, "GENE", "reject")
    trainer = spacy.blank("en")
    trainer.add_pipe("ner", config={"incorrect_spans_key": INCORRECT_SPANS_KEY})
    (doc,) = docs_from_decisions(trainer, [yes, other], scheme="all-outside")
    examples = [Example(trainer.make_doc(text), doc)]
    trainer.initialize(lambda: examples)
    assert trainer.update(examples)["ner"] >= 0


def test_spans_on_whitespace_are_trimmed_or_dropped(nlp):
    text = "Severe  asthma  attacks"
    tasks = [binary_task(text, 6, 15, "DISEASE", "accept"), binary_task(text, 6, 8, "DISEASE", "reject")]
    (doc,) = docs_from_decisions(nlp, tasks, scheme="all-outside")
    assert [e.text for e in doc.ents] == ["asthma"]
    assert not doc.spans[INCORRECT_SPANS_KEY]


def test_tasks_without_a_valid_answer_are_refused(nlp, tmp_path):
    task = binary_task("Asthma.", 0, 6, "DISEASE", "maybe")
    with pytest.raises(ValueError, match="answer"):
        docs_from_decisions(nlp, [task])
    path = tmp_path / "decisions.jsonl"
    path.write_text(json.dumps(binary_task("Asthma.", 0, 6, "DISEASE", "accept")) + "\n" + json.dumps(task) + "\n")
    with pytest.raises(InputError) as error:
        read_decisions(path)
    assert str(error.value).startswith(f"{path}:2: \"answer\" must be one of")
    with pytest.raises(ValueError, match="unknown training scheme"):
        docs_from_decisions(nlp, [], scheme="nonsense")
    assert DEFAULT_SCHEME in SCHEMES


def test_split_is_stable_and_keeps_each_text_on_one_side(decisions):
    tasks, _ = decisions
    train, dev = split_decisions(tasks)
    shuffled = list(tasks)
    random.Random(1).shuffle(shuffled)
    train2, dev2 = split_decisions(shuffled)
    hashes = lambda ts: {t["_task_hash"] for t in ts}  # noqa: E731
    assert hashes(train) == hashes(train2) and hashes(dev) == hashes(dev2)
    assert dev and train and not ({t["_input_hash"] for t in train} & {t["_input_hash"] for t in dev})
    assert len(train) + len(dev) == len(tasks)
    # A text keeps its side when other texts join the dataset.
    train3, dev3 = split_decisions(tasks[: len(tasks) // 2])
    assert hashes(dev3) <= hashes(dev) and hashes(train3) <= hashes(train)


# Every candidate is answered here, so only a scheme that keeps rejected tokens missing gives
# training docs with both missing and outside tokens, which the DocBin must keep apart.
MIXED = "reviewed-outside"


@pytest.fixture(scope="module")
def trained(decisions, tmp_path_factory):
    tasks, proposed = decisions
    nlp = spacy.blank("en")
    train_tasks, dev_tasks = split_decisions(tasks)
    output = tmp_path_factory.mktemp("model")
    best = train_ner(
        docs_from_decisions(nlp, train_tasks, proposed, MIXED), docs_from_decisions(nlp, dev_tasks, proposed, MIXED),
        output,
        lang="en", labels=["DISEASE"], seed=0, max_epochs=6,
    )
    return output, best, train_tasks, dev_tasks


def test_train_writes_a_pipeline_spacy_loads_and_its_config(trained):
    output, best, train_tasks, _ = trained
    assert best == output / "model-best"
    model = spacy.load(best)
    assert "DISEASE" in model.get_pipe("ner").labels
    texts = list(dict.fromkeys(t["text"] for t in train_tasks))
    predicted = [e for doc in model.pipe(texts) for e in doc.ents]
    assert predicted and {e.label_ for e in predicted} == {"DISEASE"}
    config = load_config(output / "config.cfg")
    assert config["components"]["ner"]["incorrect_spans_key"] == INCORRECT_SPANS_KEY
    assert config["paths"]["train"] == str((output / "train.spacy").resolve())
    assert config["training"]["seed"] == 0 or config["system"]["seed"] == 0


def test_docbins_keep_missing_outside_and_incorrect_spans(trained, decisions, nlp):
    output, _, train_tasks, _ = trained
    _, proposed = decisions
    original = docs_from_decisions(nlp, train_tasks, proposed, MIXED)
    loaded = list(DocBin().from_disk(output / "train.spacy").get_docs(nlp.vocab))
    assert [[t.ent_iob_ for t in d] for d in loaded] == [[t.ent_iob_ for t in d] for d in original]
    assert {"", "O", "B"} <= {t.ent_iob_ for d in loaded for t in d}
    assert [[(s.start, s.end, s.label_) for s in d.spans[INCORRECT_SPANS_KEY]] for d in loaded] == \
        [[(s.start, s.end, s.label_) for s in d.spans[INCORRECT_SPANS_KEY]] for d in original]


def test_span_probabilities_are_probabilities_of_real_spans(trained):
    _, best, _, dev_tasks = trained
    model = spacy.load(best)
    texts = list(dict.fromkeys(t["text"] for t in dev_tasks))[:3]
    results = span_probabilities(model, texts)
    assert len(results) == len(texts) and any(results)
    for text, scores in zip(texts, results):
        doc = model.make_doc(text)
        for (start, end, label), prob in scores.items():
            assert 0.0 <= prob <= 1.0 and label == "DISEASE"
            assert doc.char_span(start, end) is not None


def test_evaluations_count_decisions_and_gold(trained, shared_data):
    _, best, _, dev_tasks = trained
    model = spacy.load(best)
    scores = evaluate_decisions(model, dev_tasks)
    assert scores["accepted"] == sum(t["answer"] == "accept" for t in dev_tasks)
    assert scores["rejected"] == sum(t["answer"] == "reject" for t in dev_tasks)
    assert all(0 <= scores[k] <= 1 for k in ("accept_accuracy", "reject_accuracy", "accuracy"))
    gold = gold_docs(model, shared_data / "ncbi-disease" / "test.jsonl")[:10]
    assert all(t.ent_iob_ in ("B", "I", "O") for d in gold for t in d)
    result = evaluate_gold(model, gold)
    assert result["texts"] == 10 and set(result["per_label"]) <= {"DISEASE"}
    assert 0 <= result["precision"] <= 1 and 0 <= result["f"] <= 1
    # Gold scored against itself is perfect: the scoring is wired right.
    assert evaluate_gold(_Replay(gold), gold)["f"] == 1.0


class _Replay:
    """A stand-in "model" that predicts the gold annotation, to check the scoring alone."""

    def __init__(self, docs):
        self.docs = {d.text: d for d in docs}

    def pipe(self, texts):
        return (self.docs[text] for text in texts)


def test_cli_trains_from_a_prodigy_jsonl_file(decisions, shared_data, tmp_path):
    from typer.testing import CliRunner

    from bootstrap.cli import app

    tasks, _ = decisions
    path = tmp_path / "decisions.jsonl"
    path.write_text("".join(json.dumps(task) + "\n" for task in tasks[:150]))
    gold = tmp_path / "gold.jsonl"
    with (shared_data / "ncbi-disease" / "test.jsonl").open() as lines:
        gold.write_text("".join(islice(lines, 5)))
    output = tmp_path / "out"
    result = CliRunner().invoke(app, ["train", "--from-jsonl", str(path), "--output", str(output),
                                      "--max-epochs", "1", "--eval", str(gold)])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout[result.stdout.index("{"):])
    assert scores["scheme"] == DEFAULT_SCHEME and scores["gold"]["texts"] == 5
    assert scores["held_out_decisions"]["accepted"] + scores["held_out_decisions"]["rejected"] > 0
    assert spacy.load(output / "model-best").pipe_names == ["ner"]

    path.write_text(json.dumps(tasks[0]) + "\n" + json.dumps({**tasks[1], "answer": "yes"}) + "\n")
    result = CliRunner().invoke(app, ["train", "--from-jsonl", str(path), "--output", str(output)])
    assert result.exit_code == 1 and f"{path}:2: \"answer\" must be one of" in result.output
    assert "Traceback" not in result.output


def test_same_decisions_and_seed_give_the_same_model(decisions, tmp_path):
    tasks, proposed = decisions
    nlp = spacy.blank("en")
    texts = list(dict.fromkeys(t["text"] for t in tasks))[:12]
    few = [t for t in tasks if t["text"] in texts]
    train_tasks, dev_tasks = split_decisions(few)
    train_docs, dev_docs = docs_from_decisions(nlp, train_tasks, proposed), docs_from_decisions(nlp, dev_tasks, proposed)
    weights = []
    for run in ("a", "b"):
        best = train_ner(train_docs, dev_docs, tmp_path / run, seed=7, max_epochs=1)
        weights.append(spacy.load(best).get_pipe("ner").model.to_bytes())
    assert weights[0] == weights[1]


def test_silver_spans_count_only_where_nobody_answered(nlp):
    text = "Asthma and eczema and gout were common."
    tasks = [binary_task(text, 0, 6, "DISEASE", "reject")]
    silver = [
        (text, [(0, 6, "DISEASE", 0.99), (11, 17, "DISEASE", 0.95), (22, 26, "DISEASE", 0.02), (27, 31, "DISEASE", 0.6)]),
        ("Gout again.", [(0, 4, "DISEASE", 0.97)]),
    ]
    answered, silver_only = docs_from_decisions(nlp, tasks, scheme="missing", silver=silver)
    assert [e.text for e in answered.ents] == ["eczema"]  # the human reject of "Asthma" wins
    assert sorted(s.text for s in answered.spans[INCORRECT_SPANS_KEY]) == ["Asthma", "gout"]
    assert [e.text for e in silver_only.ents] == ["Gout"]
    assert [t.ent_iob_ for t in silver_only] == ["B", "", ""]  # unreviewed: the rest stays missing
    (without,) = docs_from_decisions(nlp, tasks, scheme="missing")
    assert not without.ents


def test_scheme_benchmark_simulates_an_oracle_on_gold(shared_data, nlp):
    spec = importlib.util.spec_from_file_location("training_schemes", ROOT / "benchmarks" / "training_schemes.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rules = load_rules(bench.PATTERNS, nlp.vocab)
    records = list(islice(read_texts(shared_data / "ncbi-disease" / "train.jsonl"), 20))
    gold = {(r.input_hash, s["start"], s["end"], s["label"]) for r in records for s in r.task["spans"]}
    tasks, proposed = bench.simulate_decisions(nlp, rules, records, model_share=1.0, answer_share=1.0, seed=0)
    for task in tasks:
        span = task["spans"][0]
        key = (task["_input_hash"], span["start"], span["end"], span["label"])
        assert (task["answer"] == "accept") == (key in gold)
        assert key[1:] in proposed[task["_input_hash"]]
    by_model = [t for t in tasks if t["meta"]["source"] == "model"]
    assert by_model and all(t["answer"] == "accept" for t in by_model)
    assert sum(t["answer"] == "accept" for t in tasks) >= 0.95 * len(gold)  # all but unalignable mentions
    rules_only, _ = bench.simulate_decisions(nlp, rules, records, model_share=0.0, answer_share=0.5, seed=0)
    assert {t["meta"]["source"] for t in rules_only} == {"rules"} and len(rules_only) < len(tasks) - len(by_model)
    reference = gold_docs(nlp, shared_data / "ncbi-disease" / "test.jsonl")[:20]
    plain = bench.rules_baseline(nlp, rules, reference, use_negative=False)
    vetoed = bench.rules_baseline(nlp, rules, reference, use_negative=True)
    assert 0 < plain["f"] < 1 and vetoed["recall"] <= plain["recall"]

"""The rules corrected by the decisions, as a spaCy component that a saved pipeline keeps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import spacy
from spacy.util import filter_spans

from bootstrap.corpus import Record
from bootstrap.hashing import input_hash
from bootstrap.pipeline import FACTORY, rule_specificity, with_rules
from bootstrap.table import build_table
from bootstrap.train import token_span

ROOT = Path(__file__).resolve().parents[1]
DISEASES = ROOT / "examples" / "diseases" / "patterns.jsonl"
SOCIAL = ROOT / "examples" / "social-media" / "patterns.jsonl"


def texts_of(shared_data: Path, name: str, n: int) -> list[str]:
    lines = (shared_data / name / "dev.jsonl").read_text(encoding="utf8").splitlines()[:n]
    return [json.loads(line)["text"] for line in lines]


def table_of(patterns: Path, texts: list[str]):
    return build_table([patterns], [Record(text, input_hash(text), f"t:{i}") for i, text in enumerate(texts)])


def rules_component(patterns: Path, table, carried=None):
    nlp = spacy.blank("en")
    nlp.add_pipe(FACTORY).set_rules([patterns], carried or {}, rule_specificity(table))
    return nlp


def spans(doc) -> set[tuple[str, int, int, str]]:
    return {(ent.text, ent.start_char, ent.end_char, ent.label_) for ent in doc.ents}


def test_without_decisions_it_labels_what_the_rules_label(shared_data):
    """One label: every candidate no negative rule contradicts, longest first (simulate's rules line)."""
    texts = texts_of(shared_data, "ncbi-disease", 80)
    table = table_of(DISEASES, texts)
    nlp = rules_component(DISEASES, table)
    from bootstrap.candidates import generate_candidates
    from bootstrap.matching import RuleMatcher
    from bootstrap.rules import load_rules

    blank = spacy.blank("en")
    matcher = RuleMatcher(blank, load_rules([DISEASES], blank.vocab))
    records = [Record(text, input_hash(text), f"t:{i}") for i, text in enumerate(texts)]
    found = 0
    for result in generate_candidates(blank, matcher, records):
        doc = result.doc
        expected = filter_spans([s for s in (token_span(doc, c.start, c.end, c.label)
                                             for c in result.candidates if not c.votes_against) if s is not None])
        predicted = nlp(result.record.text)
        assert spans(predicted) == {(s.text, s.start_char, s.end_char, s.label_) for s in expected}
        found += len(expected)
    assert found > 20


def test_a_rejected_string_goes_everywhere_and_an_accepted_one_comes_everywhere(shared_data):
    texts = texts_of(shared_data, "ncbi-disease", 200)
    table = table_of(DISEASES, texts)
    plain = rules_component(DISEASES, table)
    labelled = [(ent.text, ent.label_) for text in texts for ent in plain(text).ents]
    rejected = max(set(labelled), key=labelled.count)  # the most frequent string the rules label
    assert labelled.count(rejected) >= 2
    # decisions are carried per setting: standing alone, or overlapping another candidate
    carried = {(rejected[0].lower(), rejected[1], False): "reject", (rejected[0].lower(), rejected[1], True): "reject",
               ("cells", "DISEASE", False): "accept"}
    corrected = rules_component(DISEASES, table, carried)
    after = [(ent.text, ent.label_) for text in texts for ent in corrected(text).ents]
    assert rejected not in after
    cells = sum(token.lower_ == "cells" and not token.ent_type_ for text in texts for token in plain(text))
    assert after.count(("cells", "DISEASE")) == cells > 10
    # everything else is as before
    assert sorted(e for e in after if e[0] != "cells") == sorted(e for e in labelled if e != rejected)


def test_a_span_two_labels_propose_takes_its_most_specific_rules_label(tmp_path):
    patterns = tmp_path / "patterns.jsonl"
    patterns.write_text("\n".join(json.dumps(p) for p in [
        {"label": "PERSON", "id": "capitalised", "pattern": [{"IS_TITLE": True, "IS_SENT_START": False}]},
        {"label": "LOCATION", "id": "places", "pattern": [{"LOWER": {"IN": ["europe", "paris"]}}]},
    ]) + "\n", encoding="utf8")
    texts = ["we flew to Europe and then Paris with Anna", "so Europe it is , said Mark to Lena"]
    table = table_of(patterns, texts)
    nlp = rules_component(patterns, table)
    assert {(e.text, e.label_) for e in nlp(texts[0]).ents} == {("Europe", "LOCATION"), ("Paris", "LOCATION"),
                                                               ("Anna", "PERSON")}


def test_a_saved_pipeline_loads_without_importing_bootstrap(shared_data, tmp_path):
    """The factory is registered by spaCy's entry point: a user's script needs no import of ours."""
    texts = texts_of(shared_data, "ncbi-disease", 40)
    table = table_of(DISEASES, texts)
    spacy.blank("en").to_disk(tmp_path / "model")  # the rules alone: a pipeline without ner
    carried = {("cancer", "DISEASE", False): "reject"}
    saved = with_rules(tmp_path / "model", tmp_path / "pipeline", [DISEASES], carried, rule_specificity(table))
    expected = [sorted([e.text, e.start_char, e.end_char, e.label_] for e in rules_component(DISEASES, table, carried)(text).ents)
                for text in texts]
    script = ("import json, sys, spacy\n"
              f"nlp = spacy.load({str(saved)!r})\n"
              "texts = json.loads(sys.stdin.read())\n"
              "print(json.dumps({'pipes': nlp.pipe_names,\n"
              "                  'spans': [sorted([e.text, e.start_char, e.end_char, e.label_] for e in nlp(t).ents) for t in texts]}))\n")
    out = subprocess.run([sys.executable, "-c", script], input=json.dumps(texts), capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    result = json.loads(out.stdout)
    assert result["pipes"] == [FACTORY]
    assert result["spans"] == expected and any(expected)
    assert not any(span[0].lower() == "cancer" for spans in expected for span in spans)


def test_a_training_hands_over_the_best_pipeline_on_the_held_out_texts(tmp_path, answer_from_gold, monkeypatch):
    """The choice, not the model's quality: an untrained ``ner`` stands in for spaCy's training."""
    from bootstrap import train
    from bootstrap.comparison import HANDOVER_CONFIDENCE
    from bootstrap.config import PipelineRules
    from bootstrap.gold import load_gold
    from bootstrap.handoff import HandoffPolicy
    from bootstrap.session import Session, SessionConfig
    from bootstrap.weak_labels import train_model, training_set_from_store

    example = ROOT / "examples" / "diseases"
    session = Session.from_files([DISEASES], example / "texts.jsonl", db=tmp_path / "d.db", dataset="d",
                                 config=SessionConfig(background_refit=False, handoff=HandoffPolicy(mode="never")))
    answer_from_gold(session, load_gold(example / "gold.jsonl"), 60)
    training_set = training_set_from_store(spacy.blank("en"), session.store, "d", [DISEASES])
    session.close()
    assert training_set.held_out and training_set.carried

    def untrained_ner(train_docs, dev_docs, output, *, labels, **options):
        nlp = spacy.blank("en")
        ner = nlp.add_pipe("ner")
        for label in labels:
            ner.add_label(label)
        nlp.initialize()
        Path(output).mkdir(parents=True, exist_ok=True)
        nlp.to_disk(Path(output) / "model-best")
        return Path(output) / "model-best"

    monkeypatch.setattr(train, "train_ner", untrained_ner)
    result = train_model(training_set, tmp_path / "model", max_epochs=2, rules=PipelineRules((str(DISEASES),)))
    pipeline = result["scores"]["pipeline"]
    scores = pipeline["held_out_f"]
    assert list(scores) == ["ner", "rules + ner", "rules"]
    trials = pipeline["trials"]
    assert trials["rules + ner"]["against"] == "rules"  # the ladder: the rules, the model after them, the model alone
    assert trials["ner"]["against"] == ("rules + ner" if trials["rules + ner"]["confidence"] >= HANDOVER_CONFIDENCE else "rules")
    climbed = [name for name, trial in trials.items() if trial["confidence"] >= HANDOVER_CONFIDENCE]
    assert pipeline["name"] == (climbed[-1] if climbed else "rules")
    assert trials["ner"]["confidence"] < HANDOVER_CONFIDENCE
    nlp = spacy.load(result["pipeline"])
    assert ("ner" in nlp.pipe_names) == (pipeline["name"] != "rules")
    assert ("bootstrap_rules" in nlp.pipe_names) == (pipeline["name"] != "ner")
    assert pipeline["name"] != "ner"  # an untrained model is no match for the rules on the held-out texts
    # the corrected rules compared on the held-out texts never saw their answers; the ones handed
    # over, chosen, carry every decision
    def carried(path):
        saved = json.loads((Path(path) / FACTORY / "corrections.json").read_text(encoding="utf8"))
        return {(string, label, overlapping): answer for string, label, overlapping, answer in saved["carried"]}

    assert carried(pipeline["compared"]["rules"]) == training_set.carried
    assert carried(result["pipeline"]) == carried(pipeline["choices"]["rules"]) == training_set.carried_all
    assert set(training_set.carried_all) > set(training_set.carried)  # the held-out decisions settle strings too

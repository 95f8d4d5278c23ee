"""Rule matches and candidate spans: offsets, snapping, trimming, votes, and real gold data."""

import itertools
import json
import re
from pathlib import Path

import pytest
import spacy
from spacy.matcher import Matcher

from bootstrap.candidates import generate_candidates
from bootstrap.corpus import Record, read_texts
from bootstrap.hashing import input_hash
from bootstrap.matching import FLAG_IDS, RuleMatcher, trim_whitespace
from bootstrap.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
PHRASE = {"label": "DISEASE", "pattern": "heart failure", "id": "hf"}


def records(*texts):
    return [Record(text, input_hash(text), f"texts:{i}") for i, text in enumerate(texts, start=1)]


@pytest.fixture
def run(write, nlp):
    """Candidates for ``texts`` under ``patterns``: one DocCandidates per text."""

    def run(patterns, *texts, phrase_attr="ORTH", batch_size=256):
        rules = load_rules(write("patterns.jsonl", patterns), nlp.vocab)
        matcher = RuleMatcher(nlp, rules, phrase_attr)
        return list(generate_candidates(nlp, matcher, records(*texts), batch_size=batch_size))

    return run


def spans(result):
    """(surface text, label) of each candidate, in text order."""
    return [(c.text, c.label) for c in sorted(result.candidates, key=lambda c: (c.start, -c.end, c.label))]


def test_phrase_token_and_regex_matches_at_the_right_offsets(run):
    text = "Acute heart failure and Parkinson's disease; BRCA1 and TP53 mutations."
    [result] = run([
        PHRASE,
        {"label": "DISEASE", "pattern": [{"LOWER": "parkinson"}, {"LOWER": "'s", "OP": "?"}, {"LOWER": "disease"}], "id": "pd"},
        {"label": "GENE", "regex": r"\b[A-Z]{2,5}\d+\b", "id": "gene"},
    ], text)
    found = {(c.start, c.end, c.label): c for c in result.candidates}
    expected = {(text.index(s), text.index(s) + len(s), label) for s, label in
                [("heart failure", "DISEASE"), ("Parkinson's disease", "DISEASE"), ("BRCA1", "GENE"), ("TP53", "GENE")]}
    assert set(found) == expected
    for candidate in result.candidates:
        assert candidate.text == text[candidate.start:candidate.end]
        assert candidate.input_hash == input_hash(text)
        span = result.doc[candidate.token_start:candidate.token_end]
        assert (span.start_char, span.end_char) == (candidate.start, candidate.end)
    assert found[(text.index("BRCA1"), text.index("BRCA1") + 5, "GENE")].votes_for == ("gene",)


@pytest.mark.filterwarnings("error")  # no W036 from the Matcher and PhraseMatcher left empty by regex-only rules
def test_regex_offsets_expand_to_whole_tokens(run):
    text = "Hereditary ovarian cancer and heart failure."
    [result] = run([
        {"label": "DISEASE", "regex": "ovari", "id": "inside"},           # inside one token
        {"label": "DISEASE", "regex": "rt fail", "id": "across"},         # ends inside two tokens
        {"label": "DISEASE", "regex": "n c", "id": "boundary"},           # last char of one, first of the next
    ], text)
    assert {(c.text, c.votes_for) for c in result.candidates} == {
        ("ovarian", ("inside",)), ("heart failure", ("across",)), ("ovarian cancer", ("boundary",)),
    }


def test_matches_never_start_or_end_on_whitespace(run, nlp):
    text = "Acute  heart failure\nheart failure, cardiac\n\narrest"
    [result] = run([
        {"label": "DISEASE", "pattern": " heart failure", "id": "phrase"},
        {"label": "DISEASE", "regex": r"\s+heart failure", "id": "regex"},
        {"label": "DISEASE", "regex": r"failure\s+", "id": "trailing"},
        {"label": "DISEASE", "pattern": [{"IS_SPACE": True, "OP": "+"}, {"LOWER": "heart"}], "id": "tokens"},
        {"label": "DISEASE", "regex": r"cardiac\s+arrest", "id": "newlines"},
        {"label": "DISEASE", "regex": r"\s+", "id": "only-space"},
    ], text)
    assert [(c.text, c.votes_for) for c in sorted(result.candidates, key=lambda c: (c.start, -c.end))] == [
        ("heart failure", ("phrase", "regex")),
        ("heart", ("tokens",)),
        ("failure", ("trailing",)),
        ("heart failure", ("regex",)),
        ("heart", ("tokens",)),
        ("cardiac\n\narrest", ("newlines",)),
    ]
    assert not any(m.rule_id == "only-space" for m in result.matches)
    # Every candidate can be an entity of a training Doc (spaCy refuses whitespace at the ends: E024).
    for candidate in result.candidates:
        span = result.doc[candidate.token_start:candidate.token_end]
        assert not span[0].is_space and not span[-1].is_space
        doc = nlp(text)
        doc.set_ents([doc.char_span(candidate.start, candidate.end, label=candidate.label)])


def test_token_patterns_match_greedily(run):
    text = "very very very bad, very good"
    [result] = run([
        {"label": "X", "pattern": [{"LOWER": "very", "OP": "+"}, {"LOWER": "bad"}], "id": "plus"},
        {"label": "Y", "pattern": [{"LOWER": "very", "OP": "+"}], "id": "only"},
    ], text)
    assert [(m.rule_id, text[m.start:m.end]) for m in result.matches] == [
        ("plus", "very very very bad"), ("only", "very very very"), ("only", "very"),
    ]


def test_a_negative_rule_votes_against_and_proposes_nothing_alone(run):
    negative = {"label": "DISEASE", "pattern": [{"LOWER": "tumor"}, {"LOWER": "suppressor"}], "negative": True, "id": "not-ts"}
    [alone] = run([negative, PHRASE], "The tumor suppressor gene.")
    assert [m.rule_id for m in alone.matches] == ["not-ts"]
    assert alone.candidates == []

    text = "tumor suppressor loss causes heart failure"
    [result] = run([
        negative,
        {"label": "DISEASE", "pattern": "tumor suppressor", "id": "ts"},
        {"label": "GENE", "pattern": "tumor suppressor", "id": "gene"},
        PHRASE,
    ], text)
    votes = {(c.text, c.label): (c.votes_for, c.votes_against) for c in result.candidates}
    assert votes == {
        ("tumor suppressor", "DISEASE"): (("ts",), ("not-ts",)),
        ("tumor suppressor", "GENE"): (("gene",), ()),  # "not DISEASE" says nothing about GENE
        ("heart failure", "DISEASE"): (("hf",), ()),
    }


def test_same_span_two_labels_gives_two_candidates_and_nested_spans_are_kept(run):
    [result] = run([
        PHRASE,
        {"label": "SYMPTOM", "pattern": "heart failure", "id": "symptom"},
        {"label": "DISEASE", "pattern": "failure", "id": "failure"},
        {"label": "DISEASE", "pattern": "acute heart", "id": "crossing"},
        {"label": "DISEASE", "regex": "heart failure", "id": "agrees"},
    ], "acute heart failure")
    assert {(c.text, c.label, c.votes_for) for c in result.candidates} == {
        ("acute heart", "DISEASE", ("crossing",)),
        ("heart failure", "DISEASE", ("agrees", "hf")),
        ("heart failure", "SYMPTOM", ("symptom",)),
        ("failure", "DISEASE", ("failure",)),
    }


def test_one_rule_matching_a_span_twice_votes_once(run):
    [result] = run([
        {"label": "DISEASE", "pattern": "heart failure", "id": "hf"},
        {"label": "DISEASE", "regex": "(?i)heart failure", "id": "hf"},
        {"label": "DISEASE", "pattern": [{"LOWER": "heart"}, {"LOWER": "failure"}], "id": "hf"},
    ], "heart failure")
    assert [(m.rule_id, m.start, m.end) for m in result.matches] == [("hf", 0, 13)]
    assert [c.votes_for for c in result.candidates] == [("hf",)]


def test_phrase_attr_lower_matches_phrases_case_insensitively(run):
    text = "HEART FAILURE, Heart failure and heart failure"
    [exact] = run([PHRASE], text)
    [lower] = run([PHRASE], text, phrase_attr="LOWER")
    assert [c.text for c in exact.candidates] == ["heart failure"]
    assert [c.text for c in lower.candidates] == ["HEART FAILURE", "Heart failure", "heart failure"]


def test_batches_give_the_same_results_in_input_order(run):
    texts = [f"case {i}: heart failure" if i % 3 else f"case {i}: nothing" for i in range(11)]
    one_batch = run([PHRASE], *texts)
    small_batches = run([PHRASE], *texts, batch_size=2)
    assert [r.record.text for r in small_batches] == texts
    assert [[c.key for c in r.candidates] for r in small_batches] == [[c.key for c in r.candidates] for r in one_batch]
    assert sum(bool(r.candidates) for r in small_batches) == 7


def test_candidates_are_streamed(write, nlp):
    rules = load_rules(write("p.jsonl", [PHRASE]), nlp.vocab)

    def stream():
        for i in range(20):
            text = f"heart failure no. {i}"
            yield Record(text, input_hash(text), "gen")
        raise AssertionError("read beyond what the first results need")

    first = list(itertools.islice(generate_candidates(nlp, RuleMatcher(nlp, rules), stream(), batch_size=8), 3))
    assert [r.candidates[0].text for r in first] == ["heart failure"] * 3


# Real data: phrase patterns made from gold mentions must give candidates at the gold offsets.

def gold_check(write, nlp, tasks, name):
    mentions = {(task["text"][s["start"]:s["end"]], s["label"]) for task in tasks for s in task["spans"]}
    path = write(f"{name}.jsonl", [{"label": label, "pattern": text} for text, label in sorted(mentions)])
    texts = write(f"{name}-texts.jsonl", tasks)
    rules = load_rules(path, nlp.vocab)
    results = list(generate_candidates(nlp, RuleMatcher(nlp, rules), read_texts(texts), batch_size=16))
    assert [r.record.task for r in results] == tasks
    gold_total = aligned = 0
    for result in results:
        text = result.record.text
        candidates = {(c.start, c.end, c.label) for c in result.candidates}
        for candidate in result.candidates:
            assert candidate.text == text[candidate.start:candidate.end]
            assert (candidate.text, candidate.label) in mentions
        for span in result.record.task["spans"]:
            gold_total += 1
            if result.doc.char_span(span["start"], span["end"]) is None:
                continue  # a gold span inside a token can never be a token-level candidate
            aligned += 1
            assert (span["start"], span["end"], span["label"]) in candidates, (text[span["start"]:span["end"]], span)
    assert gold_total > 150 and aligned / gold_total > 0.95
    return results


def test_gold_disease_mentions_become_candidates_at_their_offsets(write, nlp, gold_tasks):
    gold_check(write, nlp, gold_tasks("ncbi-disease/dev.jsonl", 25), "ncbi")


def test_gold_wnut17_mentions_of_six_labels_at_their_offsets(write, nlp, gold_tasks):
    results = gold_check(write, nlp, gold_tasks("wnut17/dev.jsonl", 300), "wnut")
    labels = {c.label for r in results for c in r.candidates}
    assert len(labels) == 6


def test_regex_candidates_on_real_text_cover_the_match_and_nothing_more(write, nlp, gold_tasks):
    pattern = r"(?i)carcinom|tumou?r|cancer|ataxi"
    tasks = gold_tasks("ncbi-disease/dev.jsonl", 25)
    rules = load_rules(write("p.jsonl", [{"label": "DISEASE", "regex": pattern}]), nlp.vocab)
    results = list(generate_candidates(nlp, RuleMatcher(nlp, rules), records(*(t["text"] for t in tasks))))
    hits = inside_words = 0
    for result in results:
        doc, starts = result.doc, {c.start: c for c in result.candidates}
        for hit in re.finditer(pattern, doc.text):
            hits += 1
            candidate = next(c for c in result.candidates if c.start <= hit.start() and hit.end() <= c.end)
            span = doc[candidate.token_start:candidate.token_end]
            assert (span.start_char, span.end_char) == (candidate.start, candidate.end)
            # The span is exactly the tokens the hit touches.
            assert span[0].idx <= hit.start() < span[0].idx + len(span[0])
            assert span[-1].idx < hit.end() <= span[-1].idx + len(span[-1])
            inside_words += (hit.start(), hit.end()) != (candidate.start, candidate.end)
        assert len(starts) == len(result.candidates)
    assert hits > 50 and inside_words > 20  # "carcinomas", "tumors", "ataxia" ... were expanded


def test_bounded_token_regexes_match_exactly_what_spacys_own_regex_does(shared_data):
    """The bounded REGEX predicates (lexeme flags on ORTH/TEXT/LOWER, custom attributes on others
    or once the flag bits run out) find the same matches as spaCy's unbounded ``re`` on real text."""
    texts = [json.loads(line)["text"] for line in (shared_data / "ncbi-disease/train.jsonl").read_text().splitlines()[:300]]
    nlp = spacy.blank("en")
    rules = load_rules([ROOT / "examples/diseases/patterns.jsonl"], nlp.vocab)
    token_patterns = {rule.id: [p.value for p in rule.patterns if p.kind == "tokens"] for rule in rules}
    with_regex = {rule_id for rule_id, patterns in token_patterns.items() if "REGEX" in json.dumps(patterns)}
    assert with_regex, "the example rules have token REGEX predicates"
    native = Matcher(nlp.vocab)
    for rule_id in with_regex:
        native.add(rule_id, token_patterns[rule_id], greedy="LONGEST")
    flags = RuleMatcher(nlp, rules)
    # a vocabulary whose free flag bits are taken: its matcher falls back to custom attributes
    crowded = spacy.blank("en")
    for bit in FLAG_IDS:
        crowded.vocab.add_flag(lambda word: False, flag_id=bit)
    fallback = RuleMatcher(crowded, load_rules([ROOT / "examples/diseases/patterns.jsonl"], crowded.vocab))
    docs = list(nlp.pipe(texts))
    for doc, crowded_doc in zip(docs, crowded.pipe(texts)):
        expected = {(nlp.vocab.strings[key], *trim_whitespace(doc, start, end)) for key, start, end in native(doc)}
        expected = {match for match in expected if match[1] < match[2]}
        assert {(m.rule_id, m.token_start, m.token_end) for m in flags(doc) if m.rule_id in with_regex} == expected
        assert {(m.rule_id, m.token_start, m.token_end) for m in fallback(crowded_doc) if m.rule_id in with_regex} == expected
    assert sum(len(native(doc)) for doc in docs) > 20


def test_matchers_on_one_vocabulary_share_their_regex_flags(nlp):
    """spaCy leaves 45 flag bits free and never gives one back: matchers built one after another
    on one vocabulary (a long-lived process) must not use them up and fall to slow getters."""
    rules = load_rules([ROOT / "examples/diseases/patterns.jsonl", *sorted((ROOT / "patterns").glob("*.jsonl"))], nlp.vocab)
    first = RuleMatcher(nlp, rules)
    used = [bit for bit in FLAG_IDS if bit in nlp.vocab.lex_attr_getters]
    assert len(used) >= 5  # the example's and the library's token REGEX became flags
    later = [RuleMatcher(nlp, rules) for _ in range(2 * len(FLAG_IDS) // len(used) + 1)]
    assert [bit for bit in FLAG_IDS if bit in nlp.vocab.lex_attr_getters] == used
    doc = nlp("On 12/05/2020 at 10:30 pm the patient had asthma and a mild ataxia; write to a@b.com.")
    assert first(doc) and all(matcher(doc) == first(doc) for matcher in later)

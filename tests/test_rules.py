"""Pattern files: the three pattern kinds, negative rules, rule ids, and every input error."""

import json

import pytest

from bootstrap.errors import InputError
from bootstrap.rules import Pattern, derive_rule_id, load_rules

PHRASE = {"label": "DISEASE", "pattern": "heart failure"}
TOKENS = {"label": "DISEASE", "pattern": [{"LOWER": "parkinson"}, {"LOWER": "'s", "OP": "?"}, {"LOWER": "disease"}]}
REGEX = {"label": "GENE", "regex": r"\b[A-Z]{2,5}\d+\b"}
NEGATIVE = {"label": "DISEASE", "pattern": [{"LOWER": "tumor"}, {"LOWER": "suppressor"}], "negative": True}


def problems_of(paths, nlp=None):
    with pytest.raises(InputError) as caught:
        load_rules(paths, nlp.vocab if nlp else None)
    return caught.value.problems


def test_the_three_kinds_and_negative_rules(write, nlp):
    rules = load_rules(write("p.jsonl", [PHRASE, TOKENS, REGEX, NEGATIVE]), nlp.vocab)
    assert [(r.label, r.negative, [p.kind for p in r.patterns]) for r in rules] == [
        ("DISEASE", False, ["phrase"]),
        ("DISEASE", False, ["tokens"]),
        ("GENE", False, ["regex"]),
        ("DISEASE", True, ["tokens"]),
    ]
    assert rules.labels == ["DISEASE", "GENE"]
    phrase = rules.rules[0]
    assert phrase.patterns[0].value == "heart failure"
    assert phrase.patterns[0].source.endswith("p.jsonl:1")
    assert rules[phrase.id] is phrase


def test_spacy_token_attributes_and_operators_are_accepted(write, nlp):
    patterns = [
        {"label": "X", "pattern": [{"LOWER": {"IN": ["a", "b"]}}, {"IS_DIGIT": True, "OP": "{1,3}"}]},
        {"label": "X", "pattern": [{"TEXT": {"REGEX": "^[A-Z]"}}, {"LENGTH": {">=": 3}}, {"OP": "*"}, {"SHAPE": "dd"}]},
        {"label": "X", "pattern": [{"LOWER": "a", "OP": "!"}, {"ORTH": "b", "OP": "+"}, {"NORM": "c", "OP": "{2}"}]},
        {"label": "X", "pattern": [{}]},
    ]
    assert len(load_rules(write("p.jsonl", patterns), nlp.vocab)) == 4


@pytest.mark.parametrize(
    "line, expected",
    [
        ('{"label": "X", "pattern": "a"', "invalid JSON"),
        ('["X", "a"]', "expected a JSON object, got array"),
        ('{"pattern": "a"}', 'missing "label"'),
        ('{"label": "", "pattern": "a"}', '"label" must be a non-empty string'),
        ('{"label": 3, "pattern": "a"}', '"label" must be a non-empty string'),
        ('{"label": "X"}', 'missing "pattern" (or "regex")'),
        ('{"label": "X", "pattern": 3}', '"pattern" must be a string (phrase) or a list of token objects, got number'),
        ('{"label": "X", "pattern": {"LOWER": "a"}}', "got object"),
        ('{"label": "X", "pattern": " "}', '"pattern" is an empty string'),
        ('{"label": "X", "pattern": []}', '"pattern" is an empty list'),
        ('{"label": "X", "pattern": ["a"]}', "invalid token pattern: token 0"),
        ('{"label": "X", "pattern": [{"LOWR": "a"}]}', "token 0, LOWR: Extra inputs are not permitted"),
        ('{"label": "X", "pattern": [{"LOWER": "a"}, {"LOWER": "b", "OP": "++"}]}', "invalid token pattern: token 1, OP"),
        ('{"label": "X", "pattern": [{"LENGTH": {">=": "three"}}]}', "token 0, LENGTH"),
        ('{"label": "X", "pattern": [{"TEXT": {"REGEX": "[a-"}}]}', "invalid token pattern: unterminated character set"),
        ('{"label": "X", "pattern": [{"_": {"no_such_attr": true}}]}', "no custom attribute _.no_such_attr is registered"),
        ('{"label": "X", "pattern": [{"ORTH": "a"}, {"POS": "NOUN"}]}', "POS needs a morphologizer or tagger+attribute_ruler in the pipeline"),
        ('{"label": "X", "pattern": [{"LEMMA": "be"}]}', "LEMMA needs a lemmatizer in the pipeline"),
        ('{"label": "X", "regex": "[a-"}', 'invalid regex "[a-": unterminated character set'),
        ('{"label": "X", "regex": ""}', '"regex" must be a non-empty string'),
        ('{"label": "X", "regex": "a", "pattern": "a"}', 'give either "pattern" or "regex", not both'),
        ('{"label": "X", "pattern": "a", "patern": "b"}', "unknown key 'patern'"),
        ('{"label": "X", "pattern": "a", "negative": "yes"}', '"negative" must be true or false, got "yes"'),
        ('{"label": "X", "pattern": "a", "id": 7}', '"id" must be a non-empty string, got 7'),
    ],
)
def test_every_error_names_file_line_and_what_is_wrong(write, nlp, line, expected):
    path = write("patterns.jsonl", [PHRASE, line])
    [problem] = problems_of(path, nlp)
    assert (problem.path, problem.line) == (str(path), 2)
    assert expected in problem.message
    assert str(problem).startswith(f"{path}:2: ")
    assert "[pattern ->" not in problem.message  # spaCy's schema paths are rewritten as "token i, ATTR"


def test_non_utf8_line_is_named(write, nlp):
    path = write("p.jsonl", json.dumps(PHRASE).encode() + b'\n{"label": "X", "pattern": "caf\xe9"}\n')
    [problem] = problems_of(path, nlp)
    assert (problem.line, problem.message) == (2, "not valid UTF-8")


def test_all_problems_of_all_files_are_reported_at_once(write, nlp):
    first = write("a.jsonl", [PHRASE, '{"label": "X"', {"pattern": "a"}, TOKENS, PHRASE, {"label": "X", "regex": "("}])
    second = write("b.jsonl", [{"label": "X", "pattern": [{"LOWR": "a"}]}, REGEX])
    problems = problems_of([first, second], nlp)
    # In file and line order, though the duplicate on line 5 is only found once all lines are read.
    assert [(p.path, p.line) for p in problems] == [(str(first), n) for n in (2, 3, 5, 6)] + [(str(second), 1)]


@pytest.mark.parametrize("content", [[], ["", "# only a comment", "// another", "   "]])
def test_a_file_without_patterns_is_an_error(write, nlp, content):
    path = write("empty.jsonl", content)
    assert [(p.path, p.line, p.message) for p in problems_of(path, nlp)] == [(str(path), None, "file has no patterns")]


def test_missing_file(tmp_path, nlp):
    [problem] = problems_of(tmp_path / "nope.jsonl", nlp)
    assert problem.message == "no such file" and problem.line is None


def test_comments_blank_lines_bom_and_crlf_are_read_like_plain_lines(write, nlp):
    plain = load_rules(write("plain.jsonl", [PHRASE, TOKENS, REGEX]), nlp.vocab)
    lines = ["# comment", json.dumps(PHRASE), "", "  // another comment", json.dumps(TOKENS), "   ", json.dumps(REGEX)]
    messy = write("messy.jsonl", ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf8"))
    rules = load_rules(messy, nlp.vocab)
    assert [r.id for r in rules] == [r.id for r in plain]
    assert [p.source.rpartition(":")[2] for r in rules for p in r.patterns] == ["2", "5", "7"]


def test_derived_ids_are_stable_across_line_order_and_files(write, nlp):
    one = load_rules(write("one.jsonl", [PHRASE, TOKENS, REGEX, NEGATIVE]), nlp.vocab)
    reordered = load_rules(write("reordered.jsonl", [NEGATIVE, REGEX, PHRASE, TOKENS]), nlp.vocab)
    split = load_rules([write("a.jsonl", [REGEX, NEGATIVE]), write("b.jsonl", [TOKENS, PHRASE])], nlp.vocab)
    assert sorted(r.id for r in one) == sorted(r.id for r in reordered) == sorted(r.id for r in split)
    assert len({r.id for r in one}) == 4


def test_derived_ids_depend_on_content_only(write, nlp):
    ids = {r.id: r for r in load_rules(write("p.jsonl", [PHRASE, NEGATIVE]), nlp.vocab)}
    assert any(i.startswith("DISEASE:heart-failure-") for i in ids)
    assert any(i.startswith("not-DISEASE:tumor-suppressor-") for i in ids)

    def rule_id(label, negative, kind, value):
        return derive_rule_id(label, negative, Pattern(kind, value, "any:1"))

    base = rule_id("DISEASE", False, "phrase", "heart failure")
    assert base in ids
    assert rule_id("DISEASE", False, "phrase", "heart failure") == base
    variants = {
        rule_id("GENE", False, "phrase", "heart failure"),
        rule_id("DISEASE", True, "phrase", "heart failure"),
        rule_id("DISEASE", False, "regex", "heart failure"),
        rule_id("DISEASE", False, "phrase", "Heart failure"),
    }
    assert base not in variants and len(variants) == 4
    # The order of a token's keys is no part of its content.
    assert rule_id("X", False, "tokens", [{"LOWER": "a", "IS_ALPHA": True, "OP": "+"}]) == rule_id(
        "X", False, "tokens", [{"OP": "+", "IS_ALPHA": True, "LOWER": "a"}]
    )


def test_lines_sharing_an_id_form_one_rule_even_across_files(write, nlp):
    first = write("a.jsonl", [{**PHRASE, "id": "hf"}, REGEX])
    second = write("b.jsonl", [{"label": "DISEASE", "regex": "cardiac (arrest|failure)", "id": "hf"}])
    rules = load_rules([first, second], nlp.vocab)
    assert len(rules) == 2
    assert [p.kind for p in rules["hf"].patterns] == ["phrase", "regex"]
    assert rules.paths == (str(first), str(second))


@pytest.mark.parametrize("other", [{"label": "GENE"}, {"negative": True}])
def test_an_id_shared_by_another_label_or_polarity_is_an_error(write, nlp, other):
    path = write("p.jsonl", [{**PHRASE, "id": "hf"}, TOKENS, {**PHRASE, "pattern": "cardiac arrest", "id": "hf", **other}])
    [problem] = problems_of(path, nlp)
    assert problem.line == 3
    assert f"is used at {path}:1 for DISEASE" in problem.message
    assert "must share label" in problem.message


def test_duplicate_identical_lines_are_reported(write, nlp):
    path = write("p.jsonl", [PHRASE, TOKENS, PHRASE])
    [problem] = problems_of(path, nlp)
    assert (problem.line, problem.message) == (3, f"same pattern as {path}:1")
    # A token dict with its keys in another order is the same pattern.
    path = write("q.jsonl", [{"label": "X", "pattern": [{"LOWER": "a", "IS_ALPHA": True}]}, {"label": "X", "pattern": [{"IS_ALPHA": True, "LOWER": "a"}]}])
    [problem] = problems_of(path, nlp)
    assert (problem.line, problem.message) == (2, f"same pattern as {path}:1")


def test_describe_is_short_and_readable(write, nlp):
    rules = load_rules(write("p.jsonl", [PHRASE, TOKENS, REGEX, *({"label": "M", "pattern": f"m{i}", "id": "many"} for i in range(5))]), nlp.vocab)
    assert [r.describe() for r in rules][:3] == ['"heart failure"', "parkinson ['s]? disease", r"/\b[A-Z]{2,5}\d+\b/"]
    assert rules["many"].describe() == '"m0" | "m1" | "m2" | … (5 patterns)'

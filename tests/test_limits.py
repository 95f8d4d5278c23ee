"""User rules and functions cannot hang the tool, nor can a text too long to tokenize (issue 15: 3, 4, 5).

A catastrophic regex or a function that never returns is stopped after its time limit, counted as
a labeling function's error is (file:line of the rule and of the text), switched off after a few
timeouts, and the build goes on. Time limits are lowered here so that the tests are quick; the
assertions on elapsed time are what a hang would fail.
"""

from __future__ import annotations

import threading
import time

import pytest

from bootstrap import limits
from bootstrap.candidates import MAX_LENGTH_VARIABLE, generate_candidates
from bootstrap.corpus import Record, read_texts
from bootstrap.errors import InputError
from bootstrap.hashing import input_hash
from bootstrap.labelmatrix import build_candidate_table
from bootstrap.lfs import load_lfs
from bootstrap.limits import TimedOut, call_with_deadline
from bootstrap.matching import RuleMatcher
from bootstrap.rules import load_rules

CATASTROPHIC = "(a+)+$"  # the regex module's cost grows with the cube of the length here


@pytest.fixture(autouse=True)
def quick_limits(monkeypatch):
    monkeypatch.setattr(limits, "REGEX_SECONDS", 0.2)
    monkeypatch.setattr(limits, "FUNCTION_SECONDS", 0.2)


def build(nlp, write, patterns, texts, lfs_source=None):
    """The candidate table of ``texts`` (written to texts.jsonl) under ``patterns`` and functions."""
    rules = load_rules(write("patterns.jsonl", patterns), nlp.vocab)
    lfs = load_lfs(write("lfs.py", [lfs_source])) if lfs_source else []
    texts_path = write("texts.jsonl", [{"text": text} for text in texts])
    results = generate_candidates(nlp, RuleMatcher(nlp, rules), read_texts(texts_path))
    return build_candidate_table(results, rules, lfs), texts_path


def test_a_catastrophic_text_regex_times_out_is_reported_and_the_other_rules_match(nlp, write):
    texts = ["a" * 5000 + "b", "Breast cancer and asthma.", "a" * 5000 + "!"]
    started = time.monotonic()
    table, path = build(nlp, write, [
        {"label": "X", "regex": CATASTROPHIC, "id": "slow"},
        {"label": "X", "pattern": [{"LOWER": "asthma"}], "id": "asthma"},
    ], texts)
    assert time.monotonic() - started < 5  # unbounded, the first text alone takes minutes
    assert table.text == ["asthma"]
    [message] = table.errors.messages()
    assert message.startswith(f"rule 'slow' ({path.parent / 'patterns.jsonl'}:1) failed 2 times, counted as no match; first: TimedOut")
    assert f"(a+)+$/ ran longer than 0.2 s on a text of 5,001 characters (on {path}:1)" in message


def test_a_catastrophic_token_regex_times_out_on_one_token(nlp, write):
    # one token: spaCy's own REGEX (re) hangs on 41 characters of it, the regex module on 600
    token = "a" * 600 + "b"
    table, path = build(nlp, write, [
        {"label": "X", "pattern": [{"TEXT": {"REGEX": CATASTROPHIC}}], "id": "slow-token"},
        {"label": "X", "pattern": [{"LOWER": {"REGEX": "^ast"}}, {"LOWER": "attacks", "OP": "?"}], "id": "ast"},
    ], [f"{token} and asthma attacks", "Asthma."])
    # token REGEX still works, bounded; the slow rule has no match on the text it timed out on
    # (there it would have matched the final "a" of "asthma"), and matches "Asthma" in the other
    assert sorted(table.text) == ["Asthma", "asthma attacks"]
    assert sorted(table.votes(table.text.index("Asthma"))) == ["ast", "slow-token"]
    [message] = table.errors.messages()
    assert "rule 'slow-token'" in message and "failed 1 time," in message and f"on {path}:1)" in message
    assert "token REGEX /(a+)+$/ ran longer than 0.2 s on the token 'aaaa" in message


def test_a_rule_that_keeps_timing_out_is_switched_off(nlp, write):
    texts = ["a" * 3000 + "b"] * 5 + ["a short aab"] * 3
    started = time.monotonic()
    table, _ = build(nlp, write, [{"label": "X", "regex": CATASTROPHIC, "id": "slow"}], texts)
    assert time.monotonic() - started < limits.SWITCH_OFF_AFTER * 0.2 + 3  # not 5 timeouts, and no match after
    [message] = table.errors.messages()
    assert "failed 3 times" in message and "switched off after 3 timeouts" in message
    assert table.n_rows == 0  # a switched-off rule matches nothing, not some texts and not others


def test_check_says_a_rule_timed_out_rather_than_that_it_never_matches(write):
    """`bootstrap check` is where rules are tried first: a timeout is a warning line with the
    rule's and the text's file:line, as at the start of a session, not a silent "never match"."""
    from typer.testing import CliRunner

    from bootstrap.cli import app

    patterns = write("patterns.jsonl", [{"label": "X", "regex": CATASTROPHIC, "id": "slow"},
                                        {"label": "X", "pattern": [{"LOWER": "asthma"}], "id": "asthma"}])
    texts = write("texts.jsonl", [{"text": "a" * 5000 + "b"}, {"text": "Asthma here."}])
    started = time.monotonic()
    result = CliRunner().invoke(app, ["check", str(patterns), str(texts)])
    assert time.monotonic() - started < 10
    assert result.exit_code == 0, result.output
    [warning] = [line for line in " ".join(result.stderr.split()).split("warning ")[1:]]
    assert warning.startswith(f"rule 'slow' ({patterns}:1) failed 1 time, counted as no match; first: TimedOut")
    assert f"on a text of 5,001 characters (on {texts}:1)" in warning
    assert "1 candidates (X 1) in 1 of 2 texts." in result.stdout  # the other rule still matched


LF_FOREVER = '''
from bootstrap.lfs import labeling_function, span_proposer

@labeling_function(label="X")
def forever(span):
    while True:
        pass

@labeling_function(label="X")
def sleeps(span):
    import time
    time.sleep(3600)

@span_proposer(label="X")
def proposes_forever(doc):
    yield (0, 1)
    while True:
        pass

@labeling_function(label="X")
def fine(span):
    return span.text == "asthma"
'''


def test_labeling_functions_that_never_return_are_stopped_and_the_build_goes_on(nlp, write):
    texts = [f"Case {i}: asthma and cancer." for i in range(20)]
    started = time.monotonic()
    table, path = build(nlp, write, [{"label": "X", "pattern": [{"LOWER": {"IN": ["asthma", "cancer"]}}]}], texts, LF_FOREVER)
    # 40 spans × 2 hanging voters and 20 texts × 1 proposer: at most 3 timeouts each, then off
    assert time.monotonic() - started < 3 * 3 * 0.2 + 5
    messages = {m.split("'")[1]: m for m in table.errors.messages()}
    assert set(messages) == {"forever", "sleeps", "proposes_forever"}
    for name in messages:
        assert f"labeling function '{name}' failed 3 times, counted as abstaining; first: TimedOut: ran longer than 0.2 s" in messages[name]
        assert f"(on {path}:1); switched off after 3 timeouts" in messages[name]
    fine = table.lf_names.index("lf:fine")
    assert (table.L[:, fine] == 1).sum() == 20  # the other function voted on every text


def test_a_function_in_another_thread_is_stopped_too():
    caught = []

    def spin():
        try:
            call_with_deadline(0.2, lambda: [None for _ in iter(int, 1)])  # an endless Python loop
        except TimedOut:
            caught.append(threading.current_thread().name)

    worker = threading.Thread(target=spin, name="worker")
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and caught == ["worker"]


def test_a_deadline_that_did_not_fire_leaves_no_alarm_behind():
    assert call_with_deadline(0.05, sum, [1, 2]) == 3
    time.sleep(0.1)  # a stray SIGALRM would raise here, or kill the process


def records(*texts, source="texts.jsonl"):
    return [Record(text, input_hash(text), f"{source}:{i}") for i, text in enumerate(texts, start=1)]


def test_a_text_too_long_to_tokenize_is_a_file_line_error_naming_the_option(nlp, write, monkeypatch):
    rules = load_rules(write("patterns.jsonl", [{"label": "X", "pattern": "x"}]), nlp.vocab)
    long = "word " * 1_000_000  # 5,000,000 characters; spaCy's limit is 1,000,000
    with pytest.raises(InputError) as caught:
        list(generate_candidates(nlp, RuleMatcher(nlp, rules), records("short x", long)))
    assert [str(p) for p in caught.value.problems] == [
        "texts.jsonl:2: text of 5,000,000 characters exceeds the limit of 1,000,000: split it into several texts, "
        "or raise the limit with BOOTSTRAP_MAX_LENGTH=5000000"]
    monkeypatch.setenv(MAX_LENGTH_VARIABLE, "20")
    with pytest.raises(InputError, match="texts.jsonl:1: text of 28 characters exceeds the limit of 20"):
        list(generate_candidates(nlp, RuleMatcher(nlp, rules), records("x is a text of 28 characters")))
    monkeypatch.setenv(MAX_LENGTH_VARIABLE, "30")
    [result] = generate_candidates(nlp, RuleMatcher(nlp, rules), records("x is a text of 28 characters"))
    assert [c.text for c in result.candidates] == ["x"]
    monkeypatch.setenv(MAX_LENGTH_VARIABLE, "lots")
    with pytest.raises(InputError, match="BOOTSTRAP_MAX_LENGTH: must be a positive number of characters, got 'lots'"):
        list(generate_candidates(nlp, RuleMatcher(nlp, rules), records("x")))

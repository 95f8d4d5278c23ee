"""Model against rules on held-out texts: the estimate weighs each stratum by its size, not by how
often the queue asked about it."""

import pytest

from bootstrap.comparison import HANDOVER_CONFIDENCE, against_rules, choose, compare, confidence, held_out_answers
from bootstrap.handoff import rules_accuracy

H = 7  # one held-out text


def key(i: int, label: str = "DISEASE") -> tuple[int, int, int, str]:
    return (H, 10 * i, 10 * i + 5, label)


RULES = [key(i) for i in range(10)]  # r0..r9
# the model finds r0..r3 and 20 spans no rule proposed
MODEL = RULES[:4] + [key(100 + i) for i in range(20)]
# what the queue asked: rule candidates only, as it mostly does
ASKED = {**{key(i): True for i in range(4)}, key(4): True, key(5): True, key(6): False, key(7): False}


def as_tasks(answers):
    return [{"text": "x", "_input_hash": k[0], "answer": "accept" if yes else "reject",
             "spans": [{"start": k[1], "end": k[2], "label": k[3]}]} for k, yes in answers.items()]


def test_the_decisions_as_asked_favour_the_rules_the_estimate_does_not():
    tasks = as_tasks(ASKED)
    rules_f = rules_accuracy(tasks, lambda task: True)["f"]  # the rules predict every span asked about
    model_f = rules_accuracy(tasks, lambda task: (H, task["spans"][0]["start"], task["spans"][0]["end"], "DISEASE")
                             in set(MODEL))["f"]
    assert rules_f > model_f  # recall 1 for the rules on their own candidates
    estimate = compare(RULES, MODEL, ASKED)
    # prior 6/8; both 4 spans (4/4 accepted), rules only 6 (2/4, and 2 not asked), model only 20 (none asked):
    # a stratum's accepted spans, plus its spans nobody asked about times its share, (accepted + 2 · prior) / (asked + 2)
    both, rules_only, model_only = 4, 2 + 2 * (2 + 1.5) / 6, 20 * 0.75
    positives = both + rules_only + model_only
    assert estimate["rules"]["f"] == pytest.approx(2 * (both + rules_only) / (10 + positives), abs=1e-4)
    assert estimate["model"]["f"] == pytest.approx(2 * (both + model_only) / (24 + positives), abs=1e-4)
    assert estimate["model"]["f"] > estimate["rules"]["f"]
    assert estimate["strata"]["model_only"] == {"size": 20, "decided": 0, "accepted": 0}
    assert estimate["strata"]["rules_only"] == {"size": 6, "decided": 4, "accepted": 2}


def test_the_models_own_spans_rejected_turn_the_comparison():
    answers = {**ASKED, **{key(100 + i): False for i in range(5)}}
    estimate = compare(RULES, MODEL, answers)
    assert estimate["rules"]["f"] > estimate["model"]["f"]
    assert estimate["strata"]["model_only"] == {"size": 20, "decided": 5, "accepted": 0}


def test_an_entity_neither_predicts_is_missed_by_both():
    found = compare(RULES, MODEL, ASKED)
    missed = compare(RULES, MODEL, {**ASKED, key(500): True, key(501): True})
    assert missed["strata"]["accepted_by_neither"] == 2
    for system in ("rules", "model"):
        assert missed[system]["recall"] < found[system]["recall"]
        assert missed[system]["precision"] == pytest.approx(found[system]["precision"], abs=0.05)


def test_nothing_decided_compares_nothing():
    estimate = compare(RULES, MODEL, {})
    assert estimate["rules"]["f"] is None and estimate["model"]["f"] is None


def test_the_model_must_beat_the_better_fit():
    tasks = as_tasks(ASKED)
    views = {"vote": {"predicted": frozenset(RULES[:6]), "accuracy": rules_accuracy(tasks, lambda task: True)},
             "labelmodel": {"predicted": frozenset(RULES[6:]), "accuracy": rules_accuracy(tasks, lambda task: False)}}
    result = against_rules(views, MODEL, ASKED)
    assert result["rules"]["fit"] == "vote"
    assert result["rules"]["f"] == result["rules"]["by_fit"]["vote"] > result["rules"]["by_fit"]["labelmodel"]
    assert result["rules"]["accepted"] == 6  # the chosen fit's agreement with the decisions comes along


def test_the_latest_answer_counts_and_ignores_say_nothing():
    tasks = as_tasks({key(1): True}) + as_tasks({key(1): False}) + [
        {**as_tasks({key(2): True})[0], "answer": "ignore"}]
    assert held_out_answers(tasks) == {key(1): False}


def texts_where_the_challenger_adds(right: int, wrong: int):
    """Held-out texts with one accepted span both systems find; in ``right`` of them the challenger
    also finds an accepted entity the incumbent misses, in ``wrong`` it adds a rejected span."""
    incumbent, challenger, answers = set(), set(), {}
    for text in range(right + wrong):
        shared, extra = (text, 0, 5, "DISEASE"), (text, 10, 15, "DISEASE")
        incumbent.add(shared)
        challenger.update((shared, extra))
        answers.update({shared: True, extra: text < right})
    return incumbent, challenger, answers


def test_a_pipeline_replaces_the_rules_only_when_the_held_out_texts_make_it_sure():
    """The same advantage on 2 texts and on 120: the estimate favours the challenger both times,
    but only 120 texts make it sure enough to hand it over."""
    for texts, handed_over in ((2, "rules"), (120, "ner")):
        incumbent, challenger, answers = texts_where_the_challenger_adds(texts // 2, texts // 2)
        estimate = compare(incumbent, challenger, answers)
        assert estimate["model"]["f"] > estimate["rules"]["f"]
        chosen, trials = choose({"rules": incumbent, "ner": challenger}, answers, ["rules", "ner"])
        assert chosen == handed_over
        assert trials["ner"]["against"] == "rules"
        assert (trials["ner"]["confidence"] >= HANDOVER_CONFIDENCE) == (handed_over == "ner")


def test_each_step_up_the_ladder_must_beat_the_choice_before_it():
    """The model alone has the best estimate and is sure to beat the rules, but not the rules with
    the model after them, which beat the rules first: those are handed over."""
    rules, after, answers = texts_where_the_challenger_adds(35, 25)
    right, wrong = (0, 30, 35, "DISEASE"), (35, 30, 35, "DISEASE")  # one more entity found, one more mistake
    alone, answers = after | {right, wrong}, {**answers, right: True, wrong: False}
    estimate = compare(after, alone, answers)
    assert estimate["model"]["f"] > estimate["rules"]["f"]
    assert confidence(rules, alone, answers) >= HANDOVER_CONFIDENCE
    chosen, trials = choose({"rules": rules, "rules + ner": after, "ner": alone}, answers, ["rules", "rules + ner", "ner"])
    assert chosen == "rules + ner"
    assert trials["rules + ner"] == {"against": "rules", "confidence": confidence(rules, after, answers)}
    assert trials["ner"]["against"] == "rules + ner" and trials["ner"]["confidence"] < HANDOVER_CONFIDENCE


def test_confidence_is_paired_and_symmetric():
    """Both systems are scored on each draw; swapping them turns the confidence round (up to the
    draws of the strata's shares, which follow the roles, not the spans)."""
    incumbent, challenger, answers = texts_where_the_challenger_adds(6, 4)
    forward, backward = confidence(incumbent, challenger, answers), confidence(challenger, incumbent, answers)
    assert forward > 0.5 > backward
    assert forward + backward == pytest.approx(1.0, abs=0.1)
    assert confidence(incumbent, incumbent, answers) == 0.5
    assert confidence(incumbent, challenger, {}) is None


def test_with_nothing_decided_the_incumbent_stays():
    incumbent, challenger, _ = texts_where_the_challenger_adds(30, 0)
    assert choose({"rules": incumbent, "ner": challenger}, {}, ["rules", "ner"]) == \
        ("rules", {"ner": {"against": "rules", "confidence": None}})


def test_spans_nobody_was_asked_about_do_not_make_a_pipeline_sure():
    """A challenger that adds to the rules only spans no decision fell on (as a model after the
    rules does, before its share of questions reaches them) is estimated at the rate of the
    average question; the held-out texts must not make that "sure". The same spans, decided and
    mostly accepted, do."""
    texts = 80
    incumbent = {(t, 0, 5, "DISEASE") for t in range(texts)}
    answers = {(t, 0, 5, "DISEASE"): t % 5 == 0 for t in range(texts)}  # the rules right on 1 candidate in 5
    added = {(t, 10 + 10 * i, 15 + 10 * i, "DISEASE") for t in range(texts) for i in range(2)}
    challenger = incumbent | added
    estimate = compare(incumbent, challenger, answers)
    assert estimate["model"]["f"] > estimate["rules"]["f"]  # at the prior's rate, more spans find more
    assert confidence(incumbent, challenger, answers) < HANDOVER_CONFIDENCE
    decided = {**answers, **{span: span[1] == 10 for span in added}}  # half of them asked: all right
    assert confidence(incumbent, challenger, decided) >= HANDOVER_CONFIDENCE

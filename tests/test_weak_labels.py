"""The whole-corpus training set: weak labels, decisions carried to every occurrence, held-out texts kept out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bootstrap.aggregate import MIN_ACCEPTS_COMPARED, MIN_COMPARED, SWITCH_MARGIN, Aggregate, compare_fits, labelled
from bootstrap.corpus import Record, read_texts
from bootstrap.gold import gold_answer, load_gold
from bootstrap.handoff import HandoffPolicy
from bootstrap.hashing import input_hash
from bootstrap.session import Session, SessionConfig
from bootstrap.table import build_table
from bootstrap.train import INCORRECT_SPANS_KEY, split_decisions
from bootstrap.weak_labels import WeakLabelConfig, build_training_set, replay, training_set_from_store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diseases"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf8")
    return path


def records(texts: list[str]) -> list[Record]:
    return [Record(text, input_hash(text), f"t:{i}") for i, text in enumerate(texts)]


def task(text: str, start: int, end: int, label: str, answer: str, exploration: bool = False) -> dict:
    return {"text": text, "_input_hash": input_hash(text), "answer": answer, "meta": {"exploration": exploration},
            "spans": [{"start": start, "end": end, "label": label}]}


def ents(doc) -> set[tuple[str, str]]:
    return {(ent.text, ent.label_) for ent in doc.ents}


def incorrect(doc) -> set[tuple[str, str]]:
    return {(span.text, span.label_) for span in doc.spans[INCORRECT_SPANS_KEY]}


@pytest.fixture
def words(tmp_path):
    """One rule proposing three single words as DISEASE in 12 texts (no overlaps)."""
    patterns = write_jsonl(tmp_path / "p.jsonl", [
        {"label": "DISEASE", "id": "words", "pattern": [{"LOWER": {"IN": ["cancer", "gout", "diagnosis"]}}]},
        {"label": "DISEASE", "id": "not-after-the", "negative": True, "pattern": [{"LOWER": "the"}, {"LOWER": "diagnosis"}]},
    ])
    texts = [f"Patient {i} has gout, cancer and a diagnosis today." for i in range(12)]
    return build_table([patterns], records(texts)), texts


def everything(nlp, table, tasks, texts, **config):
    return build_training_set(nlp, table, tasks, [(input_hash(t), t) for t in texts],
                              WeakLabelConfig(dev_share=0.0, model_dev_share=0.0, **config))


def test_before_any_decision_the_rules_label_every_text(nlp, words):
    table, texts = words
    training = everything(nlp, table, [], texts)
    docs = training.train + training.dev
    assert len(docs) == len(texts)  # every text of the corpus, not only decided ones
    assert all(ents(doc) == {("gout", "DISEASE"), ("cancer", "DISEASE"), ("diagnosis", "DISEASE")} for doc in docs)
    assert training.method == "weighted vote" and training.stats["entities"]["weak"] == 3 * len(texts)


def test_a_rejected_string_disappears_from_the_weak_labels_of_every_text(nlp, words):
    table, texts = words
    text = texts[0]
    start = text.index("diagnosis")
    training = everything(nlp, table, [task(text, start, start + len("diagnosis"), "DISEASE", "reject")], texts)
    docs = training.train + training.dev
    assert len(docs) == len(texts)
    for doc in docs:
        assert ("diagnosis", "DISEASE") not in ents(doc)
        assert ("diagnosis", "DISEASE") in incorrect(doc)  # known wrong everywhere, not merely unknown
        assert {("gout", "DISEASE"), ("cancer", "DISEASE")} <= ents(doc)
    assert training.stats["incorrect"]["carried"] == len(texts) - 1 and training.stats["incorrect"]["decision"] == 1


def test_an_accepted_string_is_an_entity_also_where_no_rule_proposed_it(nlp, words):
    table, texts = words
    extra = "Nobody has asthma here."
    corpus = texts + [extra]
    table = build_table([ROOT / "examples/diseases/patterns.jsonl"], records(["asthma"]))  # a table without the extra text
    training = everything(nlp, table, [task("Mild asthma.", 5, 11, "DISEASE", "accept")], corpus + ["Mild asthma."])
    by_text = {doc.text: doc for doc in training.train + training.dev}
    assert ("asthma", "DISEASE") in ents(by_text[extra])
    assert training.stats["entities"]["carried"] >= 1


def test_an_accepted_acronym_is_carried_with_its_case(nlp, words):
    """An accept of "WAS" (Wiskott-Aldrich syndrome) says nothing about the verb "was"; an accept
    of "Gout" opening a sentence is one about "gout" too."""
    table, texts = words
    accepted = "WAS and Gout run in families."
    corpus = [accepted, "The test was negative.", "Another WAS case.", "Gout flared."]
    tasks = [task(accepted, 0, 3, "DISEASE", "accept"), task(accepted, 8, 12, "DISEASE", "accept")]
    training = everything(nlp, table, tasks, corpus)
    by_text = {doc.text: doc for doc in training.train + training.dev}
    assert ents(by_text["The test was negative."]) == set()
    assert ("WAS", "DISEASE") in ents(by_text["Another WAS case."])
    assert ("Gout", "DISEASE") in ents(by_text["Gout flared."])


def test_a_reject_overrides_the_aggregate(nlp, words):
    """The rules are sure of "gout"; a reject makes it an incorrect span on its text."""
    table, texts = words
    text = texts[3]
    start = text.index("gout")
    tasks = [task(text, start, start + 4, "DISEASE", "reject")]
    training = everything(nlp, table, tasks, texts)
    doc = next(d for d in training.train + training.dev if d.text == text)
    assert ("gout", "DISEASE") not in ents(doc) and ("gout", "DISEASE") in incorrect(doc)
    assert ("cancer", "DISEASE") in ents(doc)


def test_an_accept_overrides_a_negative_rule(nlp, tmp_path):
    patterns = write_jsonl(tmp_path / "p.jsonl", [
        {"label": "DISEASE", "id": "dx", "pattern": [{"LOWER": "diagnosis"}]},
        {"label": "DISEASE", "id": "dx-neg", "negative": True, "pattern": [{"LOWER": "diagnosis"}]},
        {"label": "DISEASE", "id": "gout", "pattern": [{"LOWER": "gout"}]},
    ])
    texts = ["Gout and a diagnosis.", "Gout with no diagnosis yet."]
    table = build_table([patterns], records(texts))
    before = everything(nlp, table, [], texts)
    assert all(("diagnosis", "DISEASE") not in ents(doc) for doc in before.train + before.dev)  # vetoed: p = 0.5
    start = texts[0].index("diagnosis")
    after = everything(nlp, table, [task(texts[0], start, start + 9, "DISEASE", "accept")], texts)
    by_text = {doc.text: doc for doc in after.train + after.dev}
    assert ("diagnosis", "DISEASE") in ents(by_text[texts[0]])
    assert ("diagnosis", "DISEASE") in ents(by_text[texts[1]])  # carried to the other occurrence


def test_a_reject_inside_a_longer_candidate_is_about_the_boundary(nlp, tmp_path):
    """Rejecting "cancer" inside "breast cancer" keeps "cancer" an entity where it stands alone."""
    patterns = write_jsonl(tmp_path / "p.jsonl", [
        {"label": "DISEASE", "id": "cancer", "pattern": [{"LOWER": "cancer"}]},
        {"label": "DISEASE", "id": "breast-cancer", "pattern": [{"LOWER": "breast"}, {"LOWER": "cancer"}]},
    ])
    texts = ["She had breast cancer.", "He had cancer.", "Breast cancer again."]
    table = build_table([patterns], records(texts))
    start = texts[0].index("cancer")
    training = everything(nlp, table, [task(texts[0], start, start + 6, "DISEASE", "reject")], texts)
    by_text = {doc.text: doc for doc in training.train + training.dev}
    assert ents(by_text[texts[1]]) == {("cancer", "DISEASE")}
    assert ents(by_text[texts[2]]) == {("Breast cancer", "DISEASE")}
    assert ("cancer", "DISEASE") in incorrect(by_text[texts[2]])  # the nested one, carried


def test_a_string_accepted_over_its_nested_candidate_is_an_entity_where_only_the_nested_one_was_proposed(nlp, tmp_path):
    """"Myotonic dystrophy" accepted over the "dystrophy" inside it: at its other occurrences the
    rules propose only "dystrophy" (no rule has the whole string there), and the accepted string
    takes its place, in the training set and in the corrected rules a pipeline hands over. Where
    "dystrophy" stands alone the reject inside the longer span says nothing about it."""
    from bootstrap.config import PipelineRules
    from bootstrap.pipeline import corrected_rules

    patterns = write_jsonl(tmp_path / "p.jsonl", [
        {"label": "DISEASE", "id": "dystrophy", "pattern": [{"LOWER": "dystrophy"}]},
        {"label": "DISEASE", "id": "defined", "regex": "(?i)myotonic dystrophy(?= \\(DM\\))"},
    ])
    texts = ["Myotonic dystrophy (DM) is inherited.", "Families with myotonic dystrophy were seen.",
             "A dystrophy of the muscle."]
    table = build_table([patterns], records(texts))
    long_end = texts[0].index(" (")
    start = texts[0].index("dystrophy")
    tasks = [task(texts[0], 0, long_end, "DISEASE", "accept"), task(texts[0], start, start + 9, "DISEASE", "reject")]
    training = everything(nlp, table, tasks, texts)
    by_text = {doc.text: doc for doc in training.train + training.dev}
    assert ents(by_text[texts[1]]) == {("myotonic dystrophy", "DISEASE")}
    assert ents(by_text[texts[2]]) == {("dystrophy", "DISEASE")}
    pipeline = corrected_rules("en", PipelineRules((str(patterns),)), training.carried_all, training.specificity)
    assert ents(pipeline("Two patients with myotonic dystrophy.")) == {("myotonic dystrophy", "DISEASE")}
    assert ents(pipeline("Another dystrophy.")) == {("dystrophy", "DISEASE")}


def test_held_out_texts_never_enter_training(nlp, shared_data, tmp_path):
    gold_path = shared_data / "ncbi-disease" / "dev.jsonl"
    texts = [json.loads(line)["text"] for line in gold_path.read_text(encoding="utf8").splitlines()[:60]]
    table = build_table([EXAMPLE / "patterns.jsonl"], records(texts))
    gold = load_gold(gold_path)
    tasks = []
    for i in range(table.n_questions)[::3]:
        h, start, end, label = table.question(i)
        text = next(t for t in texts if input_hash(t) == h)
        tasks.append(task(text, start, end, label, gold_answer(gold, h, start, end, label)))
    _, held_out = split_decisions(tasks)
    held_out_texts = {t["text"] for t in held_out}
    assert held_out_texts
    training = build_training_set(nlp, table, tasks, [(input_hash(t), t) for t in texts])
    used = {doc.text for doc in training.train + training.dev}
    assert used.isdisjoint(held_out_texts)
    assert used | held_out_texts == set(texts)  # everything else is used
    assert training.held_out == held_out
    # each fit's view of the held-out texts: its spans there, and its agreement with their decisions
    held_out_hashes = {input_hash(text) for text in held_out_texts}
    for view in training.rules_view.values():
        assert view["accuracy"]["accepted"] + view["accuracy"]["rejected"] == len(held_out)
        assert view["predicted"] and {key[0] for key in view["predicted"]} <= held_out_hashes


def test_the_aggregate_keeps_the_plain_vote_until_the_label_model_wins_on_decisions(nlp, shared_data):
    path = shared_data / "ncbi-disease" / "train.jsonl"
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf8").splitlines()[:120]]
    table = build_table([EXAMPLE / "patterns.jsonl"], records(texts), lfs=EXAMPLE / "lfs.py")
    aggregate = Aggregate(table)
    assert aggregate.method == "weighted vote" and f"of {MIN_COMPARED}" in aggregate.method_reason
    assert set(aggregate.fits) == {"weighted vote", "LabelModel"}
    gold = load_gold(path)
    order = np.random.default_rng(0).permutation(table.n_questions)[:80]
    tasks = [task(next(t for t in texts if input_hash(t) == q[0]), q[1], q[2], q[3], gold_answer(gold, *q), True)
             for q in (table.question(int(i)) for i in order)]
    replayed = replay(table, tasks)
    scores, compared = compare_fits(table, replayed.fits, replayed.decisions)
    assert compared >= MIN_COMPARED
    assert replayed.method == ("LabelModel" if scores["LabelModel"] > scores["weighted vote"] + SWITCH_MARGIN else "weighted vote")
    assert f"{scores['LabelModel']:.2f} (LabelModel) vs {scores['weighted vote']:.2f}" in replayed.method_reason


def test_the_label_model_is_not_let_in_on_a_handful_of_accepted_exploration_answers(shared_data):
    """WNUT-17: one candidate in twenty is an entity, so 30 exploration answers hold one or two;
    the LabelModel must not replace the plain vote on F over so few (it did, and the model fell to 0.01)."""
    path = shared_data / "wnut17" / "train.jsonl"
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf8").splitlines()[:600]]
    table = build_table([ROOT / "examples" / "social-media" / "patterns.jsonl"], records(texts))
    gold = load_gold(path)
    by_answer: dict[str, list] = {"accept": [], "reject": []}
    for i in np.random.default_rng(0).permutation(table.n_questions):
        question = table.question(int(i))
        by_answer[gold_answer(gold, *question)].append(question)
    few = MIN_ACCEPTS_COMPARED - 1
    assert len(by_answer["accept"]) >= few and len(by_answer["reject"]) >= MIN_COMPARED
    chosen = by_answer["accept"][:few] + by_answer["reject"][:MIN_COMPARED]
    text_of = {input_hash(t): t for t in texts}
    tasks = [task(text_of[h], start, end, label, gold_answer(gold, h, start, end, label), True)
             for h, start, end, label in chosen]
    replayed = replay(table, tasks)
    assert "LabelModel" in replayed.fits
    assert replayed.method == "weighted vote"
    assert f"{few} of {MIN_ACCEPTS_COMPARED} accepted exploration answers" in replayed.method_reason


def test_bootstrap_train_and_the_handoff_build_the_same_training_set(nlp, tmp_path):
    """The handoff builds from the session's table in memory; ``bootstrap train --rules`` applies
    the rules again to the stored texts. Same decisions, same training set, token for token."""
    config = SessionConfig(background_refit=False, handoff=HandoffPolicy(mode="never"))
    session = Session.from_files([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=tmp_path / "b.db",
                                 dataset="d", lfs=EXAMPLE / "lfs.py", config=config)
    gold = load_gold(EXAMPLE / "gold.jsonl")
    try:
        for _ in range(40):
            question = session.next_question("alice")
            span = question["spans"][0]
            session.answer("alice", question["task_hash"],
                           gold_answer(gold, question["input_hash"], span["start"], span["end"], question["label"]))
        tasks = list(session.store.export_tasks("d"))
        in_memory = build_training_set(nlp, session.rules_table, tasks, session.store.texts("d"),
                                       session.config.weak_labels, seed=session.config.seed)
        from_store = training_set_from_store(nlp, session.store, "d", [EXAMPLE / "patterns.jsonl"],
                                             lfs=EXAMPLE / "lfs.py", config=session.config.weak_labels)
    finally:
        session.close()

    def signature(docs):
        return [(doc.text, [t.ent_iob_ + t.ent_type_ for t in doc], sorted(incorrect(doc))) for doc in docs]

    assert in_memory.stats["decided_texts"] > 10
    assert signature(in_memory.train) == signature(from_store.train)
    assert signature(in_memory.dev) == signature(from_store.dev)
    assert in_memory.held_out == from_store.held_out


def test_a_big_corpus_is_sampled_within_budget_keeping_every_decided_text(nlp, words):
    table, texts = words
    corpus = texts + [f"Filler text number {i} about nothing." for i in range(300)]
    start = texts[5].index("gout")
    tasks = [task(texts[5], start, start + 4, "DISEASE", "accept")]
    config = WeakLabelConfig(dev_share=0.0, max_words=400)
    small = build_training_set(nlp, table, tasks, [(input_hash(t), t) for t in corpus], config)
    used = [doc.text for doc in small.train + small.dev]
    assert texts[5] in used
    assert sum(len(text.split()) for text in used) <= 400 < sum(len(text.split()) for text in corpus)
    grown = corpus + [f"Another filler {i}." for i in range(300)]
    bigger = build_training_set(nlp, table, tasks, [(input_hash(t), t) for t in grown],
                                WeakLabelConfig(dev_share=0.0, max_words=10_000))
    assert set(used) <= {doc.text for doc in bigger.train + bigger.dev}  # the sample grows, it does not reshuffle


def test_the_f_optimal_threshold_keeps_low_precision_candidates_when_they_are_all_there_is():
    from bootstrap.weak_labels import f_optimal_threshold

    assert f_optimal_threshold([0.15] * 100) < 0.15  # rules right one time in six: keep them all
    mixed = [0.9] * 10 + [0.05] * 200
    assert 0.05 < f_optimal_threshold(mixed) < 0.9  # a few sure ones and many unlikely: keep the sure
    assert f_optimal_threshold([]) == 0.5


def test_where_labels_tie_the_most_specific_rule_labels_the_span(nlp, tmp_path):
    """A lone capitalised word (PERSON) and a list of places (PLACE) both propose "Europe":
    the plain vote gives each label the same probability, below one half (and PERSON sorts first). The span is an entity
    all the same, labelled by the rule with fewer matches; a negative rule still vetoes its tie."""
    patterns = write_jsonl(tmp_path / "p.jsonl", [
        {"label": "PERSON", "id": "lone-capital", "pattern": [{"IS_TITLE": True, "IS_SENT_START": False}]},
        {"label": "PLACE", "id": "places", "pattern": [{"LOWER": {"IN": ["europe", "ireland"]}}]},
        {"label": "PERSON", "id": "not-weekdays", "negative": True, "pattern": [{"LOWER": "monday"}]},
    ])
    texts = ["Then Anna flew to Europe on Monday.", "So Tom and Ben left Ireland.", "Later Kim met Sue."]
    table = build_table([patterns], records(texts))
    proba = Aggregate(table, method="weighted vote").probabilities()
    europe = next(i for i in range(table.n_questions) if table.text[table.question_row[i]] == "Europe"
                  and table.label_of(int(table.question_class[i])) == "PERSON")
    assert proba[table.question_row[europe]].max() < 0.5  # each label alone is below one half
    chosen = labelled(table, proba)
    said = {(table.text[table.question_row[i]], table.label_of(int(table.question_class[i])))
            for i in np.flatnonzero(chosen)}
    assert said == {("Anna", "PERSON"), ("Europe", "PLACE"), ("Tom", "PERSON"), ("Ben", "PERSON"),
                    ("Ireland", "PLACE"), ("Kim", "PERSON"), ("Sue", "PERSON")}  # not Monday: vetoed
    training = everything(nlp, table, [], texts)
    by_text = {doc.text: doc for doc in training.train + training.dev}
    assert ents(by_text[texts[0]]) == {("Anna", "PERSON"), ("Europe", "PLACE")}
    assert ("Ireland", "PLACE") in ents(by_text[texts[1]])


def test_with_one_label_the_labels_are_the_probabilities_above_the_threshold(example_inputs):
    folder = example_inputs(300, lfs=True)
    table = build_table([folder / "patterns.jsonl"], read_texts(folder / "texts.jsonl"), lfs=folder / "lfs.py")
    proba = Aggregate(table).probabilities()
    assert table.cardinality == 2 and len(np.unique(proba[:, 1].round(6))) > 3  # a real spread of beliefs
    for threshold in (0.3, 0.5, 0.7):
        expected = proba[table.question_row, table.question_class] > threshold
        assert np.array_equal(labelled(table, proba, threshold), expected)


def test_a_models_span_answered_inside_a_rule_candidate_is_about_the_boundary(nlp, tmp_path):
    """A span only a model proposed is in the setting the rules' candidates give it: "cancer"
    rejected inside the rules' "breast cancer" does not contradict "Cancer" accepted on its own,
    which is carried to every text where it stands alone (it used to count as standing alone,
    the answers disagreed, and neither was carried)."""
    patterns = write_jsonl(tmp_path / "p.jsonl", [
        {"label": "DISEASE", "id": "breast-cancer", "pattern": [{"LOWER": "breast"}, {"LOWER": "cancer"}]},
    ])
    texts = ["She had breast cancer.", "Cancer is rare.", "His cancer grew."]
    table = build_table([patterns], records(texts))
    inside = texts[0].index("cancer")
    tasks = [task(texts[0], inside, inside + 6, "DISEASE", "reject"), task(texts[1], 0, 6, "DISEASE", "accept")]
    training = everything(nlp, table, tasks, texts)
    by_text = {doc.text: doc for doc in training.train + training.dev}
    assert ents(by_text[texts[2]]) == {("cancer", "DISEASE")}
    assert ents(by_text[texts[0]]) == {("breast cancer", "DISEASE")}

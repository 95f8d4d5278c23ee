"""The store of decisions, on real NCBI-disease abstracts.

Every test takes ``database_url`` (``conftest.py``): a SQLite file, and a PostgreSQL database too
when ``BOOTSTRAP_TEST_POSTGRES`` names a server (CI sets it).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bootstrap.errors import InputError
from bootstrap.hashing import input_hash, task_hash
from bootstrap.store import Store, UnknownDataset, answers_table, examples_table

ROOT = Path(__file__).resolve().parents[1]
DATASET = "ncbi"


@pytest.fixture
def store(database_url):
    with Store(database_url) as store:
        yield store


@pytest.fixture(scope="module")
def abstracts(shared_data, nlp) -> list[dict]:
    """The first 8 dev abstracts with their gold spans and spaCy token offsets (exclusive end)."""
    tasks = []
    with (shared_data / "ncbi-disease" / "dev.jsonl").open(encoding="utf8") as file:
        for line, _ in zip(file, range(8)):
            task = json.loads(line)
            doc = nlp.make_doc(task["text"])
            spans = []
            for span in task["spans"]:
                tokens = doc.char_span(span["start"], span["end"])
                spans.append({**span, "token_start": tokens.start, "token_end": tokens.end})
            tasks.append({"text": task["text"], "spans": spans, "meta": {"source": "ncbi-dev", "line": len(tasks) + 1}})
    assert sum(len(task["spans"]) for task in tasks) > 20
    return tasks


def questions_of(abstracts: list[dict]) -> list[dict]:
    return [{"input_hash": input_hash(task["text"]), **span} for task in abstracts for span in task["spans"]]


def hash_of(question: dict) -> int:
    return task_hash(question["input_hash"], question["start"], question["end"], question["label"])


@pytest.fixture
def seeded(store, abstracts) -> list[int]:
    """The abstracts and their gold spans registered as questions; returns the task hashes."""
    store.add_examples(DATASET, abstracts)
    questions = questions_of(abstracts)
    store.add_questions(DATASET, questions)
    return [hash_of(question) for question in questions]


def test_answer_is_committed_before_add_answer_returns(store, database_url, seeded):
    answer_id = store.add_answer(DATASET, seeded[0], "accept", "alice", probability=0.62, votes={"disease_phrases": 1})
    with Store(database_url) as other:
        (answer,) = list(other.answers(DATASET))
    assert (answer.id, answer.task_hash, answer.answer, answer.annotator) == (answer_id, seeded[0], "accept", "alice")
    assert answer.probability == pytest.approx(0.62) and answer.votes == {"disease_phrases": 1}


def test_sqlite_is_in_wal_mode_with_full_sync(store, seeded):
    if store.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's settings")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_process_killed_right_after_add_answer_loses_nothing(store, database_url, seeded):
    store.close()
    script = textwrap.dedent(f"""
        import os, signal, sys
        from bootstrap.store import Store
        store = Store({database_url!r})
        for task_hash in {seeded[:5]!r}:
            answer_id = store.add_answer({DATASET!r}, task_hash, "reject", "alice")
        print(answer_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    with Store(database_url) as after:
        answers = list(after.answers(DATASET))
    assert [a.task_hash for a in answers] == seeded[:5]
    assert answers[-1].id == int(done.stdout)


def test_resume_knows_what_was_answered_and_undo_gives_it_back(store, database_url, seeded, abstracts):
    questions = [{**span, "text": task["text"][span["start"]:span["end"]]} for task in abstracts for span in task["spans"]]
    for task_hash, answer in zip(seeded[:4], ["accept", "reject", "ignore", "accept"]):
        store.add_answer(DATASET, task_hash, answer, "alice")
    store.close()
    with Store(database_url) as resumed:
        assert resumed.answered_task_hashes(DATASET) == set(seeded[:4])
        undone = resumed.undo_last(DATASET, "alice")
        assert (undone.task_hash, undone.answer) == (seeded[3], "accept") and undone.undone_at is not None
        assert resumed.answered_task_hashes(DATASET) == set(seeded[:3])
        assert resumed.undo_last(DATASET, "alice").task_hash == seeded[2]
        recent = resumed.recent_answers(DATASET, "alice")
        assert [a.task_hash for a in recent] == [seeded[1], seeded[0]]
        assert [a.span_text for a in recent] == [s["text"] for s in questions[1::-1]]
        with resumed.engine.connect() as conn:  # undone decisions are kept, marked
            rows = conn.execute(sa.select(answers_table.c.task_hash, answers_table.c.undone_at).order_by(answers_table.c.id)).all()
        assert [row.task_hash for row in rows] == seeded[:4]
        assert [row.undone_at is not None for row in rows] == [False, False, True, True]
        assert resumed.undo_last(DATASET, "bob") is None


def test_undo_only_touches_that_annotators_answers(store, seeded):
    store.add_answer(DATASET, seeded[0], "accept", "alice")
    store.add_answer(DATASET, seeded[1], "accept", "bob")
    assert store.undo_last(DATASET, "alice").task_hash == seeded[0]
    assert [a.annotator for a in store.answers(DATASET)] == ["bob"]


def test_change_answer_updates_counts_and_keeps_the_first_value(store, seeded):
    first = store.add_answer(DATASET, seeded[0], "accept", "alice")
    store.add_answer(DATASET, seeded[1], "accept", "alice")
    changed = store.change_answer(first, "reject")
    assert (changed.id, changed.answer) == (first, "reject") and changed.changed_at is not None
    counts = store.counts(DATASET)
    assert (counts["total"], counts["accept"], counts["reject"]) == (2, 1, 1)
    assert counts["labels"] == {"DISEASE": {"accept": 1, "reject": 1, "ignore": 0}}
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(answers_table.c.first_answer).where(answers_table.c.id == first)) == "accept"
    undone = store.undo_last(DATASET, "alice")
    with pytest.raises(ValueError, match="undone"):
        store.change_answer(undone.id, "reject")
    with pytest.raises(ValueError, match="accept, reject, ignore"):
        store.change_answer(first, "maybe")


def test_add_answer_refuses_bad_answers_and_unknown_questions(store, seeded):
    with pytest.raises(ValueError, match="got 'yes'"):
        store.add_answer(DATASET, seeded[0], "yes", "alice")
    with pytest.raises(KeyError, match="no question"):
        store.add_answer(DATASET, 12345, "accept", "alice")
    assert list(store.answers(DATASET)) == []


def test_example_gives_back_text_and_meta(store, abstracts, seeded):
    first = abstracts[0]
    assert store.example(DATASET, input_hash(first["text"])) == (first["text"], first["meta"])
    assert store.example(DATASET, input_hash("never stored")) is None


def test_questions_need_their_texts(store, abstracts):
    with pytest.raises(ValueError, match="add_examples"):
        store.add_questions(DATASET, questions_of(abstracts[:1]))


def test_adding_texts_and_questions_twice_stores_them_once(store, abstracts, seeded):
    store.add_examples(DATASET, abstracts)
    store.add_questions(DATASET, questions_of(abstracts))
    (stats,) = store.datasets()
    assert (stats.name, stats.examples, stats.questions, stats.answers) == (DATASET, len(abstracts), len(seeded), 0)


def test_two_annotators_on_one_task_both_answers_are_kept(store, seeded):
    store.add_answer(DATASET, seeded[0], "accept", "alice")
    store.add_answer(DATASET, seeded[0], "reject", "bob")
    assert sorted((a.annotator, a.answer) for a in store.answers(DATASET)) == [("alice", "accept"), ("bob", "reject")]
    assert store.counts(DATASET)["annotators"] == {"alice": 1, "bob": 1}
    tasks = list(store.export_tasks(DATASET))
    assert [t["_annotator_id"] for t in tasks] == [f"{DATASET}-alice", f"{DATASET}-bob"]
    assert tasks[0]["_task_hash"] == tasks[1]["_task_hash"] == seeded[0]
    (stats,) = store.datasets()
    assert (stats.accept, stats.reject, stats.annotators) == (1, 1, ("alice", "bob"))


def test_leases_are_exclusive_across_stores_and_expire(store, database_url, seeded):
    first, second = seeded[:2]
    with Store(database_url) as other:
        assert store.lease(DATASET, first, "alice")
        assert not other.lease(DATASET, first, "bob")
        assert other.leased_by_others(DATASET, "bob") == {first}
        assert store.leased_by_others(DATASET, "alice") == set()
        assert store.lease(DATASET, first, "alice")  # renewing one's own lease
        store.release(DATASET, first, "alice")
        assert other.lease(DATASET, first, "bob")

        assert store.lease(DATASET, second, "alice", seconds=0.2)
        assert not other.lease(DATASET, second, "bob")
        time.sleep(0.3)
        assert other.leased_by_others(DATASET, "bob") == set()
        assert other.lease(DATASET, second, "bob")
        assert not store.lease(DATASET, second, "alice")


def test_answering_ends_the_lease_and_an_answered_question_is_not_leased_again(store, seeded):
    assert store.lease(DATASET, seeded[0], "alice")
    store.add_answer(DATASET, seeded[0], "accept", "alice")
    assert store.leased_by_others(DATASET, "bob") == set()
    assert not store.lease(DATASET, seeded[0], "alice")
    assert not store.lease(DATASET, seeded[0], "bob")  # answered by anyone: nobody is offered it (issue 15, 2)
    assert store.lease(DATASET, seeded[0], "bob", second_opinion=True)  # unless double annotation is asked for
    assert not store.lease(DATASET, seeded[0], "alice", second_opinion=True)


def test_answer_changes_are_new_undone_and_changed_answers(store, seeded):
    first = store.add_answer(DATASET, seeded[0], "accept", "alice")
    since = time.time()
    assert [a.id for a in store.answer_changes(DATASET, 0, since)] == [first]
    assert store.answer_changes(DATASET, first, since) == []
    second = store.add_answer(DATASET, seeded[1], "reject", "bob")
    store.change_answer(first, "reject")
    changes = store.answer_changes(DATASET, second, since)
    # the changed answer, and the one created within the look-back although its id was seen
    # (on PostgreSQL a lower id can commit after a higher one was read)
    assert [(a.id, a.answer, a.undone_at) for a in changes] == [(first, "reject", None), (second, "reject", None)]
    assert store.answer_changes(DATASET, second, time.time() + 1) == []
    store.undo_last(DATASET, "bob")
    changes = store.answer_changes(DATASET, second, since)
    assert [a.id for a in changes] == [first, second] and changes[1].undone_at is not None


def test_two_processes_racing_for_leases_never_share_a_question(store, database_url, seeded, tmp_path):
    store.close()
    script = textwrap.dedent(f"""
        import json, sys, time
        from pathlib import Path
        from bootstrap.store import Store
        barrier = Path({str(tmp_path)!r})
        with Store({database_url!r}) as store:
            (barrier / sys.argv[1]).touch()
            while len(list(barrier.glob("racer-*"))) < 2:  # start together, so they really race
                time.sleep(0.001)
            order = {seeded!r} if sys.argv[1] == "racer-alice" else {seeded[::-1]!r}  # they meet in the middle
            won = [t for t in order if store.lease({DATASET!r}, t, sys.argv[1])]
        print(json.dumps(won))
    """)
    racers = [subprocess.Popen([sys.executable, "-c", script, name], cwd=ROOT, stdout=subprocess.PIPE, text=True)
              for name in ("racer-alice", "racer-bob")]
    won = [set(json.loads(racer.communicate(timeout=120)[0])) for racer in racers]
    assert not won[0] & won[1]
    assert won[0] | won[1] == set(seeded)


def test_proposed_spans_are_every_question_of_answered_texts(store, abstracts, seeded):
    store.add_answer(DATASET, seeded[0], "reject", "alice")
    first = abstracts[0]
    expected = sorted((s["start"], s["end"], s["label"]) for s in first["spans"])
    assert store.proposed_spans(DATASET) == {input_hash(first["text"]): expected}
    store.undo_last(DATASET, "alice")
    assert store.proposed_spans(DATASET) == {}


def test_export_is_prodigy_binary_tasks(store, abstracts, seeded):
    store.add_answer(DATASET, seeded[0], "accept", "alice", exploration=True, probability=0.3, votes={"r1": 1, "r2": 0})
    store.add_answer(DATASET, seeded[1], "reject", "alice")
    accepted, rejected = store.export_tasks(DATASET)
    text, span = abstracts[0]["text"], abstracts[0]["spans"][0]
    assert accepted["text"] == text and accepted["answer"] == "accept" and accepted["label"] == span["label"]
    assert accepted["spans"] == [{"start": span["start"], "end": span["end"], "label": span["label"],
                                  "token_start": span["token_start"], "token_end": span["token_end"] - 1}]
    assert accepted["_input_hash"] == input_hash(text) and accepted["_task_hash"] == seeded[0]
    assert accepted["meta"] == {"source": "ncbi-dev", "line": 1, "probability": 0.3, "exploration": True, "votes": {"r1": 1, "r2": 0}}
    assert rejected["meta"] == {"source": "ncbi-dev", "line": 1, "exploration": False}
    assert isinstance(accepted["_timestamp"], int) and accepted["_session_id"] == f"{DATASET}-alice"
    assert [t["answer"] for t in store.export_tasks(DATASET, answers=["reject"])] == ["reject"]
    with pytest.raises(UnknownDataset, match="no dataset 'other'"):
        list(store.export_tasks("other"))


def test_export_import_round_trip(store, tmp_path, seeded):
    for task_hash, answer, annotator in zip(seeded[:6], ["accept", "reject", "ignore"] * 2, ["alice", "bob"] * 3):
        store.add_answer(DATASET, task_hash, answer, annotator, probability=0.5)
    exported = tmp_path / "exported.jsonl"
    exported.write_text("".join(json.dumps(t) + "\n" for t in store.export_tasks(DATASET)), encoding="utf8")
    result = store.import_tasks("copy", exported)
    assert (result.tasks, result.answers, result.duplicates) == (6, 6, 0)
    again = list(store.export_tasks("copy"))
    # a second import of the same file adds nothing
    assert store.import_tasks("copy", exported).answers == 0
    assert len(list(store.answers("copy"))) == 6
    original = list(store.export_tasks(DATASET))
    keys = ("text", "spans", "answer", "label", "_input_hash", "_task_hash", "meta")
    assert [{k: t[k] for k in keys} for t in again] == [{k: t[k] for k in keys} for t in original]
    assert [t["_annotator_id"] for t in again] == ["copy-ncbi-alice", "copy-ncbi-bob"] * 3


def binary_tasks(abstracts: list[dict]) -> list[dict]:
    """Gold spans as Prodigy would store ner.teach decisions: offsets only, foreign hashes."""
    tasks = []
    for task in abstracts:
        for span in task["spans"]:
            tasks.append({
                "text": task["text"], "spans": [{k: span[k] for k in ("start", "end", "label")}], "answer": "accept",
                "_input_hash": 1, "_task_hash": 2, "meta": {"source": "ncbi-dev"},
            })
        first = task["spans"][0]  # the token before a disease, as a rejected question
        tasks.append({"text": task["text"], "spans": [{"start": 0, "end": len(task["text"].split()[0]), "label": first["label"]}],
                      "answer": "reject"})
    return tasks


def test_real_ncbi_binary_tasks_import_and_export_with_exact_offsets(store, tmp_path, abstracts, nlp):
    path = tmp_path / "ncbi-binary.jsonl"
    tasks = binary_tasks(abstracts)
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf8")
    result = store.import_tasks("imported", path, annotator="gold")
    assert (result.tasks, result.answers) == (len(tasks), len(tasks))
    exported = list(store.export_tasks("imported"))
    assert [(t["text"], t["spans"][0]["start"], t["spans"][0]["end"], t["answer"]) for t in exported] == [
        (t["text"], t["spans"][0]["start"], t["spans"][0]["end"], t["answer"]) for t in tasks
    ]
    for task in exported:
        span = task["spans"][0]
        tokens = nlp.make_doc(task["text"])[span["token_start"]: span["token_end"] + 1]
        assert (tokens.start_char, tokens.end_char) == (span["start"], span["end"])
        assert task["_input_hash"] == input_hash(task["text"])
        assert task["_task_hash"] == task_hash(task["_input_hash"], span["start"], span["end"], span["label"])
        assert task["_annotator_id"] == "imported-gold"


def test_manual_tasks_become_accepted_spans_of_a_reviewed_text(store, tmp_path, abstracts):
    manual, rejected = abstracts[0], abstracts[1]
    path = tmp_path / "manual.jsonl"
    lines = [
        {"text": manual["text"], "spans": [{k: s[k] for k in ("start", "end", "label")} for s in manual["spans"]],
         "answer": "accept", "_view_id": "ner_manual", "meta": {"pmid": "1"}},
        {"text": rejected["text"], "spans": [{k: s[k] for k in ("start", "end", "label")} for s in rejected["spans"]],
         "answer": "reject", "_view_id": "ner_manual"},
    ]
    path.write_text("".join(json.dumps(t) + "\n" for t in lines), encoding="utf8")
    result = store.import_tasks("manual", path)
    assert (result.answers, result.reviewed, result.skipped_manual) == (len(manual["spans"]), 1, 1)
    assert sorted((a.start, a.end, a.answer) for a in store.answers("manual")) == sorted(
        (s["start"], s["end"], "accept") for s in manual["spans"]
    )
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(examples_table.c.meta)) == {"pmid": "1", "reviewed": True}


def test_import_reports_every_bad_line_and_writes_nothing(store, tmp_path, abstracts):
    text = abstracts[0]["text"]
    inside = text.index(" ") - 2  # in the middle of the first word
    good = {"text": text, "spans": [{"start": 0, "end": 5, "label": "DISEASE"}], "answer": "accept"}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "answer": "maybe"}),
        json.dumps({"text": text, "answer": "accept"}),
        json.dumps({**good, "spans": [{"start": 0, "end": inside, "label": "DISEASE"}]}),
        json.dumps({**good, "spans": [{"start": 0, "end": 5, "label": "DISEASE", "token_start": 0, "token_end": "1"}]}),
        json.dumps({**good, "spans": [{"start": 0, "end": 5, "label": "DISEASE", "token_start": 3, "token_end": 4}]}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    with pytest.raises(InputError) as error:
        store.import_tasks("bad", path)
    problems = [(p.line, p.message) for p in error.value.problems]
    assert [line for line, _ in problems] == [2, 3, 4, 5, 6, 7]
    assert all(p.path == str(path) for p in error.value.problems)
    assert "invalid JSON" in problems[0][1]
    assert "'maybe'" in problems[1][1]
    assert 'missing "spans"' in problems[2][1]
    assert "token boundaries" in problems[3][1]
    assert "token_end" in problems[4][1]
    assert "do not match characters 0-5" in problems[5][1]  # offsets that contradict the characters
    assert "bad" not in store.dataset_names()
    with pytest.raises(InputError, match="expected a JSONL file"):
        store.import_tasks("bad", tmp_path / "tasks.csv")


def test_a_store_for_reading_does_not_create_a_database(tmp_path):
    with pytest.raises(FileNotFoundError, match="no database"):
        Store(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_numpy_values_from_the_label_matrix_are_stored_as_plain_numbers(store, abstracts):
    import numpy as np

    store.add_examples(DATASET, abstracts[:1])
    questions = [{key: (np.int64(v) if isinstance(v, int) else v) for key, v in q.items()} for q in questions_of(abstracts[:1])]
    store.add_questions(DATASET, questions)
    first = hash_of(questions_of(abstracts[:1])[0])
    store.add_answer(DATASET, np.int64(first), "accept", "alice", probability=np.float32(0.25),
                     votes={"rule": np.int64(1), "all": np.array([1, -1])})
    (answer,) = store.answers(DATASET)
    assert (answer.task_hash, answer.probability, answer.votes) == (first, 0.25, {"rule": 1, "all": [1, -1]})
    assert type(answer.start) is int


def test_spans_that_cut_a_token_stop_the_import_or_are_left_out(store, tmp_path, shared_data, nlp):
    """Real NCBI train abstracts have a few such spans: spaCy keeps "Ia." of "syndrome, type Ia." as one token."""
    with (shared_data / "ncbi-disease" / "train.jsonl").open(encoding="utf8") as file:
        for line in file:
            gold = json.loads(line)
            doc = nlp.make_doc(gold["text"])
            cut = [doc.char_span(s["start"], s["end"]) is None for s in gold["spans"]]
            if any(cut):
                break
    path = tmp_path / "cut.jsonl"
    path.write_text("".join(json.dumps({"text": gold["text"], "spans": [s], "answer": "accept"}) + "\n" for s in gold["spans"]))
    with pytest.raises(InputError) as error:
        store.import_tasks("cut", path)
    assert [p.line for p in error.value.problems] == [i + 1 for i, c in enumerate(cut) if c]
    assert "token boundaries" in str(error.value) and "cut" not in store.dataset_names()
    result = store.import_tasks("cut", path, skip_misaligned=True)
    assert (result.answers, result.skipped_misaligned) == (cut.count(False), cut.count(True))
    assert [(a.start, a.end) for a in store.answers("cut")] == [(s["start"], s["end"]) for s, c in zip(gold["spans"], cut) if not c]

"""A session that starts on the corpus's first texts while the rest is read in the background: no
question asked twice, no answer lost (a kill mid-way included), the whole table in the end."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bootstrap.config import HandoffPolicy, SessionConfig
from bootstrap.errors import Notice
from bootstrap.reading import start_session
from bootstrap.store import Store
from bootstrap.table import build_table
from bootstrap.table_cache import store_builder

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diseases"
CONFIG = SessionConfig(handoff=HandoffPolicy(mode="never"), background_refit=False)


@pytest.fixture(scope="module")
def corpus(example_inputs):
    """The diseases rules and 600 NCBI-disease texts."""
    return example_inputs(600)


def start(corpus: Path, db: Path, first_texts: int = 100, **options):
    return start_session([corpus / "patterns.jsonl"], corpus / "texts.jsonl", db=str(db), dataset="d",
                         config=CONFIG, first_texts=first_texts, **options)


def questions(session) -> set[int]:
    return set(session._index_of.hashes.tolist())


def test_questions_asked_before_the_corpus_was_read_are_not_asked_again(corpus, tmp_path):
    whole = build_table([corpus / "patterns.jsonl"], corpus / "texts.jsonl")
    session = start(corpus, tmp_path / "d.db")
    assert session.reading is not None and session.table.texts < whole.texts
    # the first texts' aggregate is the plain vote alone (no LabelModel fit before the first question)
    assert list(session.aggregate.fits) == ["weighted vote"] and "more of the corpus" in session.aggregate.method_reason
    first_questions = questions(session)
    answered = []
    for _ in range(15):  # answered while the rest is read (the reading process is slower than this)
        task = session.next_question()
        session.answer("default", task["task_hash"], "reject")
        answered.append(task["task_hash"])
    assert session.reading.wait(300) and session.reading.status()["error"] is None
    assert session.progress()["corpus"] == {"reading": False, "texts_read": whole.texts, "first_texts": 100,
                                            "texts_asked": whole.texts, "error": None}
    # the whole table is the one-stage table, and the first texts' questions are all in it
    assert session.table.n_questions == whole.n_questions and np.array_equal(session.table.L, whole.L)
    assert first_questions <= questions(session)
    assert "LabelModel" in session.aggregate.fits  # the whole table's aggregate fits both
    assert session.progress()["answers"] == 15 and session.progress()["remaining"] == whole.n_questions - 15
    asked_after = set()
    while (task := session.next_question()) is not None and len(asked_after) < 200:
        assert task["task_hash"] not in answered
        asked_after.add(task["task_hash"])
        session.answer("default", task["task_hash"], "accept")
    assert not asked_after & set(answered)
    assert any(h not in first_questions for h in asked_after)  # questions of the texts read later are asked
    session.close()


def test_an_answer_given_while_the_table_is_swapped_is_kept_and_the_question_on_screen_stays(corpus, tmp_path):
    session = start(corpus, tmp_path / "d.db")
    on_screen = session.next_question("ann")
    kept = session.next_question()
    session.answer("default", kept["task_hash"], "accept")
    session.reading.wait(300)
    assert session.next_question("ann")["task_hash"] == on_screen["task_hash"]  # what is on screen stays
    stored = Store(tmp_path / "d.db").answers("d")
    assert [(a.task_hash, a.answer) for a in stored] == [(kept["task_hash"], "accept")]
    assert session.progress()["answers"] == 1
    session.close()


def test_a_small_corpus_starts_in_one_stage_and_a_restart_reads_the_whole_table_back(corpus, tmp_path):
    session = start(corpus, tmp_path / "d.db", first_texts=600)
    assert session.reading is None and session.table.texts > 500  # (a few of the 600 lines repeat a text)
    session.close()
    with pytest.MonkeyPatch.context() as patch:  # a restart must not match again
        patch.setattr("bootstrap.table.build_table", lambda *a, **k: pytest.fail("matched again"))
        again = start(corpus, tmp_path / "d.db", first_texts=100)
    assert again.reading is None and again.table.texts == session.table.texts
    again.close()


def test_a_bad_line_beyond_the_first_texts_is_shown_and_the_session_goes_on(corpus, tmp_path):
    lines = (corpus / "texts.jsonl").read_text(encoding="utf8").splitlines(keepends=True)
    (tmp_path / "texts.jsonl").write_text("".join(lines[:300]) + "{not json\n" + "".join(lines[300:]), encoding="utf8")
    shutil.copy(corpus / "patterns.jsonl", tmp_path / "patterns.jsonl")
    session = start(tmp_path, tmp_path / "d.db")
    with pytest.warns(Notice, match=":301: invalid JSON"):
        assert session.reading.wait(300)
    error = session.progress()["corpus"]["error"]
    assert error.startswith(f"{tmp_path / 'texts.jsonl'}:301: ") and "\n" not in error
    assert session.table.texts == 100 and session.next_question() is not None  # the first texts are still asked
    session.close()


KILLED = textwrap.dedent("""
    import json, os, signal, sys, time
    from bootstrap.config import HandoffPolicy, SessionConfig
    from bootstrap.reading import start_session
    corpus, db = sys.argv[1], sys.argv[2]
    session = start_session([corpus + "/patterns.jsonl"], corpus + "/texts.jsonl", db=db, dataset="d",
                            config=SessionConfig(handoff=HandoffPolicy(mode="never"), background_refit=False),
                            first_texts=100)
    answered = []
    for _ in range(10):
        task = session.next_question()
        session.answer("default", task["task_hash"], "reject")
        answered.append(task["task_hash"])
    print(json.dumps({"answered": answered, "reading": session.progress()["corpus"]["reading"]}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_killed_while_reading_a_restart_loses_no_answer_and_finishes_the_table(corpus, tmp_path):
    db = tmp_path / "d.db"
    done = subprocess.run([sys.executable, "-c", KILLED, str(corpus), str(db)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    killed = json.loads(done.stdout.strip().splitlines()[-1])
    assert killed["reading"]  # killed mid-way
    entries = list(store_builder(db, "d").folder.glob("*.npz")) if store_builder(db, "d").folder.exists() else []
    assert entries == []  # no cache entry of a table that was never whole
    session = start(corpus, db)
    assert {a.task_hash for a in session.store.answers("d")} == set(killed["answered"])
    assert session.reading.wait(300) and session.progress()["corpus"]["error"] is None
    assert session.table.texts == build_table([corpus / "patterns.jsonl"], corpus / "texts.jsonl").texts
    assert session.progress()["answers"] == 10
    assert all(not session.ranker.open[session._index_of[h]] for h in killed["answered"])
    session.close()
    with pytest.MonkeyPatch.context() as patch:  # finished: the next start reads the whole table back
        patch.setattr("bootstrap.table.build_table", lambda *a, **k: pytest.fail("matched again"))
        again = start(corpus, db)
    assert again.reading is None and again.table.texts == session.table.texts
    again.close()


def test_first_texts_without_a_single_candidate_wait_for_the_rest(write, tmp_path):
    texts = [{"text": f"Nothing to see in text {i}."} for i in range(8)] + [{"text": f"Breast cancer case {i}."} for i in range(8)]
    session = start_session([write("p.jsonl", [{"label": "DISEASE", "pattern": [{"LOWER": "breast"}, {"LOWER": "cancer"}]}])],
                            write("texts.jsonl", texts), db=str(tmp_path / "d.db"), dataset="d", config=CONFIG, first_texts=5)
    assert session.table.n_questions == 0 and session.next_question() is None
    assert session.progress()["corpus"]["reading"]
    assert session.reading.wait(300)
    assert session.table.n_questions == 8 and session.next_question()["text"].startswith("Breast cancer case")
    session.close()


def test_the_command_starts_on_the_first_texts_and_serves_the_whole_table_once_read(corpus, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bootstrap.cli import app

    served = []

    def serve(session, **kwargs):  # what the page would see: the first texts, then the whole corpus
        served.append((session.table.texts, session.reading is not None))
        if session.reading is not None:
            session.reading.wait(300)
            served.append((session.table.texts, session.progress()["corpus"]["reading"]))
        session.close()

    monkeypatch.setattr("bootstrap.server.serve", serve)
    command = [str(corpus / "patterns.jsonl"), str(corpus / "texts.jsonl"), "--db", str(tmp_path / "b.db"),
               "--handoff", "never", "--first-texts", "50"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "read, stored and matched in the background" in " ".join(result.output.split())
    whole = served[1][0]
    assert served == [(50, True), (whole, False)] and whole > 500
    result = CliRunner().invoke(app, command)  # a restart reads the whole table back
    assert result.exit_code == 0, result.output
    assert served[2] == (whole, False)


def test_the_session_grows_with_each_part_read_to_the_same_whole_table(corpus, tmp_path, monkeypatch):
    """20 first texts, then a table of 200 (their texts and questions stored first), then all 592."""
    from bootstrap.session import Session

    grown, grow = [], Session.grow

    def recording(session, table, texts=None):
        stored = {h for h, _ in session.store.texts("d")}
        grown.append((table.texts, None if texts is None else len(texts), texts is None or texts <= stored))
        grow(session, table, texts)

    monkeypatch.setattr(Session, "grow", recording)
    session = start(corpus, tmp_path / "d.db", first_texts=20)
    task = session.next_question()
    session.answer("default", task["task_hash"], "accept")
    assert session.reading.wait(300) and session.reading.error is None
    whole = build_table([corpus / "patterns.jsonl"], corpus / "texts.jsonl")
    assert grown == [(200, 200, True), (whole.texts, None, True)]
    assert np.array_equal(session.table.L, whole.L) and session.table.n_questions == whole.n_questions
    assert session.progress()["answers"] == 1 and task["task_hash"] != session.next_question()["task_hash"]
    session.close()


def test_parts_are_handed_on_while_texts_follow_and_the_whole_table_only_once(corpus):
    """A corpus of exactly 20 × 10 texts: the part of 20, then the whole table returned, not also
    handed on as a part (a session that got the whole table twice held two of them at once)."""
    from bootstrap.corpus import read_texts

    records = list(itertools.islice(read_texts(corpus / "texts.jsonl"), 201))
    for n, expected in ((200, [20]), (201, [20, 200]), (20, [])):
        handed = []
        table = build_table([corpus / "patterns.jsonl"], records[:n], parts=lambda part: handed.append(part.texts),
                            first_part=20)
        assert handed == expected and table.texts == n

"""The annotation loop on the bundled example: answers, resume, undo, change, two annotators, refit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.gold import load_gold
from bootstrap.session import AlreadyAnswered, Session, SessionConfig, UnknownAnswer, UnknownTask
from bootstrap.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diseases"


def open_session(db: Path, **config) -> Session:
    return Session.from_files(
        [EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=db, dataset="diseases",
        config=SessionConfig(background_refit=False, **config),
    )


@pytest.fixture
def session(tmp_path):
    session = open_session(tmp_path / "bootstrap.db")
    yield session
    session.close()


def test_a_question_is_a_task_with_its_span_votes_and_text(session):
    task = session.next_question("alice")
    [span] = task["spans"]
    assert task["text"][span["start"]:span["end"]] and span["label"] == task["label"] == "DISEASE"
    assert 0 <= task["probability"] <= 1 and task["votes"]
    assert all({"lf", "kind", "vote", "precision"} <= set(vote) for vote in task["votes"])
    # asking again before answering gives the same question
    assert session.next_question("alice")["task_hash"] == task["task_hash"]


def test_answers_are_stored_before_the_next_question(session, tmp_path):
    task = session.next_question("alice")
    result = session.answer("alice", task["task_hash"], "accept")
    with Store(tmp_path / "bootstrap.db") as other:  # a second connection sees it at once
        [stored] = list(other.answers("diseases"))
    assert stored.id == result["answer_id"] and stored.answer == "accept" and stored.task_hash == task["task_hash"]
    assert stored.votes == task["votes"] and stored.probability == pytest.approx(task["probability"])
    assert result["progress"]["answers"] == 1 and result["progress"]["accepts_per_label"]["DISEASE"] == 1


def test_bad_answers_are_refused_and_change_nothing(session):
    task = session.next_question("alice")
    with pytest.raises(UnknownTask):
        session.answer("alice", 12345, "accept")
    with pytest.raises(ValueError):
        session.answer("alice", task["task_hash"], "maybe")
    session.answer("alice", task["task_hash"], "reject")
    with pytest.raises(AlreadyAnswered):
        session.answer("alice", task["task_hash"], "accept")
    with pytest.raises(UnknownAnswer):
        session.change("bob", 1, "accept")
    assert session.progress()["answers"] == 1


def test_resume_never_asks_an_answered_question_again(tmp_path):
    db = tmp_path / "bootstrap.db"
    first = open_session(db)
    answered = []
    for i in range(12):
        task = first.next_question("alice")
        first.answer("alice", task["task_hash"], "accept" if i % 3 else "reject")
        answered.append(task["task_hash"])
    probabilities = first.aggregate.probabilities().copy()
    first.close()

    second = open_session(db)
    assert second.progress()["answers"] == 12
    assert second.ranker.remaining == second.table.n_questions - 12
    # the aggregate learnt the stored answers again (replay, then one refit with their class balance)
    assert not (second.aggregate.probabilities() == probabilities).all() or second.aggregate.method == "weighted vote"
    asked = set()
    while (task := second.next_question("alice")) is not None:
        asked.add(task["task_hash"])
        second.answer("alice", task["task_hash"], "ignore")
    assert not asked & set(answered)
    assert len(asked) == second.table.n_questions - 12
    second.close()


def test_undo_reopens_the_question_and_restores_probabilities(session):
    before = session.aggregate.probabilities().copy()
    task = session.next_question("alice")
    session.answer("alice", task["task_hash"], "reject")
    session.next_question("alice")
    undone = session.undo("alice")
    assert undone["task_hash"] == task["task_hash"]
    assert session.next_question("alice")["task_hash"] == task["task_hash"]  # back on screen
    assert session.progress()["answers"] == 0
    assert (session.aggregate.probabilities() == before).all()
    assert session.undo("bob") is None


def test_change_an_earlier_answer(session):
    first = session.next_question("alice")
    answer_id = session.answer("alice", first["task_hash"], "accept")["answer_id"]
    second = session.next_question("alice")
    session.answer("alice", second["task_hash"], "accept")
    session.change("alice", answer_id, "reject")
    recent = session.recent("alice")
    assert [(r["task_hash"], r["answer"]) for r in recent] == [(second["task_hash"], "accept"), (first["task_hash"], "reject")]
    assert recent[0]["text"] and recent[0]["span_text"] in recent[0]["text"]
    progress = session.progress()
    assert progress["by_answer"] == {"accept": 1, "reject": 1, "ignore": 0}


def test_two_annotators_never_share_an_open_question_and_both_answers_are_kept(session, tmp_path):
    alice, bob = session.next_question("alice"), session.next_question("bob")
    assert alice["task_hash"] != bob["task_hash"]
    session.answer("alice", alice["task_hash"], "accept")
    # bob may still answer the task alice answered (e.g. from a stale page): both answers stay
    session.answer("bob", alice["task_hash"], "reject")
    with Store(tmp_path / "bootstrap.db") as store:
        answers = [(a.annotator, a.answer) for a in store.answers("diseases") if a.task_hash == alice["task_hash"]]
    assert sorted(answers) == [("alice", "accept"), ("bob", "reject")]
    # bob's undo leaves alice's answer standing: the question stays closed
    session.undo("bob")
    assert not session.ranker.open[session._index_of[alice["task_hash"]]]


def test_two_processes_on_one_database_do_not_get_the_same_question(tmp_path):
    """Two sessions (as two server processes would be) share leases through the database."""
    db = tmp_path / "bootstrap.db"
    one, two = open_session(db), open_session(db)
    seen_one = {one.next_question("alice")["task_hash"]}
    seen_two = {two.next_question("bob")["task_hash"]}
    assert not seen_one & seen_two
    one.close()
    two.close()


ROUNDS = 40
ANNOTATOR_SCRIPT = """
import json, sys, time
from pathlib import Path
from bootstrap.session import Session, SessionConfig
name, db, barrier, rounds = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
example = Path({example!r})
session = Session.from_files([example / "patterns.jsonl"], example / "texts.jsonl", db=db, dataset="diseases",
                             config=SessionConfig(background_refit=False, seed=7))  # one seed: both rank alike
(barrier / ("start-" + name)).touch()
while len(list(barrier.glob("start-*"))) < 2:  # start together, so they really run side by side
    time.sleep(0.005)
answered = []
for i in range(rounds):
    task = session.next_question(name)
    if task is None:
        break
    session.answer(name, task["task_hash"], "accept" if i % 2 else "reject")
    answered.append(str(task["task_hash"]))
(barrier / ("done-" + name)).touch()
deadline = time.monotonic() + 120
while len(list(barrier.glob("done-*"))) < 2 and time.monotonic() < deadline:  # wait for the other's last answer
    time.sleep(0.005)
session.next_question(name)  # a last look at the store
print(json.dumps({{"answered": answered, "progress": session.progress()["answers"]}}))
session.close()
"""


def test_two_processes_on_one_database_never_answer_the_same_question(database_url, tmp_path):
    """Issue 15, 2: one annotator per process, answering side by side, same ranking in both."""
    open_session(database_url).close()  # texts and questions stored once, so both processes start alike
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    script = ANNOTATOR_SCRIPT.format(example=str(EXAMPLE))
    processes = [subprocess.Popen([sys.executable, "-c", script, name, database_url, str(barrier), str(ROUNDS)],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in ("alice", "bob")]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    alice, bob = (set(result["answered"]) for result in results)
    assert len(alice) == len(bob) == ROUNDS
    assert not alice & bob  # before the fix, most questions were answered by both
    with Store(database_url) as store:
        stored = list(store.answers("diseases"))
    assert len(stored) == 2 * ROUNDS and len({a.task_hash for a in stored}) == 2 * ROUNDS
    assert [result["progress"] for result in results] == [2 * ROUNDS, 2 * ROUNDS]  # each counts the other's too


def test_an_answer_or_undo_in_another_process_is_seen_before_the_next_question(tmp_path):
    db = tmp_path / "bootstrap.db"
    one, two = open_session(db), open_session(db)
    task = one.next_question("alice")
    one.answer("alice", task["task_hash"], "accept")
    index = two._index_of[int(task["task_hash"])]
    assert two.next_question("bob")["task_hash"] != task["task_hash"]
    assert not two.ranker.open[index] and two.progress()["by_answer"]["accept"] == 1
    one.undo("alice")  # alice's question is hers again, and open again for the other process
    two.next_question("bob")
    assert two.ranker.open[index] and two.progress()["answers"] == 0
    one.answer("alice", task["task_hash"], "reject")
    [changed] = one.recent("alice")
    one.change("alice", changed["answer_id"], "accept")
    two.next_question("bob")
    assert not two.ranker.open[index] and two.progress()["by_answer"] == {"accept": 1, "reject": 0, "ignore": 0}
    one.close()
    two.close()


def test_gold_answers_sharpen_the_ranking_and_refit_runs(tmp_path, answer_from_gold):
    session = open_session(tmp_path / "bootstrap.db", refit_every=25, exploration=0.2)
    gold = load_gold(EXAMPLE / "gold.jsonl")
    assert answer_from_gold(session, gold, 60) == 60
    stats = {s["name"]: s for s in session.lf_stats()}
    assert sum(s["from_decisions"]["n"] for s in stats.values()) >= 60
    assert session.aggregate.decisions_since_fit == 10  # refit after 25 and 50 decisions
    session.close()

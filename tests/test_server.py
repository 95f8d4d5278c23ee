"""The JSON API through FastAPI's TestClient, over a real Session on the bundled example.

Every endpoint, every kind of bad request (each must be a 4xx with a message a person can read,
never a 500), two annotators on one dataset, and answers that are in the database as soon as
the response says so.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bootstrap.server import create_app, serve
from bootstrap.session import Session, SessionConfig
from bootstrap.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diseases"
DATASET = "diseases"
CONFIG = SessionConfig(background_refit=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Rules run over the example once; each test then starts from a copy of the fresh database."""
    db = tmp_path_factory.mktemp("built") / "bootstrap.db"
    session = Session.from_files([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=db, dataset=DATASET, config=CONFIG)
    session.close()
    return db, session.table


@pytest.fixture
def db(built, tmp_path) -> Path:
    path = tmp_path / "bootstrap.db"
    shutil.copy(built[0], path)
    return path


@pytest.fixture
def session(built, db):
    session = Session(Store(db), DATASET, built[1], CONFIG)
    yield session
    session.close()


@pytest.fixture
def client(session):
    with TestClient(create_app(session), raise_server_exceptions=False) as client:
        yield client


def next_task(client, who="alice") -> dict:
    response = client.get("/api/next", params={"session": who})
    assert response.status_code == 200, response.text
    return response.json()["task"]


def answer(client, task, value, who="alice"):
    return client.post("/api/answer", json={"task_hash": task["task_hash"], "answer": value, "session": who})


def stored(db) -> list:
    """Live answers as another connection sees them: what survives the server."""
    with Store(db) as store:
        return list(store.answers(DATASET))


def assert_client_error(response, status, *words):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for word in words:
        assert word in detail, detail


# The page -----------------------------------------------------------------------------------

def test_page_and_its_files_are_served_with_a_strict_content_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]  # no inline script can run
    for name in ("app.js", "style.css"):
        assert f"/static/{name}" in page.text
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/missing.js").status_code == 404


def test_the_api_is_described_by_its_openapi_schema(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/next", "/api/answer", "/api/undo", "/api/change", "/api/recent", "/api/progress", "/api/stats"} <= set(paths)
    answer_body = paths["/api/answer"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert answer_body == {"$ref": "#/components/schemas/AnswerBody"}


# Next -----------------------------------------------------------------------------------------

def test_next_is_a_task_with_string_hashes_and_the_text_cut_at_its_span(client, session):
    task = next_task(client)
    assert isinstance(task["task_hash"], str) and isinstance(task["input_hash"], str)  # 64 bits: not a JS number
    [span] = task["spans"]
    display = task["display"]
    assert display["before"] + display["span"] + display["after"] == task["text"]
    assert display["span"] == task["text"][span["start"]:span["end"]] and display["span"]
    assert task["label"] == "DISEASE" and 0 <= task["probability"] <= 1 and isinstance(task["exploration"], bool)
    assert task["votes"] and {vote["lf"] for vote in task["votes"]} <= {lf["name"] for lf in session.lf_stats()}
    assert next_task(client)["task_hash"] == task["task_hash"]  # the same until answered
    assert client.get("/api/next").json()["task"]["task_hash"] != task["task_hash"]  # "default" is another annotator


def test_two_annotators_never_get_the_same_open_question(client):
    seen = []
    for _ in range(5):
        alice, bob = next_task(client, "alice"), next_task(client, "bob")
        assert alice["task_hash"] != bob["task_hash"]
        seen += [alice["task_hash"], bob["task_hash"]]
        assert answer(client, alice, "accept", "alice").status_code == 200
        assert answer(client, bob, "reject", "bob").status_code == 200
    assert len(set(seen)) == 10


def test_both_answers_are_kept_when_two_annotators_answer_one_task(client, db):
    task = next_task(client, "alice")
    assert answer(client, task, "accept", "bob").status_code == 200  # a script may answer what it was not shown
    assert answer(client, task, "reject", "alice").status_code == 200
    on_task = {(a.annotator, a.answer) for a in stored(db) if str(a.task_hash) == task["task_hash"]}
    assert on_task == {("alice", "reject"), ("bob", "accept")}


def test_next_is_null_when_every_question_is_answered(write, tmp_path):
    texts = ["Asthma and diabetes were common.", "No disease was found.", "Her asthma improved."]
    session = Session.from_files(
        [write("patterns.jsonl", [{"label": "DISEASE", "pattern": [{"LOWER": {"IN": ["asthma", "diabetes"]}}]}])],
        write("texts.jsonl", [{"text": text} for text in texts]), db=tmp_path / "small.db", dataset="small", config=CONFIG,
    )
    with TestClient(create_app(session)) as client:
        answered = []
        while (task := next_task(client)) is not None:
            assert answer(client, task, "ignore").status_code == 200
            answered.append(task["display"]["span"])
        assert sorted(answered) == ["Asthma", "asthma", "diabetes"]
        response = client.get("/api/next", params={"session": "alice"})
        assert response.status_code == 200 and response.json() == {"task": None}
        assert client.get("/api/progress").json()["remaining"] == 0
    session.close()


# Answer ---------------------------------------------------------------------------------------

def test_an_answer_is_in_the_database_and_the_response_carries_the_next_question(client, db):
    task = next_task(client)
    response = answer(client, task, "accept")
    assert response.status_code == 200, response.text
    body = response.json()
    [row] = stored(db)
    assert (row.id, str(row.task_hash), row.answer, row.annotator) == (body["answer_id"], task["task_hash"], "accept", "alice")
    assert body["task"]["task_hash"] != task["task_hash"] and body["task"]["display"]
    assert body["task"]["task_hash"] == next_task(client)["task_hash"]  # what the page shows is alice's next
    assert body["progress"]["answers"] == 1 and body["progress"]["accepts_per_label"] == {"DISEASE": 1}
    assert [(r["answer_id"], r["answer"], r["task_hash"]) for r in body["recent"]] == [(row.id, "accept", task["task_hash"])]


def test_a_hash_is_accepted_as_a_json_number_too(client, db):
    task = next_task(client)
    response = client.post("/api/answer", json={"task_hash": int(task["task_hash"]), "answer": "reject", "session": "alice"})
    assert response.status_code == 200, response.text
    assert [(str(a.task_hash), a.answer) for a in stored(db)] == [(task["task_hash"], "reject")]


def test_answering_twice_is_a_conflict_and_keeps_the_first_answer(client, db):
    task = next_task(client)
    answer(client, task, "accept")
    assert_client_error(answer(client, task, "reject"), 409, "already answered")
    assert [a.answer for a in stored(db)] == ["accept"]


def test_an_unknown_task_is_not_found(client, db):
    assert_client_error(client.post("/api/answer", json={"task_hash": 12345, "answer": "accept"}), 404, "12345")
    assert stored(db) == []


@pytest.mark.parametrize("body, field", [
    ({"answer": "accept"}, "task_hash"),
    ({"task_hash": 1}, "answer"),
    ({"task_hash": 1, "answer": "maybe"}, "answer"),
    ({"task_hash": 1, "answer": "ACCEPT"}, "answer"),
    ({"task_hash": "abc", "answer": "accept"}, "task_hash"),
    ({"task_hash": 1.5, "answer": "accept"}, "task_hash"),
    ({"task_hash": 2**70, "answer": "accept"}, "task_hash"),  # past 64 bits: would overflow SQL
    ({"task_hash": None, "answer": "accept"}, "task_hash"),
    ({"task_hash": 1, "answer": "accept", "session": ""}, "session"),
    ({"task_hash": 1, "answer": "accept", "session": "x" * 201}, "session"),
    ({"task_hash": 1, "answer": "accept", "session": 7}, "session"),
    ({"task_hash": 1, "answer": "accept", "annotator": "bob"}, "annotator"),  # a misspelt field
    ([1, 2], "body"),
])
def test_a_malformed_answer_is_refused_with_the_field_named(client, db, body, field):
    assert_client_error(client.post("/api/answer", json=body), 422, field)
    assert stored(db) == []


@pytest.mark.parametrize("path", ["/api/answer", "/api/undo", "/api/change"])
@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe", b"null"])
def test_a_body_that_is_not_a_json_object_is_refused(client, path, content):
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    if path == "/api/undo" and content in (b"", b"null"):  # undo needs nothing but the annotator
        assert response.status_code == 200, response.text
    else:
        assert_client_error(response, 422)


# Cross-site requests (issue 15, 1) ------------------------------------------------------------

# What a page on another site can send without a CORS preflight: forms (urlencoded, multipart,
# text/plain), text/plain fetches, or no body at all.
CROSS_SITE_BODIES = [
    {"content": b"", "headers": {}},
    {"content": b"session=default", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    {"content": b'{"session": "default"}', "headers": {"content-type": "text/plain"}},
    {"content": b"--x\r\n\r\n--x--\r\n", "headers": {"content-type": "multipart/form-data; boundary=x"}},
]


@pytest.mark.parametrize("path", ["/api/answer", "/api/undo", "/api/change"])
@pytest.mark.parametrize("request_", CROSS_SITE_BODIES)
def test_a_body_a_foreign_form_could_send_changes_nothing(client, db, path, request_):
    task = next_task(client, "default")
    assert answer(client, task, "accept", "default").status_code == 200
    response = client.post(path, **request_)
    assert_client_error(response, 415, "application/json")
    assert [a.task_hash for a in stored(db)] == [int(task["task_hash"])]  # still answered


@pytest.mark.parametrize("headers, word", [
    ({"origin": "http://evil.example"}, "evil.example"),
    ({"origin": "http://testserver.evil.example"}, "evil.example"),
    ({"origin": "null"}, "null"),  # a sandboxed frame or a file:// page
    ({"sec-fetch-site": "cross-site"}, "cross-site"),
    ({"sec-fetch-site": "same-site", "origin": "http://testserver"}, "same-site"),  # another port of this host
])
def test_a_json_request_from_another_origin_changes_nothing(client, db, headers, word):
    task = next_task(client, "default")
    answer(client, task, "accept", "default")
    response = client.post("/api/undo", json={"session": "default"}, headers=headers)
    assert_client_error(response, 403, word)
    assert len(stored(db)) == 1


def test_the_page_s_own_requests_are_served(client, db):
    task = next_task(client, "default")
    own = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    response = client.post("/api/answer", json={"task_hash": task["task_hash"], "answer": "accept"}, headers=own)
    assert response.status_code == 200, response.text
    response = client.post("/api/undo", json={}, headers=own)
    assert response.status_code == 200 and response.json()["undone_task_hash"] == task["task_hash"]
    assert stored(db) == []


# Undo and change --------------------------------------------------------------------------------

def test_undo_takes_back_the_last_answer_and_asks_its_question_again(client, db):
    first = next_task(client)
    second = answer(client, first, "accept").json()["task"]
    answer(client, second, "reject")
    body = client.post("/api/undo", json={"session": "alice"}).json()
    assert body["undone_task_hash"] == second["task_hash"] and body["task"]["task_hash"] == second["task_hash"]
    assert [(str(a.task_hash), a.answer) for a in stored(db)] == [(first["task_hash"], "accept")]
    assert [r["task_hash"] for r in body["recent"]] == [first["task_hash"]] and body["progress"]["answers"] == 1
    assert next_task(client)["task_hash"] == second["task_hash"]
    assert answer(client, second, "ignore").status_code == 200  # answered again, not a double answer


def test_undo_with_nothing_to_undo_returns_the_current_question(client):
    task = next_task(client, "bob")
    body = client.post("/api/undo", json={"session": "bob"}).json()
    assert body["undone_task_hash"] is None and body["task"]["task_hash"] == task["task_hash"] and body["recent"] == []


def test_undo_is_per_annotator(client, db):
    answer(client, next_task(client, "alice"), "accept", "alice")
    assert client.post("/api/undo", json={"session": "bob"}).json()["undone_task_hash"] is None
    assert [a.annotator for a in stored(db)] == ["alice"]


def test_change_rewrites_an_earlier_answer_in_the_database(client, db):
    task = next_task(client)
    answer_id = answer(client, task, "accept").json()["answer_id"]
    response = client.post("/api/change", json={"answer_id": answer_id, "answer": "reject", "session": "alice"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["changed"]["answer"] == "reject" and body["recent"][0]["answer"] == "reject"
    assert body["progress"]["by_answer"] == {"accept": 0, "reject": 1, "ignore": 0}
    assert [(a.id, a.answer) for a in stored(db)] == [(answer_id, "reject")]


def test_change_of_an_unknown_undone_or_someone_elses_answer_is_not_found(client, db):
    answer_id = answer(client, next_task(client), "accept").json()["answer_id"]
    change = {"answer_id": answer_id, "answer": "reject"}
    assert_client_error(client.post("/api/change", json={**change, "session": "bob"}), 404, str(answer_id))
    assert_client_error(client.post("/api/change", json={**change, "answer_id": 99999, "session": "alice"}), 404, "99999")
    client.post("/api/undo", json={"session": "alice"})
    assert_client_error(client.post("/api/change", json={**change, "session": "alice"}), 404)
    with Store(db) as store:
        assert list(store.answers(DATASET)) == []  # the undone answer stays undone, unchanged


@pytest.mark.parametrize("body, field", [
    ({"answer": "reject"}, "answer_id"),
    ({"answer_id": 1, "answer": "no"}, "answer"),
    ({"answer_id": 0, "answer": "reject"}, "answer_id"),
    ({"answer_id": "one", "answer": "reject"}, "answer_id"),
])
def test_a_malformed_change_is_refused_with_the_field_named(client, body, field):
    assert_client_error(client.post("/api/change", json=body), 422, field)


# Recent, progress, stats --------------------------------------------------------------------------

def test_recent_lists_the_annotators_newest_answers_first(client):
    hashes = []
    task = next_task(client)
    for value in ("accept", "reject", "ignore"):
        hashes.append(task["task_hash"])
        task = answer(client, task, value).json()["task"]
    recent = client.get("/api/recent", params={"session": "alice"}).json()["recent"]
    assert [(r["task_hash"], r["answer"]) for r in recent] == list(zip(reversed(hashes), ["ignore", "reject", "accept"]))
    assert all(r["span_text"] and r["span_text"] in r["text"] and r["label"] == "DISEASE" for r in recent)
    assert len(client.get("/api/recent", params={"session": "alice", "n": 2}).json()["recent"]) == 2
    assert client.get("/api/recent", params={"session": "bob"}).json() == {"recent": []}


@pytest.mark.parametrize("params, field", [({"n": 0}, "n"), ({"n": "ten"}, "n"), ({"n": 1000}, "n"), ({"session": ""}, "session")])
def test_malformed_queries_are_refused_with_the_field_named(client, params, field):
    assert_client_error(client.get("/api/recent", params=params), 422, field)


def test_progress_counts_answers_and_the_handoff(client, session):
    start = client.get("/api/progress").json()
    assert start["dataset"] == DATASET and start["answers"] == 0
    assert start["remaining"] == start["total"] == session.table.n_questions
    answer(client, next_task(client), "accept")
    progress = client.get("/api/progress").json()
    assert progress["answers"] == 1 and progress["remaining"] == start["total"] - 1
    assert progress["handoff"]["accepts"] == {"DISEASE": 1} and progress["handoff"]["ready"] is False
    assert progress["method"] in ("LabelModel", "weighted vote")


def test_stats_is_the_lf_table_in_strict_json(client, session):
    response = client.get("/api/stats")
    assert response.status_code == 200
    lfs = json.loads(response.text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))["lfs"]
    assert [lf["name"] for lf in lfs] == [lf["name"] for lf in session.lf_stats()]
    assert all({"coverage", "conflicts", "precision", "from_decisions"} <= set(lf) for lf in lfs)


def test_unknown_paths_and_methods_are_4xx(client):
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/answer").status_code == 405
    assert client.post("/api/next", json={}).status_code == 405
    assert client.post("/api/next").status_code == 415  # no JSON body: refused before routing (the cross-site rule)


def test_serve_binds_to_this_machine_unless_told_otherwise(session, monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    serve(session)
    serve(session, host="0.0.0.0", port=9000)
    assert [(options["host"], options["port"]) for _, options in calls] == [("127.0.0.1", 8080), ("0.0.0.0", 9000)]
    with TestClient(calls[0][0], base_url="http://127.0.0.1:8080") as client:  # this session's page and API
        assert client.get("/api/progress").json()["dataset"] == DATASET
        # bound to this machine, it answers only to this machine's names (no DNS rebinding)
        assert client.get("/api/progress", headers={"host": "attacker.example"}).status_code == 400
    with TestClient(calls[1][0], base_url="http://10.0.0.5:9000") as client:  # bound to every interface
        assert client.get("/api/progress").status_code == 200


def test_suggestions_are_pattern_lines_learned_from_the_decisions(built, tmp_path, answer_from_gold):
    """The page's panel: after gold answers, /api/suggestions gives lines load_rules accepts."""
    from bootstrap.gold import load_gold
    from bootstrap.rules import load_rules

    db = tmp_path / "suggest.db"
    session = Session.from_files([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=db, dataset=DATASET,
                                 config=CONFIG)
    client = TestClient(create_app(session))
    assert client.get("/api/suggestions").json() == {"suggestions": []}  # nothing decided yet
    gold = load_gold(EXAMPLE / "gold.jsonl")
    answer_from_gold(session, gold, 120)
    suggestions = client.get("/api/suggestions").json()["suggestions"]
    assert suggestions and all(item["fixes"] >= 2 for item in suggestions)
    lines = tmp_path / "suggested.jsonl"
    lines.write_text("".join(json.dumps(item["pattern"]) + "\n" for item in suggestions))
    assert len(load_rules(lines)) == len(suggestions)
    session.close()

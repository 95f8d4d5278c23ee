"""A database that refuses writes: one line at start-up, a 503 the page shows mid-session (issue 15, 6).

The failures are real SQLite ones: a read-only file (``chmod``, or ``chattr +i`` as root, whom
permissions do not stop) and a full disk (``PRAGMA max_page_count``: SQLite then fails writes
with SQLITE_FULL, "database or disk is full", exactly as on a full disk).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.server import create_app
from bootstrap.session import Session, SessionConfig
from bootstrap.store import StorageError, Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diseases"
DATASET = "diseases"


def annotate(db: Path, *extra: str):
    """``bootstrap PATTERNS TEXTS --db DB`` in this process; it must fail before serving."""
    args = [str(EXAMPLE / "patterns.jsonl"), str(EXAMPLE / "texts.jsonl"), "--db", str(db), "--dataset", DATASET, *extra]
    return CliRunner().invoke(app, args)


def assert_one_line_error(result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)  # no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("error ")]
    assert len(errors) == 1, result.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@contextlib.contextmanager
def read_only(path: Path):
    """Make ``path`` unwritable for this process (root ignores modes: then the immutable flag)."""
    if os.geteuid() != 0:
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        try:
            yield
        finally:
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root on a file system without chattr +i: cannot make a file read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextlib.contextmanager
def disk_full_for_new_connections():
    """Every SQLite connection opened in the block may not grow its database by a single page."""

    def limit(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
        cursor.close()

    sa.event.listen(sa.pool.Pool, "connect", limit)
    try:
        yield
    finally:
        sa.event.remove(sa.pool.Pool, "connect", limit)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    db = tmp_path_factory.mktemp("built") / "bootstrap.db"
    session = Session.from_files([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=db, dataset=DATASET,
                                 config=SessionConfig(background_refit=False))
    session.close()
    return db, session.table


def test_a_read_only_database_is_one_line_at_start(built, tmp_path):
    db = tmp_path / "bootstrap.db"
    shutil.copy(built[0], db)
    with read_only(db):
        result = annotate(db)
    assert_one_line_error(result, str(db), "the database is read-only", "readonly database")


def test_a_full_disk_at_start_is_one_line(tmp_path):
    db = tmp_path / "new.db"
    with disk_full_for_new_connections():
        result = annotate(db)
    assert_one_line_error(result, str(db), "disk full")


def test_a_folder_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StorageError, match="the database's folder cannot be created"):
        Store(tmp_path / "file" / "sub" / "bootstrap.db")


def test_a_full_disk_mid_session_is_a_503_the_page_shows_and_nothing_is_half_stored(built, tmp_path):
    db = tmp_path / "bootstrap.db"
    shutil.copy(built[0], db)
    session = Session(Store(db), DATASET, built[1], SessionConfig(background_refit=False))
    with TestClient(create_app(session), raise_server_exceptions=False) as client:
        task = client.get("/api/next", params={"session": "alice"}).json()["task"]
        session.store.engine.dispose()  # the next connections are opened on a full disk
        with disk_full_for_new_connections():
            responses = []
            for _ in range(200):  # until the answers no longer fit in the free pages
                response = client.post("/api/answer", json={"task_hash": task["task_hash"], "answer": "accept", "session": "alice"})
                responses.append(response.status_code)
                if response.status_code != 200:
                    break
                task = response.json()["task"]
            assert response.status_code == 503, responses
            detail = response.json()["detail"]
            assert detail.startswith("the answer was not saved: disk full") and str(db) in detail
            assert client.get("/api/next", params={"session": "alice"}).status_code in (200, 503)  # never a 500
        session.store.engine.dispose()
        answered = responses.count(200)
        with Store(db) as store:
            assert len(list(store.answers(DATASET))) == answered  # the refused answer is not there, nor half of it
        assert session.progress()["answers"] == answered
        # room again: the same question is still the annotator's, and its answer is stored now
        assert client.get("/api/next", params={"session": "alice"}).json()["task"]["task_hash"] == task["task_hash"]
        response = client.post("/api/answer", json={"task_hash": task["task_hash"], "answer": "accept", "session": "alice"})
        assert response.status_code == 200, response.text
    session.close()

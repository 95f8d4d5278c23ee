import os
import time
from pathlib import Path

import pytest
import spacy

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
# BOOTSTRAP_TEST_POSTGRES=postgresql+psycopg://user@host:port runs every database test on PostgreSQL too (.ci/run sets it).
POSTGRES = os.environ.get("BOOTSTRAP_TEST_POSTGRES")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The gold data beside the project (``../shared/data``); tests read it, never copy it."""
    assert SHARED_DATA.is_dir(), f"shared data not found at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def example_inputs(tmp_path_factory, shared_data):
    """``example_inputs(n, lfs=False)``: a fresh folder with copies of ``examples/diseases``'s
    ``patterns.jsonl`` (and ``lfs.py``) and the first ``n`` NCBI-disease training texts as
    ``texts.jsonl``: inputs a test may change or cache beside without touching the example."""
    import itertools
    import shutil

    def example_inputs(n: int, lfs: bool = False) -> Path:
        folder = tmp_path_factory.mktemp("inputs")
        with (shared_data / "ncbi-disease" / "train.jsonl").open(encoding="utf8") as file:
            (folder / "texts.jsonl").write_text("".join(itertools.islice(file, n)), encoding="utf8")
        for name in ("patterns.jsonl",) + (("lfs.py",) if lfs else ()):
            shutil.copy(ROOT / "examples" / "diseases" / name, folder / name)
        return folder

    return example_inputs


@pytest.fixture(params=["sqlite"] + (["postgresql"] if POSTGRES else []))
def database_url(request, tmp_path):
    """A fresh, empty database: a SQLite file (in a folder that does not exist yet), or a new
    PostgreSQL database, dropped afterwards, when BOOTSTRAP_TEST_POSTGRES is set."""
    if request.param == "sqlite":
        yield str(tmp_path / "decisions" / "bootstrap.db")
        return
    import sqlalchemy as sa

    name = f"bootstrap_test_{os.getpid()}_{time.time_ns()}"
    server = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    with server.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    server.dispose()


@pytest.fixture(scope="session")
def nlp():
    return spacy.blank("en")


@pytest.fixture
def write(tmp_path):
    """Write an input file under tmp_path: a list of lines (dicts become JSON lines) or raw bytes."""
    import json

    def write(name: str, content) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            lines = [line if isinstance(line, str) else json.dumps(line) for line in content]
            path.write_text("".join(line + "\n" for line in lines), encoding="utf8")
        return path

    return write


@pytest.fixture(scope="session")
def gold_tasks(shared_data):
    """The first ``n`` tasks of a gold file, e.g. ``gold_tasks("ncbi-disease/dev.jsonl", 20)``."""
    import itertools
    import json

    def gold_tasks(name: str, n: int) -> list[dict]:
        with (shared_data / name).open(encoding="utf8") as file:
            return [json.loads(line) for line in itertools.islice(file, n)]

    return gold_tasks


@pytest.fixture(scope="session")
def answer_from_gold():
    """``answer_from_gold(session, gold, n)``: answer the session's next ``n`` questions (all that
    are left with ``n=None``) as alice, from ``gold`` (:func:`bootstrap.gold.load_gold`'s
    mapping), the way ``bootstrap simulate``'s annotator does; returns how many were answered."""
    from bootstrap.gold import task_answer

    def answer_from_gold(session, gold, n=None, annotator="alice") -> int:
        answered = 0
        while n is None or answered < n:
            task = session.next_question(annotator)
            if task is None:
                break
            session.answer(annotator, task["task_hash"], task_answer(gold, task))
            answered += 1
        return answered

    return answer_from_gold

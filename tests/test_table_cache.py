"""The cached candidate table: read back identical, loaded on a restart instead of matching again,
rebuilt when a rule, function, text file or the database changes, and never a traceback."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bootstrap.config import HandoffPolicy
from bootstrap.errors import Notice
from bootstrap.session import Session, SessionConfig
from bootstrap.table import build_table
from bootstrap.table_cache import (
    ARRAYS, cached_builder, default_cache_dir, load_table, save_table, store_builder,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diseases"
STORED = lambda: (1.0, 10**9)  # noqa: E731  (a database that holds every text)


@pytest.fixture(scope="module")
def inputs(example_inputs):
    """Copies of the diseases rules and functions, and 200 NCBI-disease texts (a file per test module)."""
    return example_inputs(200, lfs=True)


@pytest.fixture
def copies(inputs, tmp_path):
    """The inputs in this test's own folder, free to change; the first 50 texts only (faster builds)."""
    for name in ("patterns.jsonl", "lfs.py"):
        shutil.copy(inputs / name, tmp_path / name)
    with (inputs / "texts.jsonl").open(encoding="utf8") as file:
        (tmp_path / "texts.jsonl").write_text("".join(itertools.islice(file, 50)), encoding="utf8")
    return tmp_path


class Counting:
    """A builder that counts its builds."""

    def __init__(self):
        self.builds = 0

    def __call__(self, *args, **kwargs):
        self.builds += 1
        return build_table(*args, **kwargs)


def assert_identical(a, b):
    for name in ARRAYS:
        assert getattr(a, name).dtype == getattr(b, name).dtype and np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("labels", "columns", "text", "texts", "errors"):
        assert getattr(a, name) == getattr(b, name), name
    assert (a.model_probability is None) == (b.model_probability is None)
    if a.model_probability is not None:
        np.testing.assert_array_equal(a.model_probability, b.model_probability)


def test_a_saved_table_loads_back_identical(inputs, tmp_path):
    table = build_table([inputs / "patterns.jsonl"], inputs / "texts.jsonl", lfs=inputs / "lfs.py")
    assert table.texts == 200 and table.n_questions > 100 and any(c.kind == "lf" for c in table.columns)
    table.errors.record_named("rule_x", "rule 'rule_x' (p.jsonl:3)", "t.jsonl:7", ValueError("bad"))
    table.text[0] = table.text[0] + " \u00e9\u4e2d\ud83d\ude00"  # non-ASCII survives (the offsets count characters)
    save_table(table, tmp_path / "t.npz", {"dataset_created": 1.5})
    loaded, extra = load_table(tmp_path / "t.npz")
    assert_identical(loaded, table)
    assert extra == {"dataset_created": 1.5} and loaded.model_probability is None
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # no temporary file left


def open_session(inputs: Path, db: Path, build) -> Session:
    config = SessionConfig(background_refit=False, handoff=HandoffPolicy(mode="never"))
    return Session.from_files([inputs / "patterns.jsonl"], inputs / "texts.jsonl", lfs=inputs / "lfs.py", db=db,
                              dataset="ncbi", config=config, build=build)


def test_a_restart_reads_the_table_back_and_resumes_where_it_was(inputs, tmp_path, monkeypatch):
    db = tmp_path / "b.db"
    counting = Counting()
    first = open_session(inputs, db, store_builder(db, "ncbi", build=counting))
    asked = []
    for answer in ("accept", "reject", "accept"):
        task = first.next_question("alice")
        first.answer("alice", task["task_hash"], answer)
        asked.append(task["task_hash"])
    first_table, first_hashes = first.rules_table, first._index_of.hashes.tolist()
    first.close()
    assert counting.builds == 1 and list(default_cache_dir(db).glob("*.npz"))

    def no_matching(*args, **kwargs):
        raise AssertionError("the rules were matched again")

    monkeypatch.setattr("bootstrap.table.build_table", no_matching)
    second = open_session(inputs, db, store_builder(db, "ncbi", build=counting))
    assert counting.builds == 1
    assert_identical(second.rules_table, first_table)
    assert second._index_of.hashes.tolist() == first_hashes
    assert [(a.task_hash, a.answer) for a in second.store.answers("ncbi")] == list(zip(asked, ("accept", "reject", "accept")))
    assert second.progress()["answers"] == 3
    cached_next = second.next_question("bob")["task_hash"]
    assert cached_next not in asked
    second.close()
    monkeypatch.undo()
    third = open_session(inputs, db, None)  # matched again: the same next question
    assert third.next_question("bob")["task_hash"] == cached_next
    third.close()


@pytest.mark.parametrize("change", ["patterns.jsonl", "texts.jsonl", "lfs.py"])
def test_a_changed_rule_text_or_function_file_is_built_again(copies, tmp_path, change):
    counting = Counting()
    build = cached_builder(tmp_path / "cache", "d-0", stored=STORED, build=counting)
    files = ([copies / "patterns.jsonl"], copies / "texts.jsonl")
    first = build(*files, lfs=copies / "lfs.py")
    build(*files, lfs=copies / "lfs.py")
    assert counting.builds == 1
    with (copies / change).open("a", encoding="utf8") as file:
        file.write({"patterns.jsonl": '{"label": "DISEASE", "pattern": "xylophonitis"}\n',
                    "texts.jsonl": '{"text": "A new text about asthma."}\n', "lfs.py": "# a comment\n"}[change])
    changed = build(*files, lfs=copies / "lfs.py")
    assert counting.builds == 2
    if change == "patterns.jsonl":
        assert len(changed.columns) == len(first.columns) + 1
    if change == "texts.jsonl":
        assert changed.texts == first.texts + 1 == 51
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the older entry is gone


def test_a_table_whose_texts_are_not_in_the_database_is_built_again(inputs, copies, tmp_path):
    """A fresh database (or one whose dataset lacks texts) builds, and so stores, the texts again."""
    db = tmp_path / "b.db"
    counting = Counting()
    open_session(inputs, db, store_builder(db, "ncbi", build=counting)).close()
    cache = default_cache_dir(db)
    db.unlink()
    fresh = open_session(inputs, db, store_builder(db, "ncbi", cache_dir=cache, build=counting))
    assert counting.builds == 2 and fresh.store.dataset_texts("ncbi")[1] == 200
    fresh.close()
    files = ([copies / "patterns.jsonl"], copies / "texts.jsonl")
    missing = cached_builder(cache, "other", stored=lambda: None, build=counting)
    missing(*files)
    missing(*files)
    assert counting.builds == 4  # no dataset in the database: nothing cached, nothing loaded
    too_few = cached_builder(cache, "few", stored=lambda: (1.0, 49), build=counting)
    too_few(*files)
    too_few(*files)
    assert counting.builds == 6  # 49 of 50 texts stored: built again
    moved = cached_builder(cache, "few", stored=lambda: (2.0, 50), build=counting)
    moved(*files)
    assert counting.builds == 7  # a dataset created at another time (a new database): built again


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_broken_cache_file_is_a_warning_and_a_rebuild(copies, tmp_path, damage):
    counting = Counting()
    build = cached_builder(tmp_path / "cache", "d-0", stored=STORED, build=counting)
    files = ([copies / "patterns.jsonl"], copies / "texts.jsonl")
    expected = build(*files)
    [entry] = (tmp_path / "cache").iterdir()
    data = entry.read_bytes()
    entry.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a cache" * 100, "empty": b""}[damage])
    with pytest.warns(Notice, match="cannot be read"):
        rebuilt = build(*files)
    assert counting.builds == 2
    assert_identical(rebuilt, expected)
    assert_identical(build(*files), expected)  # written again, whole: loaded
    assert counting.builds == 2


def test_the_command_reads_the_table_back_unless_rebuild_is_given(copies, tmp_path, monkeypatch):
    from bootstrap.cli import app

    counting = Counting()
    monkeypatch.setattr("bootstrap.table.build_table", counting)
    served = []
    monkeypatch.setattr("bootstrap.server.serve", lambda session, **kwargs: (served.append(session), session.close()))
    command = [str(copies / "patterns.jsonl"), str(copies / "texts.jsonl"), "--db", str(tmp_path / "b.db"),
               "--handoff", "never", "--dataset", "ncbi"]
    for extra, builds in (([], 1), ([], 1), (["--rebuild"], 2), ([], 2)):
        result = CliRunner().invoke(app, command + extra)
        assert result.exit_code == 0, result.output
        assert counting.builds == builds, extra
    assert len(served) == 4 and served[-1].table.texts == 50
    assert len(list((tmp_path / "b.db.cache").iterdir())) == 1

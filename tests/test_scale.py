"""Candidate generation on a Dask cluster gives the single-process table exactly.

Real texts (NCBI abstracts and WNUT tweets), the bundled rules for several labels, with and
without labeling functions; partitions small enough that they discover different boundary
columns, so the merge has to put the columns in the order one builder would.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import textwrap
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.corpus import read_texts
from bootstrap.labelmatrix import CandidateTable, concat_tables
from bootstrap.scale import Recipe, build_table_dask, partial_table, partitions
from bootstrap.session import Session
from bootstrap.table import build_table

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = [ROOT / "examples" / "diseases" / "patterns.jsonl", *sorted((ROOT / "patterns").glob("*.jsonl"))]
EXAMPLE_LFS = ROOT / "examples" / "diseases" / "lfs.py"
FAILING_LFS = '''
from bootstrap.lfs import labeling_function

@labeling_function(label="DISEASE")
def long_spans_only(span):
    """Fails on short spans, so the table has errors to merge."""
    if len(span.text) < 8:
        raise ValueError(f"too short: {span.text}")
    return True if len(span.text) > 20 else None
'''


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory) -> Path:
    """300 texts: 150 NCBI training abstracts, then 150 WNUT training tweets."""
    path = tmp_path_factory.mktemp("scale") / "texts.jsonl"
    with path.open("w", encoding="utf8") as out:
        for name in ("ncbi-disease/train.jsonl", "wnut17/train.jsonl"):
            with (shared_data / name).open(encoding="utf8") as file:
                out.writelines(itertools.islice(file, 150))
    return path


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@pytest.fixture(params=["rules only", "example functions", "failing function"])
def lfs(request, tmp_path) -> Path | None:
    if request.param == "rules only":
        return None
    if request.param == "example functions":
        return EXAMPLE_LFS
    path = tmp_path / "failing_lfs.py"
    path.write_text(textwrap.dedent(FAILING_LFS), encoding="utf8")
    return path


def assert_same_table(got: CandidateTable, expected: CandidateTable) -> None:
    """Every field equal: arrays in value and dtype, columns, span texts, errors in order."""
    for field in dataclasses.fields(CandidateTable):
        a, b = getattr(got, field.name), getattr(expected, field.name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), field.name
        else:
            assert a == b, field.name
    assert got.errors.messages() == expected.errors.messages()


def test_merged_partitions_equal_one_build_with_columns_in_build_order(corpus, lfs):
    whole = build_table(PATTERNS, corpus, lfs=lfs)
    recipe = Recipe.from_files(PATTERNS, lfs, None, "en", "ORTH")
    parts = [partial_table(recipe, chunk) for chunk in partitions(read_texts(corpus), 40)]
    boundaries = [[c.name for c in part.columns if c.kind == "boundary"] for part in parts]
    assert len(parts) == 8 and len({tuple(b) for b in boundaries}) > 2  # the parts disagree on columns
    assert whole.n_questions > 1000 and len(whole.labels) > 2
    if lfs is not None and lfs.name == "failing_lfs.py":
        assert whole.errors.counts["long_spans_only"] > 10
    assert_same_table(concat_tables(parts), whole)


def test_tables_of_other_rules_are_not_concatenated(corpus):
    records = list(itertools.islice(read_texts(corpus), 20))
    one = partial_table(Recipe.from_files(PATTERNS, None, None, "en", "ORTH"), records)
    other = partial_table(Recipe.from_files(PATTERNS[:1], None, None, "en", "ORTH"), records)
    with pytest.raises(ValueError, match="different rules"):
        concat_tables([one, other])


def test_two_dask_workers_build_the_single_process_table(corpus, lfs, client):
    expected = build_table(PATTERNS, corpus, lfs=lfs)
    got = build_table_dask(PATTERNS, corpus, lfs=lfs, client_or_address=client, partition_size=45)
    assert_same_table(got, expected)


def test_a_session_built_on_dask_stores_every_text_and_asks_the_same_questions(corpus, client, tmp_path):
    build = functools.partial(build_table_dask, client_or_address=client, partition_size=60)
    local = Session.from_files(PATTERNS, corpus, db=tmp_path / "local.db", dataset="d")
    on_dask = Session.from_files(PATTERNS, corpus, db=tmp_path / "dask.db", dataset="d", build=build)
    try:
        assert on_dask._index_of.hashes.tolist() == local._index_of.hashes.tolist()
        hashes = [record.input_hash for record in read_texts(corpus)]
        assert all(on_dask.store.example("d", h) == local.store.example("d", h) is not None for h in hashes)
        assert on_dask.next_question("alice")["task_hash"] == local.next_question("alice")["task_hash"]
    finally:
        local.close()
        on_dask.close()


@pytest.mark.parametrize("address", ["local:0", "local:two"])
def test_a_bad_local_cluster_is_a_usage_error(corpus, address):
    result = CliRunner().invoke(app, ["annotate", str(PATTERNS[0]), str(corpus), "--dask", address])
    assert result.exit_code == 2 and "local:N" in result.output

"""The throughput benchmark's figures are well-formed and both paths match the same spans.

Its speed is not tested here (that is what the script prints); its correctness is: a
comparison between paths that found different matches would be meaningless.
"""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "candidates_throughput.py"


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("candidates_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_corpus_is_cut_and_repeated_to_size(throughput, shared_data):
    source = shared_data / "ncbi-disease" / "dev.jsonl"
    sentences = throughput.build_corpus(source, 3000)
    assert len(sentences) == 3000
    assert all(len(text) >= 20 and "\n" not in text for text in sentences)
    assert len(set(sentences)) < 3000  # dev has fewer sentences: the pool was repeated
    abstracts = throughput.build_corpus(source, 50, unit="abstracts")
    assert set(abstracts) <= {json.loads(line)["text"] for line in source.open(encoding="utf8")}
    assert throughput.build_corpus(source, 50, seed=1) != throughput.build_corpus(source, 50, seed=2)


def test_benchmark_figures_on_200_texts(throughput, shared_data, capsys):
    source = shared_data / "ncbi-disease" / "train.jsonl"
    code = throughput.main(["--source", str(source), "--texts", "200", "--repeats", "2", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["texts"] == 200 and result["repeats"] == 2
    assert len(result["runs"]) == 2 * len(throughput.RUNNERS)
    for run in result["runs"]:
        assert run["texts"] == 200
        assert run["seconds"] > 0 and run["cpu_seconds"] > 0 and math.isfinite(run["texts_per_second"]) and run["texts_per_second"] > 0
    assert set(result["texts_per_second"]) == set(result["median_texts_per_second"]) == {"baseline", "candidates", "check"}
    for path, best in result["texts_per_second"].items():
        assert best == max(run["texts_per_second"] for run in result["runs"] if run["path"] == path)
        assert best >= result["median_texts_per_second"][path]
    assert set(result["ratio"]) == {"candidates", "check"}
    assert all(ratio > 0 and math.isfinite(ratio) for ratio in result["ratio"].values())
    # Every path, every run, found the same number of (rule, span) matches, and some at all.
    assert result["same_matches"]
    (count,) = result["matches"]["baseline"]
    assert count > 50
    assert result["matches"] == {path: [count] for path in ("baseline", "candidates", "check")}


def test_paths_agree_when_a_rule_hits_one_span_twice(throughput, tmp_path, capsys):
    """money-symbol has a token pattern and a regex that both match "£3m": one match, on both paths."""
    source = tmp_path / "money.jsonl"
    source.write_text(
        '{"text": "The club paid £3m for him and $ 5 for a ticket."}\n'
        '{"text": "They borrowed $1.2bn from banks, about 40 percent of it in USD."}\n',
        encoding="utf8",
    )
    patterns = [str(throughput.ROOT / "patterns" / "money.jsonl")]
    args = ["--source", str(source), "--unit", "abstracts", "--texts", "2", "--repeats", "1", "--json"]
    assert throughput.main([*args, "--patterns", *patterns]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["same_matches"]
    assert result["matches"]["baseline"] == [3]  # £3m, $ 5, $1.2bn


def test_output_keeps_a_row_per_corpus_and_rules(throughput, shared_data, tmp_path, capsys):
    """--output adds a row for a new corpus and replaces the row of one measured again."""
    source, output = shared_data / "ncbi-disease" / "dev.jsonl", tmp_path / "throughput.json"
    common = ["--source", str(source), "--repeats", "1", "--output", str(output)]
    assert throughput.main([*common, "--texts", "30"]) == 0
    assert throughput.main([*common, "--texts", "40"]) == 0
    assert throughput.main([*common, "--texts", "30", "--seed", "3"]) == 0
    capsys.readouterr()
    rows = json.loads(output.read_text(encoding="utf8"))["rows"]
    assert [row["texts"] for row in rows] == [40, 30]
    assert all(row["patterns"] == ["examples/diseases/patterns.jsonl"] and row["unit"] == "sentences" for row in rows)
    assert all("runs" not in row and row["same_matches"] and set(row["ratio"]) == {"candidates", "check"} for row in rows)


def test_the_readmes_quote_the_committed_results():
    """Every figure block in README.md and examples/README.md is what readme_figures.py writes from
    benchmarks/results/: no figure typed by hand, none left stale by a new run."""
    completed = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "readme_figures.py"), "--check"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr

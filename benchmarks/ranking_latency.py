"""How long the ranking takes to react to one decision, at 100k candidates.

The label matrix of the NCBI-disease training texts under the example rules is tiled until it
holds ``--candidates`` rows (each copy a different text, so rows and questions are distinct),
the aggregate is fit once, and then, ``--decisions`` times: record one gold-like decision
(``Aggregate.observe``), rescore every open question and pick the next (``Ranker.next``), then
close it. Prints p50/p95/max of that step in milliseconds, wall and CPU time (the machine is
shared: other jobs slow the wall clock several-fold), the part of answer→next that is ours
(the store's commit is measured by the store's own benchmark).

    python benchmarks/ranking_latency.py [--candidates 100000] [--decisions 200]

The figures are also written to ``benchmarks/results/ranking_latency.json`` (``--output``), which
the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import spacy

from bootstrap.aggregate import Aggregate
from bootstrap.candidates import generate_candidates
from bootstrap.corpus import read_texts
from bootstrap.labelmatrix import CandidateTable, build_candidate_table
from bootstrap.matching import RuleMatcher
from bootstrap.ranking import Ranker
from bootstrap.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def tiled(table: CandidateTable, rows: int) -> CandidateTable:
    """``table`` repeated until it has at least ``rows`` rows, each copy on other input hashes."""
    copies = -(-rows // table.n_rows)
    offsets = np.repeat(np.arange(copies, dtype=np.int64), table.n_rows)
    tile = lambda array: np.tile(array, copies)  # noqa: E731
    question_offsets = np.repeat(np.arange(copies, dtype=np.int64) * table.n_rows, table.n_questions)
    return replace(
        table,
        input_hash=tile(table.input_hash) + offsets, start=tile(table.start), end=tile(table.end),
        token_start=tile(table.token_start), token_end=tile(table.token_end), text=table.text * copies,
        L=np.tile(table.L, (copies, 1)),
        question_row=(tile(table.question_row) + question_offsets).astype(np.int32),
        question_class=tile(table.question_class),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "ranking_latency.json")
    args = parser.parse_args()
    nlp = spacy.blank("en")
    rules = load_rules(ROOT / "examples/diseases/patterns.jsonl", nlp.vocab)
    base = build_candidate_table(
        generate_candidates(nlp, RuleMatcher(nlp, rules), read_texts(DATA / "ncbi-disease/train.jsonl")), rules
    )
    table = tiled(base, args.candidates)
    started = time.perf_counter()
    aggregate = Aggregate(table, seed=args.seed)
    fit_seconds = time.perf_counter() - started
    ranker = Ranker(aggregate, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    timings, cpu_timings = [], []
    choice = ranker.next()
    for _ in range(args.decisions):
        started, cpu_started = time.perf_counter(), time.process_time()
        aggregate.observe(choice.row, table.class_of(choice.label), "accept" if rng.random() < 0.4 else "reject", choice.exploration)
        ranker.close(choice.index)
        choice = ranker.next()
        timings.append((time.perf_counter() - started) * 1000)
        cpu_timings.append((time.process_time() - cpu_started) * 1000)
    p50, p95 = np.percentile(timings, [50, 95])
    cpu_p50, cpu_p95 = np.percentile(cpu_timings, [50, 95])
    print(f"{table.n_rows:,} candidates, {table.n_questions:,} questions, {len(table.columns)} LFs ({aggregate.method}, fit {fit_seconds:.1f} s)")
    print(f"decision → every open question rescored → next question, over {args.decisions} decisions:")
    print(f"  wall p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {max(timings):.1f} ms")
    print(f"  CPU  p50 {cpu_p50:.1f} ms   p95 {cpu_p95:.1f} ms (the machine is shared: CPU time is the steadier figure)")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    args.output.write_text(json.dumps({
        "benchmark": "benchmarks/ranking_latency.py", "commit": commit, "candidates": table.n_rows,
        "questions": table.n_questions, "lfs": len(table.columns), "method": aggregate.method,
        "fit_s": round(fit_seconds, 2), "decisions": args.decisions, "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2), "max_ms": round(max(timings), 2),
        "cpu_p50_ms": round(float(cpu_p50), 2), "cpu_p95_ms": round(float(cpu_p95), 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }, indent=1) + "\n", encoding="utf8")


if __name__ == "__main__":
    main()

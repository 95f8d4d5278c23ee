"""Answer → next question, through the whole session, on a 100k-text corpus.

Builds a corpus of ``--texts`` sentences sampled (with replacement, numbered so every text is
distinct) from the shared NCBI-disease and WNUT-17 training texts, starts a real
``Session`` on it with the example's DISEASE rules (texts and questions stored in a fresh SQLite
file), and then answers ``--decisions`` questions: each step is ``Session.answer`` (committed and
synced to disk) followed by ``Session.next_question`` (rescoring, a lease, the text read back from
the store). Prints start-up time and p50/p95/max of that step; the page adds one HTTP round trip
on 127.0.0.1 to it. Each step's CPU time is measured beside its wall time (the machine is shared:
CPU time is the steadier figure), and the load average is recorded.

The LabelModel's refits (every 100 decisions) run in a worker process (:mod:`bootstrap.refit`):
the CPU time measured is the session's process alone; the fits swapped in during the steps are
counted.

The step includes the page's estimates (``bootstrap.estimates``: the labels' precision and recall
and the stopping hint), recomputed on every answer for the first 20 and every 25 after.

    python benchmarks/session_latency.py [--texts 100000] [--decisions 600] [--http]

Results go to ``benchmarks/results/session_latency[_http].json``; the README quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from bootstrap.corpus import read_texts
from bootstrap.handoff import HandoffPolicy
from bootstrap.session import Session, SessionConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def sample_corpus(path: Path, texts: int, seed: int) -> None:
    sentences = []
    for source in (DATA / "ncbi-disease/train.jsonl", DATA / "wnut17/train.jsonl"):
        for record in read_texts(source):
            sentences.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+", record.text) if len(s.strip()) > 20)
    rng = random.Random(seed)
    with path.open("w", encoding="utf8") as out:
        for i in range(texts):
            out.write(json.dumps({"text": f"{rng.choice(sentences)} ({i})"}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--http", action="store_true", help="answer through the JSON API (FastAPI's TestClient)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "texts.jsonl"
        sample_corpus(corpus, args.texts, args.seed)
        started = time.perf_counter()
        session = Session.from_files(
            [ROOT / "examples/diseases/patterns.jsonl"], corpus, db=Path(tmp) / "bootstrap.db", dataset="bench",
            config=SessionConfig(seed=args.seed, handoff=HandoffPolicy(mode="never")),
        )
        startup = time.perf_counter() - started
        fits_before = session.refit.applied
        rng = np.random.default_rng(args.seed)
        timings, cpu = [], []
        if args.http:  # through the page's API: POST /api/answer returns the next task
            from fastapi.testclient import TestClient

            from bootstrap.server import create_app

            # as a context manager the client keeps one event loop for every request, as a server
            # does; without, it starts a thread and a loop per request (~20 ms CPU of its own)
            with TestClient(create_app(session)) as client:
                task = client.get("/api/next", params={"session": "bench"}).json()["task"]
                for _ in range(args.decisions):
                    started, started_cpu = time.perf_counter(), time.process_time()
                    body = {"task_hash": task["task_hash"], "answer": "accept" if rng.random() < 0.4 else "reject", "session": "bench"}
                    task = client.post("/api/answer", json=body).json()["task"]
                    timings.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - started_cpu) * 1000)
        else:
            task = session.next_question("bench")
            for _ in range(args.decisions):
                started, started_cpu = time.perf_counter(), time.process_time()
                session.answer("bench", task["task_hash"], "accept" if rng.random() < 0.4 else "reject")
                task = session.next_question("bench")
                timings.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
        fits = session.refit.applied - fits_before
        session.close()
    p50, p95 = np.percentile(timings, [50, 95])
    cpu50, cpu95 = np.percentile(cpu, [50, 95])
    print(f"{args.texts:,} texts, {session.table.n_questions:,} questions ({session.aggregate.method}); start-up {startup:.1f} s")
    via = "POST /api/answer (the page's round trip, in-process)" if args.http else "Session.answer + next_question"
    print(f"answer (durable) → next question via {via}, {args.decisions} decisions (refits in the background):")
    print(f"  wall p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {max(timings):.1f} ms")
    print(f"  CPU  p50 {cpu50:.1f} ms   p95 {cpu95:.1f} ms (the session's process; the LabelModel fits in a worker)")
    print(f"  LabelModel fits swapped in during the steps: {fits}")
    result = {
        "texts": args.texts, "questions": session.table.n_questions, "decisions": args.decisions, "via": via,
        "http": args.http, "startup_seconds": round(startup, 1), "load_average": [round(x, 2) for x in os.getloadavg()],
        "wall_ms": {"p50": round(p50, 1), "p95": round(p95, 1), "max": round(max(timings), 1)},
        "cpu_ms": {"p50": round(cpu50, 1), "p95": round(cpu95, 1)},
        "label_model_fits": fits,
    }
    path = RESULTS / f"session_latency{'_http' if args.http else ''}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Answer → next question, through the whole session, on a 100k-text corpus.

Builds a corpus of ``--texts`` sentences sampled (with replacement, numbered so every text is
distinct) from the shared NCBI-disease and WNUT-17 training texts, starts a real
``Session`` on it with the example's DISEASE rules (texts and questions stored in a fresh SQLite
file), and then answers ``--decisions`` questions: each step is ``Session.answer`` (committed and
synced to disk) followed by ``Session.next_question`` (rescoring, a lease, the text read back from
the store). Prints start-up time and p50/p95/max of that step; the page adds one HTTP round trip
on 127.0.0.1 to it.

    python benchmarks/session_latency.py [--texts 100000] [--decisions 300] [--http]
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--decisions", type=int, default=300)
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
        rng = np.random.default_rng(args.seed)
        timings = []
        if args.http:  # through the page's API: POST /api/answer returns the next task
            from fastapi.testclient import TestClient

            from bootstrap.server import create_app

            client = TestClient(create_app(session))
            task = client.get("/api/next", params={"session": "bench"}).json()["task"]
            for _ in range(args.decisions):
                started = time.perf_counter()
                body = {"task_hash": task["task_hash"], "answer": "accept" if rng.random() < 0.4 else "reject", "session": "bench"}
                task = client.post("/api/answer", json=body).json()["task"]
                timings.append((time.perf_counter() - started) * 1000)
        else:
            task = session.next_question("bench")
            for _ in range(args.decisions):
                started = time.perf_counter()
                session.answer("bench", task["task_hash"], "accept" if rng.random() < 0.4 else "reject")
                task = session.next_question("bench")
                timings.append((time.perf_counter() - started) * 1000)
        session.close()
    p50, p95 = np.percentile(timings, [50, 95])
    print(f"{args.texts:,} texts, {session.table.n_questions:,} questions ({session.aggregate.method}); start-up {startup:.1f} s")
    via = "POST /api/answer (the page's round trip, in-process)" if args.http else "Session.answer + next_question"
    print(f"answer (durable) → next question via {via}, {args.decisions} decisions (refits in the background):")
    print(f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {max(timings):.1f} ms")


if __name__ == "__main__":
    main()

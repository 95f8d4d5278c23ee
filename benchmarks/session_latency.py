"""Answer → next question, through the whole session, on a 100k-text corpus.

Builds a corpus of ``--texts`` sentences sampled (with replacement, numbered so every text is
distinct) from the shared NCBI-disease and WNUT-17 training texts, starts a real
``Session`` on it with the example's DISEASE rules (texts and questions stored in a fresh SQLite
file), and then answers ``--decisions`` questions: each step is ``Session.answer`` (committed and
synced to disk) followed by ``Session.next_question`` (rescoring, a lease, the text read back from
the store). Prints start-up time and p50/p95/max of that step; the page adds one HTTP round trip
on 127.0.0.1 to it.

    python benchmarks/session_latency.py [--texts 100000] [--decisions 300]
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
        task = session.next_question("bench")
        timings = []
        for _ in range(args.decisions):
            started = time.perf_counter()
            session.answer("bench", task["task_hash"], "accept" if rng.random() < 0.4 else "reject")
            task = session.next_question("bench")
            timings.append((time.perf_counter() - started) * 1000)
        session.close()
    p50, p95 = np.percentile(timings, [50, 95])
    print(f"{args.texts:,} texts, {session.table.n_questions:,} questions ({session.aggregate.method}); start-up {startup:.1f} s")
    print(f"answer (durable) → next question, {args.decisions} decisions (a refit every 100 runs in the background):")
    print(f"  p50 {p50:.1f} ms   p95 {p95:.1f} ms   max {max(timings):.1f} ms")


if __name__ == "__main__":
    main()

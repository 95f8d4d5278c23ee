"""How long one handoff training takes as the corpus grows: 1k, 10k and 100k texts.

The corpus is NCBI-disease's training sentences (``../shared/data``, by path), repeated with a
numbered suffix until it has N distinct texts; the rules are ``examples/diseases``. For each
size: the candidate table (what the session holds in memory anyway, not counted), then the
handoff's own two steps, each in CPU seconds of this process: the whole-corpus training set
(``weak_labels.build_training_set``, bounded by ``WeakLabelConfig.max_words``) and the spaCy
training (``weak_labels.train_model`` with the handoff's epochs and patience). The training
set's budget keeps the second step flat once the corpus is larger than it.

    python benchmarks/handoff_training.py [--sizes 1000,10000,100000]

Writes ``benchmarks/results/handoff_training.json`` (``readme_figures.py`` quotes it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ncbi-disease" / "train.jsonl"
PATTERNS = ROOT / "examples" / "diseases" / "patterns.jsonl"
RESULTS = ROOT / "benchmarks" / "results"


def sentences(path: Path) -> list[str]:
    found = []
    for line in path.read_text(encoding="utf8").splitlines():
        found.extend(s.strip() for s in re.split(r"(?<=\.)\s+", json.loads(line)["text"]) if len(s.split()) >= 5)
    return found


def corpus(base: list[str], size: int):
    from bootstrap.corpus import Record
    from bootstrap.hashing import input_hash

    for i in range(size):
        text = base[i % len(base)] if i < len(base) else f"{base[i % len(base)]} ({i // len(base)})"
        yield Record(text, input_hash(text), f"corpus:{i + 1}")


def measure(base: list[str], size: int) -> dict:
    import spacy

    from bootstrap.session import SessionConfig
    from bootstrap.table import build_table
    from bootstrap.weak_labels import build_training_set, train_model

    config = SessionConfig()
    records = list(corpus(base, size))
    table = build_table([PATTERNS], records)
    started = time.process_time()
    training_set = build_training_set(spacy.blank("en"), table, [], ((r.input_hash, r.text) for r in records),
                                      config.weak_labels)
    build = time.process_time() - started
    with tempfile.TemporaryDirectory() as output:
        result = train_model(training_set, output, max_epochs=config.handoff.max_epochs, patience=config.handoff.patience)
    docs = training_set.train + training_set.dev
    return {"corpus_texts": size, "train_texts": len(docs), "words": sum(len(doc.text.split()) for doc in docs),
            "build_cpu_seconds": round(build, 2), "train_cpu_seconds": result["scores"]["train_cpu_seconds"],
            "max_epochs": config.handoff.max_epochs, "patience": config.handoff.patience}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--output", type=Path, default=RESULTS / "handoff_training.json")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"error: {DATA} not found (the shared NCBI-disease data)", file=sys.stderr)
        return 1
    base = sentences(DATA)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        row = measure(base, size)
        rows.append(row)
        print(f"{row['corpus_texts']:>7,} texts: trained on {row['train_texts']:,} texts ({row['words']:,} words); "
              f"training set {row['build_cpu_seconds']:.1f} CPU s, training {row['train_cpu_seconds']:.0f} CPU s", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"rows": rows}, indent=2) + "\n", encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

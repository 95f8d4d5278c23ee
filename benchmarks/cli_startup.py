"""How long the command line takes from Enter to done, on the bundled example.

A command line that needs seconds to print ``--help`` feels broken, whatever it does later. This
runs each command below as a fresh ``bootstrap`` process (``python -m bootstrap``, nothing
imported beforehand) ``--repeats`` times and prints the first run, the median and the fastest,
in wall-clock seconds:

* ``--help``: the top-level help, which should need no heavy library at all;
* ``check --help``: a command's help, the same;
* ``check``: the example's rules on its 190 texts (spaCy is imported: it tokenizes);
* ``stats``: the datasets of a database (no spaCy, no Snorkel);
* ``stats PATTERNS TEXTS``: the per-rule table, which replays decisions into a LabelModel
  (spaCy, Snorkel and torch are all needed, and all imported).

The database for ``stats`` is made first, untimed, by ``bootstrap import`` of the first
``--decisions`` texts of ``examples/diseases/gold.jsonl`` as accepted manual tasks.

The file cache is warm after the first run (it is one machine, shared with other jobs, and
dropping the cache would slow them down): "first" is the closest to a cold start measured
here, and still faster than a truly cold disk.

    python benchmarks/cli_startup.py [--repeats 5] [--json] [--output benchmarks/results/cli_startup.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "diseases"
DATASET = "example"


def commands(db: Path) -> dict[str, list[str]]:
    """The timed commands, by name, as arguments of ``bootstrap``."""
    files = [str(EXAMPLE / "patterns.jsonl"), str(EXAMPLE / "texts.jsonl")]
    return {
        "--help": ["--help"],
        "check --help": ["check", "--help"],
        "check": ["check", *files],
        "stats": ["stats", "--db", str(db)],
        "stats PATTERNS TEXTS": ["stats", *files, "--lfs", str(EXAMPLE / "lfs.py"), "--db", str(db), "--dataset", DATASET],
    }


def bootstrap(args: list[str]) -> float:
    """Seconds one fresh ``bootstrap`` process takes; a failing command stops the benchmark."""
    env = {**os.environ, "COLUMNS": "150", "TERM": "dumb"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bootstrap", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bootstrap {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def make_database(folder: Path, decisions: int) -> Path:
    """A dataset of ``decisions`` accepted manual tasks from the example's gold (untimed)."""
    tasks = folder / "decisions.jsonl"
    with (EXAMPLE / "gold.jsonl").open(encoding="utf8") as gold, tasks.open("w", encoding="utf8") as out:
        for _, line in zip(range(decisions), gold):
            out.write(json.dumps({**json.loads(line), "answer": "accept"}) + "\n")
    db = folder / "bootstrap.db"
    bootstrap(["import", DATASET, str(tasks), "--db", str(db)])
    return db


def measure(repeats: int, decisions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = make_database(Path(tmp), decisions)
        runs = {name: [bootstrap(args) for _ in range(repeats)] for name, args in commands(db).items()}
    return {
        "repeats": repeats,
        "decisions": decisions,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seconds": {
            name: {"first": round(times[0], 3), "median": round(statistics.median(times), 3), "fastest": round(min(times), 3)}
            for name, times in runs.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--decisions", type=int, default=30, help="accepted gold texts in the stats database")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--output", type=Path, help="also write the JSON result to this file")
    args = parser.parse_args(argv)
    result = measure(args.repeats, args.decisions)
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.repeats} fresh processes each, {result['cpus']} CPUs, load average {result['load_average'][0]}")
    print(f"{'command':<24}{'first':>8}{'median':>8}{'fastest':>9}")
    for name, seconds in result["seconds"].items():
        print(f"{name:<24}{seconds['first']:>8.2f}{seconds['median']:>8.2f}{seconds['fastest']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

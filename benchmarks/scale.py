"""How bootstrap grows with the corpus: Dask against one process, and start-up cost per size.

Issue 8. Two measurements on corpora made by sampling sentences from the shared data (NCBI
abstracts cut into sentences, WNUT tweets as they are; each text is two sampled sentences, so
texts are nearly all distinct even at 1M), written to a temporary JSONL file:

* ``throughput``: texts/s of candidate generation (``build_table``: read, tokenize, match,
  vote, label matrix) in one process against ``build_table_dask`` on a ``LocalCluster`` of 2
  worker processes (``local:2``). Wall-clock seconds, best of ``--repeats`` interleaved runs
  (the machine is shared: interference only slows a run down); the cluster is started and
  warmed up (workers import bootstrap and load the rules) before timing, and its start-up is
  printed apart. The two tables must be identical, or the script says so and exits 1. CPU
  seconds of this process and of each worker are printed too: on a shared machine they say what
  the speed-up would be on cores of its own (the busiest process sets the time).
* ``growth``: for each size, a fresh Python process runs a whole session start-up
  (``Session.from_files`` on a new SQLite file: read and store every text, candidate table,
  questions stored, LabelModel fit, ranker) and reports its seconds per phase and its peak
  memory (``ru_maxrss``), next to the memory the imports alone take; then the growth from one
  size to the next (×time and ×memory for ×texts).
* ``resume``: per size, two start-ups in fresh processes on the same SQLite file with the table
  cache of ``bootstrap annotate`` (``bootstrap.table_cache``): the first builds the table, stores
  the texts and writes the cache; the second (a restart) reads the table back. Seconds and peak
  memory of both, written to ``benchmarks/results/scale_resume.json`` (the README quotes them).

    python benchmarks/scale.py throughput --texts 50000
    python benchmarks/scale.py growth --sizes 10000 100000 1000000
    python benchmarks/scale.py resume --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from candidates_throughput import SENTENCE_END  # noqa: E402  (same sentence cut as the other benchmark)

DATA = ROOT.parent / "shared" / "data"
PATTERNS = [ROOT / "examples" / "diseases" / "patterns.jsonl", *sorted((ROOT / "patterns").glob("*.jsonl"))]


def sentence_pool() -> list[str]:
    """Every NCBI sentence of 20 characters or more and every WNUT tweet, of all three splits."""
    pool = []
    for split in ("train", "dev", "test"):
        for line in (DATA / "ncbi-disease" / f"{split}.jsonl").open(encoding="utf8"):
            pool.extend(s.strip() for s in SENTENCE_END.split(json.loads(line)["text"]) if len(s.strip()) >= 20)
        pool.extend(json.loads(line)["text"] for line in (DATA / "wnut17" / f"{split}.jsonl").open(encoding="utf8"))
    return pool


def write_corpus(path: Path, n_texts: int, seed: int = 0) -> Path:
    """``n_texts`` texts of two sentences drawn at random from the pool, one JSON task a line."""
    pool, rng = sentence_pool(), random.Random(seed)
    with path.open("w", encoding="utf8") as file:
        for i in range(n_texts):
            text = f"{rng.choice(pool)} {rng.choice(pool)}"
            file.write(json.dumps({"text": text, "meta": {"i": i}}, ensure_ascii=False) + "\n")
    return path


def differences(a, b) -> list[str]:
    """Fields in which two candidate tables differ (empty: identical)."""
    arrays = ("input_hash", "start", "end", "token_start", "token_end", "L", "question_row", "question_class")
    found = [name for name in arrays if not (getattr(a, name).dtype == getattr(b, name).dtype
                                             and np.array_equal(getattr(a, name), getattr(b, name)))]
    found += [name for name in ("labels", "columns", "text", "texts", "errors") if getattr(a, name) != getattr(b, name)]
    return found


def throughput(n_texts: int, repeats: int, partition_size: int, lfs: str | None) -> int:
    from bootstrap.scale import build_table_dask, close, connect
    from bootstrap.table import build_table

    with tempfile.TemporaryDirectory() as folder:
        corpus = write_corpus(Path(folder) / "texts.jsonl", n_texts)
        started = time.perf_counter()
        client = connect("local:2")
        cluster_seconds = time.perf_counter() - started
        try:
            warm = write_corpus(Path(folder) / "warm.jsonl", 200, seed=1)
            build_table_dask(PATTERNS, warm, lfs=lfs, client_or_address=client, partition_size=100)
            build_table(PATTERNS, warm, lfs=lfs)
            single, dask, single_cpu, dask_cpu = [], [], [], []
            for _ in range(repeats):
                started, cpu = time.perf_counter(), time.process_time()
                expected = build_table(PATTERNS, corpus, lfs=lfs)
                single.append(time.perf_counter() - started)
                single_cpu.append(time.process_time() - cpu)
                workers = client.run(_cpu_seconds)
                started, cpu = time.perf_counter(), time.process_time()
                got = build_table_dask(PATTERNS, corpus, lfs=lfs, client_or_address=client, partition_size=partition_size)
                dask.append(time.perf_counter() - started)
                dask_cpu.append([time.process_time() - cpu,
                                 *sorted(after - workers[w] for w, after in client.run(_cpu_seconds).items())])
                if diff := differences(got, expected):
                    print(f"Dask's table differs from the single process's in: {', '.join(diff)}")
                    return 1
        finally:
            close(client)
    print(f"{n_texts:,} texts (two sampled sentences each), {len(PATTERNS)} pattern files"
          f"{', LFs ' + lfs if lfs else ''}; {expected.n_rows:,} candidate rows, {expected.n_questions:,} questions,"
          f" {len(expected.columns)} columns")
    print(f"LocalCluster(2 worker processes) start-up: {cluster_seconds:.1f} s (not in the rates)")
    print("| path | best s | texts/s (best) | runs (s) |\n|---|---|---|---|")
    for name, runs in (("one process", single), (f"Dask local:2, partitions of {partition_size:,}", dask)):
        print(f"| {name} | {min(runs):.1f} | {n_texts / min(runs):,.0f} | {', '.join(f'{r:.1f}' for r in runs)} |")
    print(f"speed-up in wall-clock time: {min(single) / min(dask):.2f}x; tables identical in every array, column and question")
    best = min(dask_cpu, key=max)
    print(f"CPU seconds (best run): one process {min(single_cpu):.1f}; Dask: this process {best[0]:.1f}, workers "
          f"{', '.join(f'{w:.1f}' for w in best[1:])} (sum {sum(best):.1f}). On cores of its own, the busiest process "
          f"sets the time: expected speed-up {min(single_cpu) / max(best):.2f}x")
    return 0


def _cpu_seconds() -> float:
    """CPU seconds this process has used (run on each Dask worker through ``Client.run``)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def startup_child(corpus: Path, db: Path, cached: bool = False) -> None:
    """One session start-up in this (fresh) process; prints its phases and memory as JSON.

    ``cached``: the table comes through the table cache, as ``bootstrap annotate`` builds it
    (then ``table_and_texts_stored`` is the load of a cached table on a restart, and ``matched``
    says whether the rules were matched)."""
    import torch  # noqa: F401  (the LabelModel's, imported when it first fits: counted as imports here)
    from snorkel.labeling.model import LabelModel  # noqa: F401

    from bootstrap.session import Session
    from bootstrap.table import build_table
    from bootstrap.table_cache import store_builder

    imports_mb = _rss_mb()
    phases: dict[str, float] = {"matched": 0}

    def matching(*args, **kwargs):
        phases["matched"] += 1
        return build_table(*args, **kwargs)

    build = store_builder(db, "scale", build=matching) if cached else matching

    def timed_build(*args, **kwargs):
        started, cpu = time.perf_counter(), time.process_time()
        table = build(*args, **kwargs)
        phases["table_and_texts_stored_s"] = time.perf_counter() - started
        phases["table_and_texts_stored_cpu_s"] = time.process_time() - cpu
        phases["rss_after_table_mb"] = _rss_mb()
        return table

    started, cpu = time.perf_counter(), time.process_time()
    session = Session.from_files(PATTERNS, corpus, db=db, dataset="scale", build=timed_build)
    total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
    table = session.table
    array_mb = sum(getattr(table, name).nbytes for name in
                   ("input_hash", "start", "end", "token_start", "token_end", "L", "question_row", "question_class")) / 1e6
    text_mb = sum(sys.getsizeof(t) + 8 for t in table.text) / 1e6
    hashes_mb = (sum(sys.getsizeof(h) + 8 for h in session._task_hashes) + sys.getsizeof(session._index_of)
                 + sys.getsizeof(session.ranker._index)) / 1e6
    print(json.dumps({
        "texts": table.texts, "rows": table.n_rows, "questions": table.n_questions, "columns": len(table.columns),
        "method": session.aggregate.method, "total_s": total,
        "fit_and_rest_s": total - phases["table_and_texts_stored_s"], "total_cpu_s": total_cpu,
        "fit_and_rest_cpu_s": total_cpu - phases["table_and_texts_stored_cpu_s"], **phases,
        "imports_mb": imports_mb, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_end_mb": _rss_mb(), "table_arrays_mb": array_mb, "span_text_list_mb": text_mb,
        "question_index_mb": hashes_mb,
    }))
    session.close()


def growth(sizes: list[int]) -> int:
    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            result = _start(write_corpus(Path(folder) / "texts.jsonl", n), Path(folder) / "d.db", cached=False)
            if result is None:
                return 1
            results.append(result)
            print(json.dumps(results[-1]), file=sys.stderr)
    print("Seconds are CPU seconds of the start-up process (wall-clock in brackets: the machine is shared).")
    print("| texts | candidate rows | questions | table + texts stored s | fit, questions, ranker s | start-up s "
          "| peak MB | peak − imports MB | table arrays MB | span strings MB | question indexes MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['texts']:,} | {r['rows']:,} | {r['questions']:,} | {r['table_and_texts_stored_cpu_s']:.1f} "
              f"({r['table_and_texts_stored_s']:.0f}) | {r['fit_and_rest_cpu_s']:.1f} ({r['fit_and_rest_s']:.0f}) "
              f"| {r['total_cpu_s']:.1f} ({r['total_s']:.0f}) | {r['peak_mb']:,.0f} | {r['peak_mb'] - r['imports_mb']:,.0f} "
              f"| {r['table_arrays_mb']:.1f} | {r['span_text_list_mb']:.1f} | {r['question_index_mb']:.1f} |")
    print("\n| from → to | × texts | × start-up CPU time | × peak memory | × memory above imports |\n|---|---|---|---|---|")
    for a, b in itertools.pairwise(results):
        print(f"| {a['texts']:,} → {b['texts']:,} | {b['texts'] / a['texts']:.0f} | {b['total_cpu_s'] / a['total_cpu_s']:.1f} "
              f"| {b['peak_mb'] / a['peak_mb']:.2f} | {(b['peak_mb'] - b['imports_mb']) / (a['peak_mb'] - a['imports_mb']):.1f} |")
    return 0


def _start(corpus: Path, db: Path, cached: bool) -> dict | None:
    """One start-up in a fresh process (``startup_child``): its JSON, or None (its error printed)."""
    done = subprocess.run([sys.executable, __file__, "_startup", str(corpus), str(db), *(["cached"] if cached else [])],
                          capture_output=True, text=True)
    if done.returncode:
        print(done.stderr[-3000:])
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def resume(sizes: list[int], output: Path) -> int:
    """First start (table built, texts stored, cache written) and restart (table read back) per size."""
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            corpus, db = write_corpus(Path(folder) / "texts.jsonl", n), Path(folder) / "d.db"
            first = _start(corpus, db, cached=True)
            again = _start(corpus, db, cached=True) if first else None
            if again is None:
                return 1
            if first["matched"] != 1 or again["matched"] != 0 or again["questions"] != first["questions"]:
                print(f"the restart matched again or differs: {first} {again}")
                return 1
            cache_mb = sum(p.stat().st_size for p in (Path(folder) / "d.db.cache").iterdir()) / 1e6
            keep = ("total_s", "total_cpu_s", "table_and_texts_stored_s", "table_and_texts_stored_cpu_s",
                    "fit_and_rest_s", "fit_and_rest_cpu_s", "peak_mb", "imports_mb")
            rows.append({"texts": first["texts"], "rows": first["rows"], "questions": first["questions"],
                         "cache_file_mb": round(cache_mb, 1),
                         "first": {k: round(first[k], 2) for k in keep}, "resume": {k: round(again[k], 2) for k in keep},
                         "load_average": [round(x, 2) for x in os.getloadavg()]})
            print(json.dumps(rows[-1]), file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    output.write_text(json.dumps({"benchmark": "benchmarks/scale.py resume", "commit": commit,
                                  "pattern_files": len(PATTERNS), "rows": rows}, indent=1) + "\n", encoding="utf8")
    print("| texts | questions | first start s (CPU) | peak MB | restart s (CPU) | peak MB | table read back s | cache file MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["first"], r["resume"]
        print(f"| {r['texts']:,} | {r['questions']:,} | {a['total_s']:.1f} ({a['total_cpu_s']:.1f}) | {a['peak_mb']:,.0f} "
              f"| {b['total_s']:.1f} ({b['total_cpu_s']:.1f}) | {b['peak_mb']:,.0f} | {b['table_and_texts_stored_s']:.2f} "
              f"| {r['cache_file_mb']:.1f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_startup"]:
        startup_child(Path(argv[1]), Path(argv[2]), cached=argv[3:4] == ["cached"])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("throughput", help="texts/s in one process vs Dask local:2, and the tables compared")
    one.add_argument("--texts", type=int, default=50_000)
    one.add_argument("--repeats", type=int, default=2)
    one.add_argument("--partition-size", type=int, default=2_500)
    one.add_argument("--lfs", default=None, help="a labeling-function file to apply as well")
    two = commands.add_parser("growth", help="start-up time and peak memory per corpus size")
    two.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    three = commands.add_parser("resume", help="first start against a restart that reads the cached table back")
    three.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    three.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "scale_resume.json")
    args = parser.parse_args(argv)
    if args.command == "throughput":
        return throughput(args.texts, args.repeats, args.partition_size, args.lfs)
    if args.command == "resume":
        return resume(args.sizes, args.output)
    return growth(args.sizes)


if __name__ == "__main__":
    sys.exit(main())

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
* ``start``: per size, ``bootstrap annotate``'s start-up as the command runs it
  (``bootstrap.reading.start_session``) in a fresh process on a new SQLite file: seconds to the
  first question (a session on the first ``FIRST_TEXTS`` texts), seconds until the whole table,
  read, stored and matched in the background process, is in the session, and peak memory of
  both processes; then a restart in another fresh process on the same database (the whole table
  read back from the cache). Written to ``benchmarks/results/scale_start.json`` (the README
  quotes it).

    python benchmarks/scale.py throughput --texts 50000
    python benchmarks/scale.py growth --sizes 10000 100000 1000000
    python benchmarks/scale.py start --sizes 10000 100000 1000000
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
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from candidates_throughput import SENTENCE_END  # noqa: E402  (same sentence cut as the other benchmark)
from readme_figures import start_table  # noqa: E402  (the README's table, printed here too)

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


def startup_child(corpus: Path, db: Path) -> None:
    """One one-stage session start-up in this (fresh) process; prints its phases and memory as JSON."""
    import torch  # noqa: F401  (the LabelModel's, imported when it first fits: counted as imports here)
    from snorkel.labeling.model import LabelModel  # noqa: F401

    from bootstrap.session import Session
    from bootstrap.table import build_table

    imports_mb = _rss_mb()
    phases: dict[str, float] = {}

    def timed_build(*args, **kwargs):
        started, cpu = time.perf_counter(), time.process_time()
        table = build_table(*args, **kwargs)
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
    hashes_mb = (3 * session._index_of.hashes.nbytes + session.ranker._question_at.nbytes
                 + session.ranker._question_cell.nbytes) / 1e6
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
            result = _startup(write_corpus(Path(folder) / "texts.jsonl", n), Path(folder) / "d.db")
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


def _startup(corpus: Path, db: Path) -> dict | None:
    """One start-up in a fresh process (``startup_child``): its JSON, or None (its error printed)."""
    done = subprocess.run([sys.executable, __file__, "_startup", str(corpus), str(db)],
                          capture_output=True, text=True)
    if done.returncode:
        print(done.stderr[-3000:])
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_child(corpus: Path, db: Path, first_texts: int) -> None:
    """One ``bootstrap annotate`` start-up in this (fresh) process, as the command builds it: the
    first question's seconds, then (if the rest of the corpus is read in the background) the
    seconds until the whole table is in the session; peak memory of this process and of the
    reading process. Prints JSON."""
    started, cpu = time.perf_counter(), time.process_time()
    from bootstrap.config import HandoffPolicy, SessionConfig
    from bootstrap.reading import start_session

    session = start_session(PATTERNS, corpus, db=str(db), dataset="scale", first_texts=first_texts,
                            config=SessionConfig(handoff=HandoffPolicy(mode="never")))
    assert session.next_question() is not None
    first_s, first_cpu_s, first_peak = time.perf_counter() - started, time.process_time() - cpu, _peak_mb()
    streamed = session.reading is not None
    reading_peak = [0.0]
    if streamed:
        watch = threading.Thread(target=_watch_peak, args=(session.reading._process.pid, reading_peak), daemon=True)
        watch.start()
        assert session.reading.wait() and session.reading.error is None, session.reading.error
        watch.join()
        assert session.next_question() is not None
    whole_s = time.perf_counter() - started
    session.wait_for_refit()  # the LabelModel's fit after a start runs in the background: its memory counts
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # (its ru_maxrss counts the parent's pages at fork)
    print(json.dumps({
        "streamed": streamed, "first_question_s": first_s, "first_question_cpu_s": first_cpu_s,
        "first_texts": session.reading.first if streamed else session.table.texts,
        "whole_table_s": whole_s, "questions": session.table.n_questions, "texts": session.table.texts,
        "peak_mb_at_first_question": first_peak, "peak_mb": _peak_mb(),
        "reading_process_cpu_s": children.ru_utime + children.ru_stime,
        "reading_process_peak_mb": reading_peak[0],
    }))
    session.close()


def _watch_peak(pid: int, peak: list[float], every: float = 0.1) -> None:
    """The reading process's peak memory (``VmHWM``: since its exec, unlike ``ru_maxrss``), read
    until it ends."""
    status = Path(f"/proc/{pid}/status")
    while True:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            return
        time.sleep(every)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start(sizes: list[int], first_texts: int, output: Path) -> int:
    """Per size: a first start on an empty database (first question, whole table read in the
    background) and a restart in a fresh process (the whole table read back from the cache)."""
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            corpus, db = write_corpus(Path(folder) / "texts.jsonl", n), Path(folder) / "d.db"
            runs = []
            for _ in ("first", "restart"):
                done = subprocess.run([sys.executable, __file__, "_start", str(corpus), str(db), str(first_texts)],
                                      capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr[-3000:])
                    return 1
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            first, again = runs
            if again["streamed"] or again["questions"] != first["questions"]:
                print(f"the restart did not read the whole table back: {first} {again}")
                return 1
            rows.append({"texts": n, "questions": first["questions"], "first": first, "restart": again,
                         "load_average": [round(x, 2) for x in os.getloadavg()]})
            print(json.dumps(rows[-1]), file=sys.stderr)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    output.write_text(json.dumps({"benchmark": "benchmarks/scale.py start", "commit": commit, "first_texts": first_texts,
                                  "pattern_files": len(PATTERNS), "cpus": os.cpu_count(), "rows": rows}, indent=1) + "\n",
                      encoding="utf8")
    print(start_table(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_startup"]:
        startup_child(Path(argv[1]), Path(argv[2]))
        return 0
    if argv[:1] == ["_start"]:
        start_child(Path(argv[1]), Path(argv[2]), int(argv[3]))
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
    three = commands.add_parser("start", help="seconds to the first question, to the whole table, and on a restart")
    three.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    three.add_argument("--first-texts", type=int, default=None, help="default: bootstrap's FIRST_TEXTS")
    three.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "scale_start.json")
    args = parser.parse_args(argv)
    if args.command == "throughput":
        return throughput(args.texts, args.repeats, args.partition_size, args.lfs)
    if args.command == "start":
        from bootstrap.config import FIRST_TEXTS

        return start(args.sizes, FIRST_TEXTS if args.first_texts is None else args.first_texts, args.output)
    return growth(args.sizes)


if __name__ == "__main__":
    sys.exit(main())

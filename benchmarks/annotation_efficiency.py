"""Does the loop beat its rules, and does active order beat random order? Over several seeds.

Runs ``bootstrap simulate`` on a gold-annotated corpus from ``../shared/data`` (read by path):
the pool is ``train.jsonl``'s texts answered from their own gold, the test split
``test.jsonl`` (never asked about). Data sets:

* ``ncbi``: NCBI-disease with ``examples/diseases/patterns.jsonl`` and ``lfs.py``;
* ``wnut``: WNUT-17 with ``examples/social-media/patterns.jsonl`` (six competing labels).

Strategies: ``active`` (the product: reach-weighted ranking, a first model at the start, the
model entering the loop when it wins), ``random`` (random order over the rules' candidates, no
model in the loop), the flat lines ``rules`` (the rules as written), ``labelmodel`` (Snorkel's
LabelModel, ``p > 0.5``), ``aggregate`` (the fit the loop uses before any decision) and, for
the first seed only, ``gold`` (a model trained on every pool text fully annotated: the
ceiling). At every checkpoint both orders train the same way: on the whole pool, weakly
labelled by the rules and corrected by every decision so far (``bootstrap.weak_labels``), and
the curve is the pipeline the training hands over (the corrected rules, unless the model after
them, then the model alone, beat the choice so far on the held-out texts with confidence:
``bootstrap.comparison.choose``), with the model alone beside it (``ner``) and every choice's F
(what a perfect choice would have had).

One process per seed (the machine has two cores: run two at once), then ``summarize``
(``--only active`` re-runs one strategy of a seed and keeps the others from its file, when a
change cannot have touched them: the file records the commit of each, and the library versions
and processor a re-run trained with)::

    python benchmarks/annotation_efficiency.py run --data ncbi --seed 0
    python benchmarks/annotation_efficiency.py run --data ncbi --seed 1
    python benchmarks/annotation_efficiency.py summarize --data ncbi

``summarize`` writes ``benchmarks/results/annotation_efficiency_{data}.json`` (every seed's
curves and the mean / min / max per checkpoint) and a PNG, and prints the figures the issues
ask for; ``benchmarks/readme_figures.py`` puts them in the README. A seed takes 20-30 minutes
on the 2-core machine (one spaCy training a checkpoint, 5 epochs at most).

Five epochs do not hold the models back on NCBI-disease (its ceiling stops early at the same
F, 0.753, with 5 or 10). On WNUT-17 the ceiling is 0.105 at 5 epochs and 0.132 at 10 or 20
(early stopping ends both alike), still below the rules' 0.198: a blank ``en`` pipeline without
vectors does not learn these entity types from a few thousand posts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
NO_MODEL = RESULTS / "corrected_rules"  # the runs that train no model (--no-model)
FIRST_MODEL = RESULTS / "first_model"  # the runs whose only model is active's first (--first-model)
DATASETS = {
    "ncbi": {"folder": SHARED / "ncbi-disease", "patterns": ROOT / "examples/diseases/patterns.jsonl",
             "lfs": ROOT / "examples/diseases/lfs.py", "name": "NCBI-disease"},
    "wnut": {"folder": SHARED / "wnut17", "patterns": ROOT / "examples/social-media/patterns.jsonl",
             "lfs": None, "name": "WNUT-17"},
}
CHECKPOINTS = (0, 100, 200, 400)
ORDERS = ("active", "random")


def seed_path(data: str, seed: int, results: Path = RESULTS) -> Path:
    return results / "annotation_efficiency" / f"{data}-seed{seed}.json"


def run(data: str, seed: int, max_epochs: int, results: Path, only: list[str] | None = None, handoff: str = "auto",
        model_share: float | None = None, train: bool = True, first_model: bool = False) -> int:
    """One seed; with ``only``, just those strategies, merged into the seed's existing file (the
    others kept as they were, and the file says which strategies were re-run at which commit)."""
    from bootstrap.simulate import simulate

    spec = DATASETS[data]
    pool, test = spec["folder"] / "train.jsonl", spec["folder"] / "test.jsonl"
    for path in (pool, test):
        if not path.is_file():
            print(f"error: {path} not found (the shared {spec['name']} data)", file=sys.stderr)
            return 1
    strategies = only or ["active", "random", "rules"] + (["gold"] if seed == 0 and train else [])
    result = simulate([spec["patterns"]], pool, pool, test=test, budget=CHECKPOINTS[-1], checkpoints=CHECKPOINTS,
                      seed=seed, strategies=strategies, lfs=spec["lfs"], max_epochs=max_epochs, handoff=handoff,
                      train=train, first_model=first_model, **({} if model_share is None else {"model_share": model_share}))
    path = seed_path(data, seed, results)
    result["settings"]["commit"] = _commit()
    if only:
        if not path.is_file():
            print(f"error: --only needs the seed's earlier run in {path}", file=sys.stderr)
            return 1
        earlier = json.loads(path.read_text(encoding="utf8"))
        earlier["strategies"].update(result["strategies"])  # ("rules" brings its flat lines: labelmodel, aggregate)
        how = result["settings"]["commit"] + ("" if handoff == "auto" else f", handoff {handoff}") + (
            "" if model_share is None else f", model share {model_share}")
        earlier["settings"].setdefault("rerun", {}).update(dict.fromkeys(only, how))
        # the library versions the re-run strategies trained with (a model's figures depend on them)
        earlier["settings"].setdefault("rerun_versions", {}).update(dict.fromkeys(only, result["settings"]["versions"]))
        result = earlier
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    for name in ORDERS:
        points = result["strategies"][name]["points"]
        print(f"{name:7} " + "  ".join(f"{p['decisions']}: F {p['f']:.3f}" for p in points), flush=True)
    print(f"rules F {result['strategies']['rules']['f']:.3f}; {result['seconds']:.0f} s; {path}")
    return 0


def _commit() -> str:
    """The commit the run measured (with ``+`` when the tree had uncommitted changes)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+" if git("status", "--porcelain", "bootstrap") else "")


def summarize(data: str, results: Path) -> dict[str, Any]:
    """Every seed's file of ``data`` into one summary (``bootstrap.seeds.summarize``) and a PNG."""
    from bootstrap import seeds

    runs = sorted(results.glob(f"annotation_efficiency/{data}-seed*.json"), key=lambda path: int(path.stem.rpartition("seed")[2]))
    if not runs:
        raise SystemExit(f"no runs for {data} in {results / 'annotation_efficiency'}: run some seeds first")
    summary = seeds.summarize([json.loads(path.read_text(encoding="utf8")) for path in runs], DATASETS[data]["name"])
    path = results / f"annotation_efficiency_{data}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    seeds.plot(summary, results / f"annotation_efficiency_{data}.png")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "summarize"))
    parser.add_argument("--data", choices=sorted(DATASETS), default="ncbi")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=5)
    parser.add_argument("--results", type=Path, default=None, help=f"default: {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--only", action="append", choices=(*ORDERS, "rules", "gold"),
                        help="run just this strategy (repeat), merged into the seed's existing file "
                             "('rules' brings the labelmodel and aggregate lines too)")
    parser.add_argument("--handoff", choices=("auto", "now"), default="auto",
                        help="the active session's handoff: 'now' puts every model it trains in the loop")
    parser.add_argument("--model-share", type=float, default=None,
                        help="the active session's share of ranked questions given to the model's questions "
                             "(default: the session's)")
    parser.add_argument("--no-model", action="store_true",
                        help=f"train no model: score the rules corrected by the decisions at each checkpoint "
                             f"(a minute a seed; results in {NO_MODEL.relative_to(ROOT)} unless --results)")
    parser.add_argument("--first-model", action="store_true",
                        help=f"as --no-model, but active order's session trains its first model at the start and "
                             f"keeps it in the loop (a training a seed; results in {FIRST_MODEL.relative_to(ROOT)} "
                             f"unless --results)")
    args = parser.parse_args(argv)
    if args.no_model and args.first_model:
        parser.error("--no-model and --first-model exclude each other")
    default = NO_MODEL if args.no_model else FIRST_MODEL if args.first_model else RESULTS
    results = args.results if args.results is not None else default
    if args.command == "run":
        return run(args.data, args.seed, args.max_epochs, results, args.only, args.handoff, args.model_share,
                   train=not (args.no_model or args.first_model), first_model=args.first_model)
    from bootstrap.seeds import report

    for line in report(summarize(args.data, results)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

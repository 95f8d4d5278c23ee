"""Does the loop reach a good model with fewer decisions than annotating in random order?

Runs ``bootstrap simulate`` on NCBI-disease: the pool is ``train.jsonl``'s texts answered from
its own gold, the test split ``test.jsonl`` (never asked about), the rules
``examples/diseases/patterns.jsonl``. Strategies ``active`` (the product's ranking and handoff),
``random`` (random order over the same candidates), ``rules`` (the rules and the LabelModel
alone) and ``gold`` (a model trained on every pool text fully annotated: the ceiling), all with
the same seed. Prints the decisions each needs to reach 80% and 90% of the ceiling F1 and
writes the curves to ``benchmarks/results/annotation_efficiency.{json,png}``.

Default run: budget 400 decisions, a model every 100, at most 8 epochs per model (patience 3):
14 minutes on the 2-core machine when it is quiet, 30 when other jobs load it. The goal:
active at 90% of the ceiling with at most a fifth of the decisions random order needs.

    python benchmarks/annotation_efficiency.py [--budget 400] [--checkpoint 100] [--seed 0] [--noise 0.0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from bootstrap.cli.simulate import reach_table
from bootstrap.simulate import STRATEGIES, simulate, write_curves

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ncbi-disease"
PATTERNS = ROOT / "examples" / "diseases" / "patterns.jsonl"
RESULTS = ROOT / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--checkpoint", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train.jsonl and test.jsonl")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where annotation_efficiency.{json,png} go")
    parser.add_argument("--all-answered", action="store_true",
                        help="also answer every candidate the rules propose (random order, no handoff) and train once: "
                             "the most binary decisions on these candidates can teach (~10 more minutes)")
    args = parser.parse_args(argv)
    train, test = args.data / "train.jsonl", args.data / "test.jsonl"
    for path in (train, test):
        if not path.is_file():
            print(f"error: {path} not found (the shared NCBI-disease data)", file=sys.stderr)
            return 1
    result = simulate([PATTERNS], train, train, test=test, budget=args.budget, checkpoint=args.checkpoint,
                      seed=args.seed, strategies=args.strategies.split(","), noise=args.noise,
                      max_epochs=args.max_epochs)
    write_curves(result, args.output, stem="annotation_efficiency")

    console = Console(width=120)
    console.print(reach_table(result))
    for name, curve in result["strategies"].items():
        if curve["kind"] == "decisions":
            line = ", ".join(f"{p['decisions']}: F {p['f']:.3f} (P {p['precision']:.2f} R {p['recall']:.2f}, "
                             f"{p['accepts']} acc)" for p in curve["points"])
            console.print(f"{name:8} {line}", highlight=False)
    reach = result["reach"]
    active, random_order = (reach.get(name, {}).get("90%") for name in ("active", "random"))
    if "active" in reach and "random" in reach:
        if active is None:
            verdict = "active did not reach 90% of the ceiling within the budget"
        elif random_order is None:
            verdict = f"active reached 90% at {active} decisions; random order not within {args.budget}"
        else:
            verdict = f"random order needs {random_order / max(active, 1):.1f}x the decisions active needs"
        console.print(f"90% of the ceiling: {verdict} (goal: 5x)", highlight=False)
    console.print(f"seed {args.seed}; {result['seconds']:.0f} s; curves in {args.output}", highlight=False)
    if args.all_answered:
        everything = simulate([PATTERNS], train, train, test=test, budget=10**6, checkpoint=10**6, seed=args.seed,
                              strategies=["random"], noise=args.noise, max_epochs=args.max_epochs)
        (args.output / "annotation_efficiency_all_answered.json").write_text(json.dumps(everything, indent=2) + "\n")
        point = everything["strategies"]["random"]["points"][-1]
        share = f", {point['f'] / result['ceiling_f']:.0%} of the ceiling" if result.get("ceiling_f") else ""
        console.print(f"every candidate answered ({point['decisions']:,} decisions, {point['accepts']:,} accepts): "
                      f"F {point['f']:.3f} (P {point['precision']:.2f} R {point['recall']:.2f}){share}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

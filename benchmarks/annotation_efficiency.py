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
change cannot have touched them: the file records the commit of each)::

    python benchmarks/annotation_efficiency.py run --data ncbi --seed 0
    python benchmarks/annotation_efficiency.py run --data ncbi --seed 1
    python benchmarks/annotation_efficiency.py summarize --data ncbi

``summarize`` writes ``benchmarks/results/annotation_efficiency_{data}.json`` (every seed's
curves and the mean / min / max per checkpoint) and a PNG, and prints the figures the issues
ask for; ``benchmarks/readme_figures.py`` puts them in the README. A seed takes 20-30 minutes
on the 2-core machine (one spaCy training a checkpoint, 5 epochs at most).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
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
FLAT = ("rules", "labelmodel", "aggregate", "gold")


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


def spread(values: list[float]) -> dict[str, float]:
    """Mean, range and the standard error of the mean (``se``: the seeds' standard deviation over
    the square root of their number; 0 with one seed). The runs of one order spread widely: on
    NCBI-disease the rules corrected by 200 decisions range over 0.06 F between seeds, so a
    difference between two orders says something only where it is well above the error."""
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4),
            "se": round(se, 4), "n": len(values)}


def lead(curves: dict[str, list[dict[str, Any]]]) -> list[dict[str, float]]:
    """Active's lead over random per checkpoint, with its standard error (the two orders' errors
    combined: their runs are independent draws)."""
    return [{"decisions": a["decisions"], "mean": round(a["f"]["mean"] - r["f"]["mean"], 4),
             "se": round(math.hypot(a["f"].get("se", 0.0), r["f"].get("se", 0.0)), 4)}
            for a, r in zip(curves["active"], curves["random"])]


def needed(mean_curve: list[dict[str, Any]], level: float) -> int | None:
    """The first checkpoint whose mean F reaches ``level`` (None: not within the budget)."""
    return next((point["decisions"] for point in mean_curve if point["f"]["mean"] >= level), None)


def summarize(data: str, results: Path) -> dict[str, Any]:
    """Every seed's file of ``data`` into one summary (and a PNG)."""
    runs = sorted(results.glob(f"annotation_efficiency/{data}-seed*.json"), key=lambda path: int(path.stem.rpartition("seed")[2]))
    if not runs:
        raise SystemExit(f"no runs for {data} in {results / 'annotation_efficiency'}: run some seeds first")
    seeds = [json.loads(path.read_text(encoding="utf8")) for path in runs]
    summary: dict[str, Any] = {"data": DATASETS[data]["name"], "seeds": [s["settings"]["seed"] for s in seeds],
                               "commits": list(dict.fromkeys(s["settings"].get("commit", "?") for s in seeds)),
                               "checkpoints": list(CHECKPOINTS), "settings": seeds[0]["settings"], "orders": {}}
    flat = {}
    for name in FLAT:
        values = [s["strategies"][name]["f"] for s in seeds if name in s["strategies"]]
        if values:
            flat[name] = spread(values)
    summary["flat"] = flat
    for name in ORDERS:
        curve = []
        for i, checkpoint in enumerate(CHECKPOINTS):
            points = [s["strategies"][name]["points"][i] for s in seeds]
            asked = [p for p in points if p["decisions"]]
            handed = [p.get("pipeline", "ner") for p in points]
            curve.append({
                "decisions": checkpoint, "f": spread([p["f"] for p in points]),
                "ner_f": spread([p.get("ner", p)["f"] for p in points]),
                "pipelines": {name: handed.count(name) for name in dict.fromkeys(handed)},
                "choices_f": choices_f(points),
                "precision": spread([p["precision"] for p in points]), "recall": spread([p["recall"] for p in points]),
                "accept_share": spread([p["accepts"] / p["decisions"] for p in asked]) if asked else None,
            })
        summary["orders"][name] = curve
        # runs from before trainings handed over a pipeline scored the model alone
        summary.setdefault("scored", {})[name] = (
            "pipeline" if all("pipeline" in p for s in seeds for p in s["strategies"][name]["points"]) else "model alone")
    summary["lead"] = lead(summary["orders"])
    rules = flat["rules"]["mean"]
    ceiling = flat.get("gold", {}).get("mean")
    summary["reach"] = {name: {"rules": needed(curve, rules + 1e-9), "rules + 0.10": needed(curve, rules + 0.10),
                               "80% of ceiling": needed(curve, 0.8 * ceiling) if ceiling else None}
                        for name, curve in summary["orders"].items()}
    summary["beyond_rules"] = {
        name: spread([v for v in (_beyond_rules_share(s, name) for s in seeds) if v is not None] or [0.0])
        for name in ORDERS}
    accepted = {name: [v for v in (_beyond_rules_accepted(s, name) for s in seeds) if v is not None] for name in ORDERS}
    summary["beyond_rules_accepted"] = {name: spread(values) for name, values in accepted.items() if values}
    summary["handoff_verdicts"] = handoff_verdicts(seeds)
    path = results / f"annotation_efficiency_{data}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    plot(summary, results / f"annotation_efficiency_{data}.png")
    return summary


def choices_f(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Each pipeline a training chose from, scored on the test gold (mean over the seeds that
    recorded it): what a perfect choice would have handed over."""
    names = dict.fromkeys(name for p in points for name in p.get("choices_f") or {})
    return {name: spread([p["choices_f"][name] for p in points if name in (p.get("choices_f") or {})]) for name in names}


def handoff_verdicts(seeds: list[dict[str, Any]]) -> dict[str, int]:
    """How often the handoff's comparison on held-out texts said what the test gold says: at each
    active checkpoint with both scores, is the model better than the rules? (``model_better``:
    how often the gold says it is; ``adopted``: how often the handoff let the model in.)"""
    counts = {"compared": 0, "agreed": 0, "model_better": 0, "adopted": 0}
    for seed in seeds:
        rules = seed["strategies"]["rules"]["f"]
        for point in seed["strategies"]["active"]["points"]:
            held_out = point.get("held_out") or {}
            if not point["decisions"] or held_out.get("model_f") is None or held_out.get("rules_f") is None:
                continue
            says, truth = held_out["model_f"] > held_out["rules_f"], point.get("ner", point)["f"] > rules  # the model alone
            counts["compared"] += 1
            counts["agreed"] += says == truth
            counts["model_better"] += truth
            counts["adopted"] += bool(point.get("adopted"))
    return counts


def _beyond_rules_share(seed_result: dict[str, Any], name: str) -> float | None:
    """The share of the strategy's questions about spans no rule proposed (the model's)."""
    curve = seed_result["strategies"][name]
    asked = curve.get("asked") or {}
    total = asked.get("questions")
    return None if not total else asked.get("beyond_rules", 0) / total


def _beyond_rules_accepted(seed_result: dict[str, Any], name: str) -> float | None:
    """The share of those questions the annotator accepted (runs from before it was recorded: None)."""
    asked = seed_result["strategies"][name].get("asked") or {}
    if "beyond_rules_accepted" not in asked or not asked.get("beyond_rules"):
        return None
    return asked["beyond_rules_accepted"] / asked["beyond_rules"]


def report(summary: dict[str, Any]) -> list[str]:
    """The lines ``summarize`` prints (and the README quotes)."""
    lines = []
    flat = summary["flat"]
    lines.append(f"{summary['data']}, seeds {', '.join(map(str, summary['seeds']))}: rules F {flat['rules']['mean']:.3f}, "
                 f"LabelModel {flat['labelmodel']['mean']:.3f}, aggregate (what the loop uses) "
                 f"{flat['aggregate']['mean']:.3f}" + (f", ceiling {flat['gold']['mean']:.3f}" if "gold" in flat else ""))
    for name, curve in summary["orders"].items():
        cells = [f"{p['decisions']}: {p['f']['mean']:.3f} [{p['f']['min']:.3f}-{p['f']['max']:.3f}]" for p in curve]
        lines.append(f"{name:7} F (mean [min-max]) " + "  ".join(cells)
                     + ("" if summary.get("scored", {}).get(name) != "model alone" else "  (the model alone: run before the pipeline choice)"))
        if summary["settings"].get("train", True) and any(p["pipelines"] != {"ner": len(summary["seeds"])} for p in curve):
            handed = [", ".join(f"{k} {v}" for k, v in p["pipelines"].items()) for p in curve]
            lines.append(f"{'':7} its model alone: " + "  ".join(f"{p['decisions']}: {p['ner_f']['mean']:.3f}" for p in curve)
                         + "; pipelines handed over (seeds): " + " | ".join(handed))
        if any(p.get("choices_f") for p in curve):
            lines.append(f"{'':7} each choice on the test gold: " + " | ".join(
                f"{p['decisions']}: " + ", ".join(f"{k} {v['mean']:.3f}" for k, v in p["choices_f"].items())
                for p in curve if p.get("choices_f")))
        shares = [f"{p['accept_share']['mean']:.0%}" for p in curve if p["accept_share"]]
        accepted = summary.get("beyond_rules_accepted", {}).get(name)
        lines.append(f"{'':7} accepted share of questions at each checkpoint: {', '.join(shares)}; "
                     f"questions on spans no rule proposed: {summary['beyond_rules'][name]['mean']:.1%}"
                     + (f" ({accepted['mean']:.0%} of them accepted)" if accepted else ""))
    lines.append("active's lead over random (± standard error): "
                 + "  ".join(f"{p['decisions']}: {p['mean']:+.3f} ± {p['se']:.3f}" for p in summary["lead"]))
    verdicts = summary.get("handoff_verdicts")
    if verdicts and verdicts["compared"]:
        lines.append(f"handoff: the held-out comparison agreed with the test gold at {verdicts['agreed']} of "
                     f"{verdicts['compared']} checkpoints (the model better on gold at {verdicts['model_better']}, "
                     f"let in at {verdicts['adopted']})")
    for name, reach in summary["reach"].items():
        lines.append(f"{name:7} decisions to reach the rules' F: {_fmt(reach['rules'])}, the rules' F + 0.10: "
                     f"{_fmt(reach['rules + 0.10'])}, 80% of the ceiling: {_fmt(reach['80% of ceiling'])}")
    return lines


def _fmt(value: int | None) -> str:
    return f"> {CHECKPOINTS[-1]}" if value is None else str(value)


def plot(summary: dict[str, Any], path: Path) -> None:
    """Mean F per checkpoint with the min-max band of the seeds, the model alone dashed where the
    pipeline handed over was another; the flat lines dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"active": "tab:blue", "random": "tab:orange", "rules": "tab:gray", "labelmodel": "tab:green",
              "aggregate": "tab:olive", "gold": "black"}
    figure, axes = plt.subplots(figsize=(8, 4.2), dpi=120)
    for name, curve in summary["orders"].items():
        xs = [p["decisions"] for p in curve]
        axes.plot(xs, [p["f"]["mean"] for p in curve], marker="o", color=colors[name], label=f"{name} (mean)")
        axes.fill_between(xs, [p["f"]["min"] for p in curve], [p["f"]["max"] for p in curve], color=colors[name], alpha=0.2)
        if any(p.get("ner_f", p["f"]) != p["f"] for p in curve):
            axes.plot(xs, [p["ner_f"]["mean"] for p in curve], marker=".", linestyle="--", color=colors[name],
                      label=f"{name}: its model alone")
    for name, values in summary["flat"].items():
        axes.axhline(values["mean"], color=colors[name], linestyle="--" if name == "gold" else ":",
                     label=f"{'ceiling' if name == 'gold' else name} F {values['mean']:.2f}")
    axes.set_xlabel("decisions")
    axes.set_ylabel("entity F1 on the gold test split")
    scored = "" if summary["settings"].get("train", True) else ", the rules corrected by the decisions (no model)"
    axes.set_title(f"{summary['data']}: {len(summary['seeds'])} seeds, band = min-max{scored}", fontsize=9)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


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
    for line in report(summarize(args.data, results)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

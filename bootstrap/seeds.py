"""Several seeds of one simulation in one summary: what a difference between two orders is worth.

One run of the loop says little. The occurrence drawn of a frequent string decides that string
everywhere, so the runs of one order spread widely: on NCBI-disease the rules corrected by 200
decisions range over 0.06 F between seeds, and a 3-seed mean has a standard error of about
0.012. :func:`summarize` puts the runs of :func:`bootstrap.simulate.simulate` (one a seed, the
same settings otherwise) together: per checkpoint the mean, range and standard error of each
order's F, active order's lead over random order with its error, the decisions each order needs
to reach the rules' F, the rules' F + 0.10 and 80% of the ceiling, and what the questions were
(accepted, on spans no rule proposed). ``bootstrap simulate --seed 0 --seed 1 --seed 2`` and
``benchmarks/annotation_efficiency.py`` both write it, so the README's figures and a user's own
are computed alike.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Sequence

ORDERS = ("active", "random")
FLAT = ("rules", "labelmodel", "aggregate", "gold")


def spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, range and the standard error of the mean (``se``: the seeds' standard deviation over
    the square root of their number; 0 with one seed). A difference between two orders says
    something only where it is well above the error."""
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


def curve_commits(run: dict[str, Any]) -> list[str]:
    """The commits a run's curves were measured at: a strategy re-run on its own (the benchmark's
    ``--only``) at its own, the others at the run's."""
    rerun, commit = run["settings"].get("rerun") or {}, run["settings"].get("commit") or "?"
    return [rerun.get(strategy, commit).split(",")[0] for strategy in run["strategies"]]


def summarize(runs: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """The runs of one data set (one a seed, as ``simulate`` returns them) in one summary."""
    if not runs:
        raise ValueError("no runs to summarize")
    runs = sorted(runs, key=lambda run: run["settings"]["seed"])
    checkpoints = list(runs[0]["settings"]["checkpoints"])
    summary: dict[str, Any] = {"data": name, "seeds": [run["settings"]["seed"] for run in runs],
                               "commits": list(dict.fromkeys(commit for run in runs for commit in curve_commits(run))),
                               "checkpoints": checkpoints, "settings": runs[0]["settings"], "orders": {}}
    summary["flat"] = flat = {line: spread([run["strategies"][line]["f"] for run in runs if line in run["strategies"]])
                              for line in FLAT if any(line in run["strategies"] for run in runs)}
    orders = [order for order in ORDERS if all(order in run["strategies"] for run in runs)]
    for order in orders:
        curve = []
        for i, checkpoint in enumerate(checkpoints):
            points = [run["strategies"][order]["points"][i] for run in runs]
            asked = [p for p in points if p["decisions"]]
            handed = [p.get("pipeline", "ner") for p in points]
            curve.append({
                "decisions": checkpoint, "f": spread([p["f"] for p in points]),
                "ner_f": spread([p.get("ner", p)["f"] for p in points]),
                "pipelines": {pipeline: handed.count(pipeline) for pipeline in dict.fromkeys(handed)},
                "choices_f": choices_f(points),
                "precision": spread([p["precision"] for p in points]), "recall": spread([p["recall"] for p in points]),
                "accept_share": spread([p["accepts"] / p["decisions"] for p in asked]) if asked else None,
            })
        summary["orders"][order] = curve
        # runs from before trainings handed over a pipeline scored the model alone
        summary.setdefault("scored", {})[order] = (
            "pipeline" if all("pipeline" in p for run in runs for p in run["strategies"][order]["points"]) else "model alone")
    if set(ORDERS) <= set(orders):
        summary["lead"] = lead(summary["orders"])
    if "rules" in flat:
        rules, ceiling = flat["rules"]["mean"], flat.get("gold", {}).get("mean")
        summary["reach"] = {order: {"rules": needed(curve, rules + 1e-9), "rules + 0.10": needed(curve, rules + 0.10),
                                    "80% of ceiling": needed(curve, 0.8 * ceiling) if ceiling else None}
                            for order, curve in summary["orders"].items()}
    summary["beyond_rules"] = {
        order: spread([v for v in (_beyond_rules_share(run, order) for run in runs) if v is not None] or [0.0])
        for order in orders}
    accepted = {order: [v for v in (_beyond_rules_accepted(run, order) for run in runs) if v is not None] for order in orders}
    summary["beyond_rules_accepted"] = {order: spread(values) for order, values in accepted.items() if values}
    if "active" in orders and "rules" in flat:
        summary["handoff_verdicts"] = handoff_verdicts(runs)
    return summary


def choices_f(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Each pipeline a training chose from, scored on the test gold (mean over the seeds that
    recorded it): what a perfect choice would have handed over."""
    names = dict.fromkeys(name for p in points for name in p.get("choices_f") or {})
    return {name: spread([p["choices_f"][name] for p in points if name in (p.get("choices_f") or {})]) for name in names}


def handoff_verdicts(runs: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How often the handoff's comparison on held-out texts said what the test gold says: at each
    active checkpoint with both scores, is the model better than the rules? (``model_better``:
    how often the gold says it is; ``adopted``: how often the handoff let the model in.)"""
    counts = {"compared": 0, "agreed": 0, "model_better": 0, "adopted": 0}
    for run in runs:
        rules = run["strategies"]["rules"]["f"]
        for point in run["strategies"]["active"]["points"]:
            held_out = point.get("held_out") or {}
            if not point["decisions"] or held_out.get("model_f") is None or held_out.get("rules_f") is None:
                continue
            says, truth = held_out["model_f"] > held_out["rules_f"], point.get("ner", point)["f"] > rules  # the model alone
            counts["compared"] += 1
            counts["agreed"] += says == truth
            counts["model_better"] += truth
            counts["adopted"] += bool(point.get("adopted"))
    return counts


def _beyond_rules_share(run: dict[str, Any], order: str) -> float | None:
    """The share of the order's questions about spans no rule proposed (the model's)."""
    asked = run["strategies"][order].get("asked") or {}
    total = asked.get("questions")
    return None if not total else asked.get("beyond_rules", 0) / total


def _beyond_rules_accepted(run: dict[str, Any], order: str) -> float | None:
    """The share of those questions the annotator accepted (runs from before it was recorded: None)."""
    asked = run["strategies"][order].get("asked") or {}
    if "beyond_rules_accepted" not in asked or not asked.get("beyond_rules"):
        return None
    return asked["beyond_rules_accepted"] / asked["beyond_rules"]


def report(summary: dict[str, Any]) -> list[str]:
    """The summary in lines of text, as ``bootstrap simulate`` and the benchmark print it."""
    lines = []
    flat = summary["flat"]
    names = {"rules": "rules F", "labelmodel": "LabelModel", "aggregate": "aggregate (what the loop uses)",
             "gold": "ceiling"}
    head = f"{summary['data']}, seeds {', '.join(map(str, summary['seeds']))}"
    if flat:
        head += ": " + ", ".join(f"{names[line]} {values['mean']:.3f}" for line, values in flat.items())
    lines.append(head)
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
    if "lead" in summary:
        lines.append("active's lead over random (± standard error): "
                     + "  ".join(f"{p['decisions']}: {p['mean']:+.3f} ± {p['se']:.3f}" for p in summary["lead"]))
    verdicts = summary.get("handoff_verdicts")
    if verdicts and verdicts["compared"]:
        lines.append(f"handoff: the held-out comparison agreed with the test gold at {verdicts['agreed']} of "
                     f"{verdicts['compared']} checkpoints (the model better on gold at {verdicts['model_better']}, "
                     f"let in at {verdicts['adopted']})")
    budget = summary["checkpoints"][-1]
    for name, reach in summary.get("reach", {}).items():
        lines.append(f"{name:7} decisions to reach the rules' F: {_fmt(reach['rules'], budget)}, the rules' F + 0.10: "
                     f"{_fmt(reach['rules + 0.10'], budget)}, 80% of the ceiling: {_fmt(reach['80% of ceiling'], budget)}")
    return lines


def _fmt(value: int | None, budget: int) -> str:
    return f"> {budget}" if value is None else str(value)


def plot(summary: dict[str, Any], path: str | Path) -> None:
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
    settings = summary["settings"]
    scored = ("" if settings.get("train", True) else ", the rules corrected by the decisions ("
              + ("active's first model in the loop)" if settings.get("first_model") else "no model)"))
    axes.set_title(f"{summary['data']}: {len(summary['seeds'])} seeds, band = min-max{scored}", fontsize=9)
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)

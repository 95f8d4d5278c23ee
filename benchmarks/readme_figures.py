"""Write the README's measured figures from the committed results, so no figure is typed by hand.

The READMEs (``README.md``, ``examples/README.md``, ``benchmarks/README.md``) hold blocks between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->``; this
script regenerates each from ``benchmarks/results/`` and rewrites them in place (``--check``
only says whether they are up to date: ``tests/test_benchmarks.py`` runs it).

    python benchmarks/readme_figures.py [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
READMES = (ROOT / "README.md", ROOT / "examples" / "README.md", ROOT / "benchmarks" / "README.md")


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf8")) if path.is_file() else None


def _seeds(seeds: list[int]) -> str:
    """``0, 1, 2`` or, for a longer unbroken run, ``0–11``."""
    if len(seeds) > 3 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _fmt(value: int | None, budget: int) -> str:
    return f"> {budget}" if value is None else f"{value}"


def annotation_efficiency() -> str:
    """One table per data set: mean [min-max] F per checkpoint and strategy, and the flat lines."""
    blocks = []
    for data in ("ncbi", "wnut"):
        summary = _load(f"annotation_efficiency_{data}.json")
        if summary is None:
            continue
        checkpoints = summary["checkpoints"]
        budget = checkpoints[-1]
        flat = summary["flat"]
        header = "| | " + " | ".join(f"{c} decisions" for c in checkpoints) + " |"
        lines = [f"**{summary['data']}**, seeds {_seeds(summary['seeds'])} "
                 f"(F on the test split, mean [min–max] of the seeds):", "", header,
                 "|---|" + "---|" * len(checkpoints)]
        for name, curve in summary["orders"].items():
            cells = [f"{p['f']['mean']:.3f} [{p['f']['min']:.3f}–{p['f']['max']:.3f}]" for p in curve]
            alone = summary.get("scored", {}).get(name) == "model alone"
            lines.append(f"| {name}{' (its model alone: run before the pipeline choice)' if alone else ''} | "
                         + " | ".join(cells) + " |")
        lines.append(_lead_row("active − random (± standard error)", summary))
        for name, curve in summary["orders"].items():
            if all("ner_f" in p for p in curve) and any(p["ner_f"] != p["f"] for p in curve):
                handed = [", ".join(f"{kind} {n}" for kind, n in p["pipelines"].items()) for p in curve]
                lines.append(f"| {name}: its model alone (pipelines handed over, seeds) | "
                             + " | ".join(f"{p['ner_f']['mean']:.3f} ({kinds})" for p, kinds in zip(curve, handed)) + " |")
        for name, curve in summary["orders"].items():
            for choice, row in (("rules", "the corrected rules alone"), ("rules + ner", "the corrected rules before its model")):
                if all(choice in (p.get("choices_f") or {}) for p in curve):
                    lines.append(f"| {name}: {row} | " + " | ".join(f"{p['choices_f'][choice]['mean']:.3f}" for p in curve) + " |")
        lines.append("")
        lines.append(
            f"Rules alone F {flat['rules']['mean']:.3f}; Snorkel's LabelModel (p > 0.5) {flat['labelmodel']['mean']:.3f}; "
            f"the aggregate the loop uses before any decision ({summary['settings'].get('aggregate_method', 'plain vote')}) "
            f"{flat['aggregate']['mean']:.3f}" + (f"; ceiling (every pool text fully annotated) {flat['gold']['mean']:.3f}"
                                                  if "gold" in flat else "") + ".")
        for name, reach in summary["reach"].items():
            curve = summary["orders"][name]
            shares = ", ".join(f"{p['accept_share']['mean']:.0%}" for p in curve if p["accept_share"])
            lines.append(f"- {name}: decisions to reach the rules' F {_fmt(reach['rules'], budget)}, the rules' F + 0.10 "
                         f"{_fmt(reach['rules + 0.10'], budget)}, 80% of the ceiling {_fmt(reach['80% of ceiling'], budget)}; "
                         f"accepted share of its questions {shares}; questions on spans no rule proposed "
                         f"{summary['beyond_rules'][name]['mean']:.1%}.")
        rerun = summary["settings"].get("rerun") or {}
        if rerun:
            lines.append("- run at commit: " + ", ".join(f"{name} {commit}" for name, commit in rerun.items()) + ".")
        verdicts = summary.get("handoff_verdicts")
        if verdicts and verdicts["compared"]:
            lines.append(f"- the handoff's comparison on held-out texts agreed with the test gold at {verdicts['agreed']} of "
                         f"{verdicts['compared']} checkpoints (the model better on gold at {verdicts['model_better']}, "
                         f"let in at {verdicts['adopted']}).")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "(no results yet: run benchmarks/annotation_efficiency.py)"


def _lead_row(head: str, summary: dict[str, Any]) -> str:
    """A table row: active's lead over random per checkpoint, ± its standard error when the
    summary has one (``bootstrap.seeds.lead``)."""
    cells = [f"{p['mean']:+.3f}" + (f" ± {p['se']:.3f}" if p.get("se") else "") for p in summary.get("lead") or []]
    return f"| {head} | " + " | ".join(cells) + " |"


def corrected_rules_efficiency(folder: str = "corrected_rules", flag: str = "--no-model") -> str:
    """The runs that train no model (``annotation_efficiency.py --no-model``), or only active's
    first one (``--first-model``, in ``first_model/``): the rules corrected by the decisions, per
    order and checkpoint, and active's lead over random."""
    rows, notes = [], []
    for data in ("ncbi", "wnut"):
        summary = _load(f"{folder}/annotation_efficiency_{data}.json")
        if summary is None:
            continue
        checkpoints, orders, name = summary["checkpoints"], summary["orders"], summary["data"]
        if not rows:
            rows += ["| data | order | " + " | ".join(f"{c} decisions" for c in checkpoints) + " |",
                     "|---|---|" + "---|" * len(checkpoints)]
        for order, curve in orders.items():
            rows.append(f"| {name} | {order} | "
                        + " | ".join(f"{p['f']['mean']:.3f} [{p['f']['min']:.3f}–{p['f']['max']:.3f}]" for p in curve) + " |")
        rows.append(_lead_row(f"{name} | active − random (± standard error)", summary))
        reach = "; ".join(f"{order} {_fmt(r['rules + 0.10'], checkpoints[-1])}" for order, r in summary["reach"].items())
        commits = summary.get("commits") or [summary["settings"].get("commit", "?")]
        notes.append(f"- {name} (seeds {_seeds(summary['seeds'])}, rules alone F "
                     f"{summary['flat']['rules']['mean']:.3f}, commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}): "
                     f"decisions to reach the rules' F + 0.10: {reach}.")
    if not rows:
        return f"(no results yet: run benchmarks/annotation_efficiency.py {flag})"
    return "\n".join(rows + [""] + notes)


def cold_start() -> str:
    """The bundled examples: the final pipeline against the rules on held-out gold."""
    lines = ["| example | decisions | rules alone F | aggregate F | trained pipeline F (P / R) | pipeline | "
             "corrected rules F | its model F |",
             "|---|---|---|---|---|---|---|---|"]
    found = False
    for example in ("diseases", "products"):
        result = _load(f"cold_start_{example}.json")
        if result is None:
            continue
        found = True
        scores = result["scores"]
        model = scores["model"]
        lines.append(f"| `examples/{example}` | {result['decisions']} | {scores['rules']['f']:.3f} | "
                     f"{scores['aggregate']['f']:.3f} | {model['f']:.3f} ({model['precision']:.2f} / {model['recall']:.2f}) | "
                     f"{(result.get('pipeline') or {}).get('name', 'ner')} | {_f_of(scores.get('corrected rules'))} | "
                     f"{_f_of(scores.get('ner'))} |")
    return "\n".join(lines) if found else "(no results yet: run examples/cold_start.py with --report)"


def _f_of(scores: dict[str, float] | None) -> str:
    return "not measured" if scores is None else f"{scores['f']:.3f}"


def cold_start_detail() -> str:
    """``examples/README.md``: each example's run, column by column."""
    results = {name: _load(f"cold_start_{name}.json") for name in ("diseases", "products")}
    results = {name: result for name, result in results.items() if result is not None}
    if not results:
        return "(no results yet: run examples/cold_start.py with --report)"

    def runs(result: dict[str, Any]) -> str:
        cells = []
        for run in result["runs"]:
            model, rules = run.get("model_f"), run.get("rules_f")
            versus = "nothing to compare on" if model is None or rules is None else f"F {model:.3f} vs {rules:.3f}"
            verdict = "kept out" if not run["adopted"] else (
                "entered" if run.get("compared", True) else "entered uncompared: too few held-out accepts")
            cells.append(f"{run['decisions']}: {versus} ({verdict})")
        return "; ".join(cells) or "none"

    def prf(scores: dict[str, Any]) -> str:
        return f"{scores['precision']:.3f} / {scores['recall']:.3f} / {scores['f']:.3f}"

    rows = [
        ("questions at the start (rules + `lfs.py`)", lambda r: f"{r.get('questions', '?')}"),
        ("decisions (accept / reject)", lambda r: f"{r['decisions']}" + (
            f" ({r['by_answer']['accept']} / {r['by_answer']['reject']})" if r.get("by_answer") else "")),
        ("handoff runs: at decisions, model vs rules on held-out decisions", runs),
        ("ranks the questions at the end", lambda r: r["scorer"]),
        ("test P / R / F, rules alone", lambda r: prf(r["scores"]["rules"])),
        ("test P / R / F, Snorkel's LabelModel p > 0.5, no decisions", lambda r: prf(r["scores"]["labelmodel"])),
        ("test P / R / F, the loop's aggregate p > 0.5, no decisions", lambda r: prf(r["scores"]["aggregate"])),
        ("the pipeline handed over (the corrected rules unless another beat them with confidence)", lambda r: (r.get("pipeline") or {}).get("name", "ner")),
        ("test P / R / F, the trained pipeline", lambda r: prf(r["scores"]["model"])),
        ("test P / R / F, its ner model alone", lambda r: prf(r["scores"]["ner"]) if "ner" in r["scores"] else "not measured"),
        ("test P / R / F, the corrected rules before its ner",
         lambda r: prf(r["scores"]["corrected rules + ner"]) if "corrected rules + ner" in r["scores"] else "not measured"),
        ("test P / R / F, the corrected rules alone",
         lambda r: prf(r["scores"]["corrected rules"]) if "corrected rules" in r["scores"] else "not measured"),
    ]
    lines = ["| | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for name, cell in rows:
        lines.append(f"| {name} | " + " | ".join(cell(result) for result in results.values()) + " |")
    return "\n".join(lines)


def candidates_throughput() -> str:
    """Texts per CPU second of bare spaCy matching, of candidate generation and of ``check``: best runs and ratios."""
    result = _load("candidates_throughput.json")
    if result is None:
        return "(no results yet: run benchmarks/candidates_throughput.py --output benchmarks/results/candidates_throughput.json)"
    lines = ["| corpus | rules | baseline texts/s | candidates | ratio | check | ratio | load average |",
             "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        rules = " + ".join(f"`{name}`" for name in row["patterns"])
        rate, ratio = row["texts_per_second"], row["ratio"]
        lines.append(f"| {row['texts']:,} {row['unit']}, {row['repeats']} runs | {rules} ({row['rules']} rules) | "
                     f"{rate['baseline']:,.0f} | {rate['candidates']:,.0f} | {ratio['candidates']:.2f} | "
                     f"{rate['check']:,.0f} | {ratio['check']:.2f} | {row['load_average']} |")
    versions = sorted({row["spacy"] for row in result["rows"]})
    lines += ["", f"spaCy {', '.join(versions)}, blank `en`; every path found the same matches: "
              f"{'yes' if all(row['same_matches'] for row in result['rows']) else 'NO (a comparison is void)'}."]
    return "\n".join(lines)


def handoff_training() -> str:
    result = _load("handoff_training.json")
    if result is None:
        return "(no results yet: run benchmarks/handoff_training.py)"
    lines = ["| texts in the corpus | texts trained on | words | build s | train s (CPU) | epochs |", "|---|---|---|---|---|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['corpus_texts']:,} | {row['train_texts']:,} | {row['words']:,} | {row['build_cpu_seconds']:.1f} | "
                     f"{row['train_cpu_seconds']:.0f} | {row['max_epochs']} at most |")
    return "\n".join(lines)


def cli_startup() -> str:
    """Median seconds per command, before and after the command modules imported lazily."""
    before, after = _load("cli_startup_before.json"), _load("cli_startup.json")
    if before is None or after is None:
        return "(no results yet: run benchmarks/cli_startup.py)"
    lines = [f"| command | before: imports at the top (load {before['load_average'][0]}) | "
             f"now (load {after['load_average'][0]}) |", "|---|---|---|"]
    for name, seconds in after["seconds"].items():
        old = before["seconds"].get(name)
        was = "–" if old is None else f"{old['median']:.2f} s"
        lines.append(f"| `bootstrap {name}` | {was} | {seconds['median']:.2f} s |")
    return "\n".join(lines)


def session_latency() -> str:
    """Answer → next question at 100k texts, directly and through the page's API."""
    rows = [(name, _load(f"session_latency{suffix}.json")) for name, suffix in
            (("`Session.answer` + `next_question`", ""), ("`POST /api/answer` (the page's round trip)", "_http"))]
    if not any(result for _, result in rows):
        return "(no results yet: run benchmarks/session_latency.py)"
    lines = ["| step | texts | questions | wall p50 | wall p95 | CPU p50 | CPU p95 | LabelModel fits meanwhile | load average |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, result in rows:
        if result:
            wall, cpu = result["wall_ms"], result["cpu_ms"]
            lines.append(f"| {name} | {result['texts']:,} | {result['questions']:,} | {wall['p50']:.1f} ms | {wall['p95']:.1f} ms | "
                         f"{cpu['p50']:.1f} ms | {cpu['p95']:.1f} ms | {result.get('label_model_fits', '–')} | "
                         f"{result['load_average'][0]} |")
    return "\n".join(lines)


def scale_start() -> str:
    """Seconds to the first question, to the whole table and on a restart, per corpus size."""
    result = _load("scale_start.json")
    if result is None:
        return "(no results yet: run benchmarks/scale.py start)"
    return start_table(result["rows"])


def start_table(rows: list[dict]) -> str:
    """The markdown table of ``start`` (``benchmarks/scale.py start`` prints it too)."""
    lines = ["| texts | questions | first question s (CPU) | whole table s | restart: first question s (CPU) "
             "| peak MB (session) | peak MB (reading process) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        a, b = r["first"], r["restart"]
        lines.append(f"| {r['texts']:,} | {r['questions']:,} | {a['first_question_s']:.1f} ({a['first_question_cpu_s']:.1f}) "
                     f"| {a['whole_table_s']:.0f} | {b['first_question_s']:.1f} ({b['first_question_cpu_s']:.1f}) "
                     f"| {max(a['peak_mb'], b['peak_mb']):,.0f} | {a['reading_process_peak_mb']:,.0f} |")
    return "\n".join(lines)


def ranking_latency() -> str:
    """One decision to the next question: the ranking's own share of the answer's round trip."""
    result = _load("ranking_latency.json")
    if result is None:
        return "(no results yet: run benchmarks/ranking_latency.py)"
    cpu = (f" (CPU {result['cpu_p50_ms']:.0f} ms p50, {result['cpu_p95_ms']:.0f} ms p95)" if "cpu_p50_ms" in result else "")
    return (f"Rescoring every open question after a decision and picking the next takes {result['p50_ms']:.0f} ms p50, "
            f"{result['p95_ms']:.0f} ms p95{cpu} at {result['candidates'] / 1000:,.0f}k candidates "
            f"(`benchmarks/ranking_latency.py`, {result['decisions']} decisions, load average {result['load_average'][0]:.1f}).")


def aggregate_quality() -> str:
    """How well the fits rank the rules' candidates against gold, and how decisions sharpen the rest."""
    result = _load("aggregate_quality.json")
    if result is None:
        return "(no results yet: run benchmarks/aggregate_quality.py)"
    names = {"ncbi-disease": "NCBI-disease", "wnut17": "WNUT-17"}
    lines = ["| data | questions | LFs | gold yes | ROC-AUC LabelModel | ROC-AUC plain vote | ROC-AUC majority | "
             "Brier LabelModel | Brier plain vote | Brier majority |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in result.items():
        fits = [r["label_model"], r["plain_vote"], r["majority_vote"]]
        lines.append(f"| {names.get(name, name)} | {r['questions']:,} | {r['lfs']} | {r['positives']:.2f} | "
                     + " | ".join(f"{fit['roc_auc']:.3f}" for fit in fits) + " | "
                     + " | ".join(f"{fit['brier']:.3f}" for fit in fits) + " |")
    decisions = [d["decisions"] for d in next(iter(result.values()))["after_decisions"]]
    lines += ["", "Decisions sharpen the rest (the remaining candidates after N gold answers in random order, no "
              "refit, through the aggregate a session uses):", "",
              "| data | " + " | ".join(str(n) for n in decisions) + " decisions |", "|---|" + "---|" * len(decisions)]
    for name, r in result.items():
        lines.append(f"| {names.get(name, name)}, Brier / AUC | "
                     + " | ".join(f"{d['brier_rest']:.3f} / {d['roc_auc_rest']:.3f}" for d in r["after_decisions"]) + " |")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {
    "aggregate-quality": aggregate_quality,
    "session-latency": session_latency,
    "annotation-efficiency": annotation_efficiency,
    "corrected-rules-efficiency": corrected_rules_efficiency,
    "first-model-efficiency": lambda: corrected_rules_efficiency("first_model", "--first-model"),
    "cold-start": cold_start,
    "cold-start-detail": cold_start_detail,
    "handoff-training": handoff_training,
    "candidates-throughput": candidates_throughput,
    "cli-startup": cli_startup,
    "scale-start": scale_start,
    "ranking-latency": ranking_latency,
}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- figures:{name} -->\n)(?:.*?\n)?(<!-- /figures:{name} -->)", re.S)
        text = pattern.sub(lambda match: match.group(1) + make() + "\n" + match.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's figures are not the results'")
    args = parser.parse_args(argv)
    stale = []
    for readme in READMES:
        current = readme.read_text(encoding="utf8")
        wanted = render(current)
        if wanted != current:
            stale.append(readme)
            if not args.check:
                readme.write_text(wanted, encoding="utf8")
    if args.check and stale:
        print(f"figures in {', '.join(str(p.relative_to(ROOT)) for p in stale)} differ from benchmarks/results: "
              "run python benchmarks/readme_figures.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``bootstrap report``: one self-contained HTML file about a dataset, its rules and its models.

What it shows, and where the numbers come from (nothing is computed twice):

* the dataset's counts, per label and per annotator: :meth:`Store.counts`;
* per rule and labeling function: coverage, overlaps, conflicts, the LabelModel's accuracy and
  precision from the decisions with 95% intervals: the aggregate as a resuming session would
  have it, replayed read-only from the store (:func:`bootstrap.replay.replay_dataset`, as
  ``bootstrap stats`` prints them);
* the handoff's models over the decisions they were trained on, each scored with the rules on
  the same held-out decisions: :meth:`Store.model_runs`;
* decisions over time: :meth:`Store.answers`;
* a sample of texts rendered with displaCy: the rules' candidates the aggregate accepts beside
  the latest model's entities;
* patterns suggested from the decisions: :func:`bootstrap.suggest.suggest_patterns`.

The page needs no network: plots are PNGs inline as ``data:`` URIs (matplotlib, Agg backend),
the style sheet is inline and there is no script. Every user text (texts, labels, rule names,
patterns) is escaped: the template autoescapes, and displaCy, which escapes the text but not
the labels, gets escaped labels.
"""

from __future__ import annotations

import base64
import html
import io
import json
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import jinja2
import numpy as np

from .aggregate import format_interval, labelled
from .comparison import HANDOVER_CONFIDENCE
from .config import LANG, PHRASE_ATTR, SEED
from .handoff import chosen_confidence, decision_f
from .labelmatrix import BOUNDARY_SUFFIX
from .rules import load_rules
from .config import SessionConfig
from .replay import ReplayedDataset, replay_dataset
from .store import Answer, Store
from .table import build_table
from .tasks import ANSWERS
from .suggest import suggest_patterns

TEMPLATES = Path(__file__).parent / "templates"
ANSWER_COLORS = {"accept": "#2f9e5b", "reject": "#d64545", "ignore": "#a0a4ab"}
RULES_COLOR = "#4c78a8"
MODEL_COLOR = "#f58518"
ENTITY_COLORS = ("#ffd166", "#a0e7e5", "#b4f8c8", "#fbe7c6", "#ffaebc", "#cdb4db", "#bde0fe")
SUGGESTIONS_SHOWN = 12  # of each kind
PATTERN_WIDTH = 64  # characters of a rule's patterns shown in the table


@dataclass(frozen=True)
class ReportOptions:
    sample: int = 10  # texts rendered with displaCy
    seed: int = SEED
    min_count: int = 2  # of suggested patterns (see bootstrap.suggest)
    lang: str = LANG
    phrase_attr: str = PHRASE_ATTR


def write_report(
    store: Store,
    dataset: str,
    pattern_files: Sequence[str | Path],
    texts: str | Path,
    output: str | Path,
    *,
    lfs: str | Path | None = None,
    labels: Sequence[str] | None = None,
    options: ReportOptions = ReportOptions(),
) -> dict[str, Any]:
    """Build the report and write it to ``output``; returns the values it shows."""
    data = report_data(store, dataset, pattern_files, texts, lfs=lfs, labels=labels, options=options)
    Path(output).write_text(render_report(data), encoding="utf8")
    return data


def report_data(
    store: Store,
    dataset: str,
    pattern_files: Sequence[str | Path],
    texts: str | Path,
    *,
    lfs: str | Path | None = None,
    labels: Sequence[str] | None = None,
    options: ReportOptions = ReportOptions(),
) -> dict[str, Any]:
    """Everything the page shows, as plain values (the decisions replayed from the store; nothing is written)."""
    store.dataset_id(dataset, create=False)
    table = build_table(pattern_files, texts, lfs=lfs, labels=labels, lang=options.lang, phrase_attr=options.phrase_attr)
    replayed = replay_dataset(store, dataset, table, SessionConfig(lang=options.lang))
    stats = next(s for s in store.datasets() if s.name == dataset)
    counts = store.counts(dataset)
    answers = list(store.answers(dataset))
    runs = store.model_runs(dataset)
    rules = load_rules(pattern_files)
    described = {rule.id: rule.describe() for rule in rules}
    lf_stats = replayed.lf_stats()
    for lf in lf_stats:
        lf["pattern"] = _short(described.get(lf["name"].removesuffix(BOUNDARY_SUFFIX), ""), PATTERN_WIDTH)
    label_names = list(table.labels)
    colors = {label: ENTITY_COLORS[i % len(ENTITY_COLORS)] for i, label in enumerate(label_names)}
    model = _latest_model(runs)
    return {
        "dataset": dataset,
        "db": store.location,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "pattern_files": [str(path) for path in pattern_files],
        "texts_file": str(texts),
        "stats": stats.to_dict(),
        "counts": counts,
        "method": replayed.aggregate.method,
        "scorer": replayed.scorer,
        "candidates": {"texts": table.texts, "rows": table.n_rows, "questions": table.n_questions},
        "lfs": lf_stats,
        "runs": [_run_row(run) for run in runs],
        "model": None if model is None else model["path"],
        "samples": _samples(replayed, store, dataset, answers, model, colors, options),
        "suggestions": _suggestions(store, dataset, pattern_files, options),
        "plots": {
            "timeline": _timeline_plot(answers),
            "labels": _labels_plot(counts),
            "precision": _precision_plot(lf_stats),
            "learning": _learning_plot(runs),
        },
    }


def _suggestions(store: Store, dataset: str, pattern_files: Sequence[str | Path], options: ReportOptions) -> dict[str, list]:
    """The best suggested patterns and negative patterns, each with its line as the user would paste it."""
    found = suggest_patterns(store, dataset, pattern_files, min_count=options.min_count, lang=options.lang,
                             phrase_attr=options.phrase_attr)
    for suggestion in found:
        suggestion["line"] = json.dumps({k: v for k, v in suggestion["pattern"].items() if k != "comment"}, ensure_ascii=False)
    return {
        "positive": [s for s in found if not s["negative"]][:SUGGESTIONS_SHOWN],
        "negative": [s for s in found if s["negative"]][:SUGGESTIONS_SHOWN],
        "total": len(found),
    }


def render_report(data: dict[str, Any]) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters["number"] = _number
    environment.filters["interval"] = format_interval
    environment.filters["when"] = lambda seconds: datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M")
    return environment.get_template("report.html").render(answers=ANSWERS, colors=ANSWER_COLORS,
                                                          handover_confidence=HANDOVER_CONFIDENCE, **data)


# -- sample texts ----------------------------------------------------------------------------------


def _samples(replayed: ReplayedDataset, store: Store, dataset: str, answers: list[Answer], model: dict[str, Any] | None,
             colors: dict[str, str], options: ReportOptions) -> list[dict[str, Any]]:
    """A seeded sample of texts with rule candidates, each as the rules see it and as the model does.

    With a model, three times as many texts are drawn and those where the two views differ come
    first: a sample where both say the same shows little.
    """
    spans_by_text = _rule_view(replayed)
    hashes = sorted(spans_by_text)
    random.Random(options.seed).shuffle(hashes)
    nlp = _load_model(model)
    wanted = options.sample * (3 if nlp is not None else 1)
    drawn: list[tuple[int, str]] = []
    for input_hash in hashes:  # texts the store holds (a texts file may have more than the session stored)
        if len(drawn) == wanted:
            break
        stored = store.example(dataset, input_hash)
        if stored is not None:
            drawn.append((input_hash, stored[0]))
    decisions: dict[int, list[tuple[int, int, str, str]]] = {}
    for answer in answers:
        decisions.setdefault(answer.input_hash, []).append((answer.start, answer.end, answer.label, answer.answer))
    views = []
    for (input_hash, text), doc in zip(drawn, nlp.pipe(text for _, text in drawn) if nlp is not None else [None] * len(drawn)):
        rules = _without_overlaps([(s, e, label) for s, e, label, chosen in spans_by_text[input_hash] if chosen])
        predicted = None if doc is None else [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
        views.append((predicted is not None and predicted == rules, input_hash, text, rules, predicted))
    views.sort(key=lambda view: view[0])  # stable: differing views first, each group in the seeded order
    return [
        {
            "rules": render_entities(text, rules, colors),
            "model": None if predicted is None else render_entities(text, predicted, colors),
            "decisions": [
                {"text": text[s:e], "label": label, "answer": answer} for s, e, label, answer in sorted(decisions.get(input_hash, []))
            ],
        }
        for _, input_hash, text, rules, predicted in views[: options.sample]
    ]


def _rule_view(replayed: ReplayedDataset) -> dict[int, list[tuple[int, int, str, bool]]]:
    """Per text, the rules' candidates and whether the aggregate labels them (decisions included)."""
    table, rules_rows = replayed.table, replayed.rules_table.n_rows
    chosen = labelled(table, replayed.aggregate.probabilities())
    spans_by_text: dict[int, list[tuple[int, int, str, bool]]] = {}
    for i in range(table.n_questions):
        row, cls = int(table.question_row[i]), int(table.question_class[i])
        if row >= rules_rows:  # a span only the model proposed
            continue
        spans_by_text.setdefault(int(table.input_hash[row]), []).append(
            (int(table.start[row]), int(table.end[row]), table.label_of(cls), bool(chosen[i]))
        )
    return spans_by_text


def render_entities(text: str, spans: list[tuple[int, int, str]], colors: dict[str, str]) -> str:
    """displaCy's entity view of ``text``, safe to put in a page.

    displaCy escapes the text but puts labels in as they are, so labels (and the keys of
    their colours) go in escaped.
    """
    from spacy import displacy

    ents = [{"start": start, "end": end, "label": html.escape(label)} for start, end, label in sorted(spans)]
    options = {"colors": {html.escape(label): color for label, color in colors.items()}}
    return displacy.render({"text": text, "ents": ents}, style="ent", manual=True, page=False, options=options)


def _without_overlaps(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """displaCy draws no nested entities: keep the longest, then the earliest, as spaCy's filter_spans."""
    kept: list[tuple[int, int, str]] = []
    for start, end, label in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        if all(end <= s or start >= e for s, e, _ in kept):
            kept.append((start, end, label))
    return sorted(kept)


def _latest_model(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest recorded model whose pipeline is still on disk."""
    for run in reversed(runs):
        if run["path"] and Path(run["path"], "config.cfg").is_file():
            return run
    return None


def _load_model(run: dict[str, Any] | None):
    if run is None:
        return None
    import spacy

    return spacy.load(run["path"])


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    scores = run["scores"] or {}
    model, rules = scores.get("model") or {}, scores.get("rules") or {}
    return {
        "created": run["created"], "decisions": run["decisions"], "adopted": run["adopted"],
        "model_accuracy": model.get("accuracy"), "rules_accuracy": rules.get("accuracy"),
        # runs recorded before F was stored get it from their accuracies
        "model_f": model.get("f", decision_f(model)), "rules_f": rules.get("f", decision_f(rules)),
        "held_out": (model.get("accepted") or 0) + (model.get("rejected") or 0) or None,
        "scheme": scores.get("scheme"), "error": scores.get("error"), "path": run["path"],
        # the pipeline to use (``weak_labels.train_model``) and how sure the held-out texts made that choice
        "pipeline": (scores.get("pipeline") or {}).get("name"),
        "pipeline_confidence": chosen_confidence(scores.get("pipeline") or {}),
    }


# -- plots -----------------------------------------------------------------------------------------


def _figure(width: float = 6.4, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(width, height), dpi=110)
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    axes.set_axisbelow(True)
    return figure, axes


def _png(figure) -> str:
    """The figure as a ``data:`` URI: the page stays one file."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", pad_inches=0.08)  # keeps legends above the axes
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _timeline_plot(answers: list) -> str | None:
    """Cumulative decisions per answer over time."""
    if not answers:
        return None
    figure, axes = _figure()
    start = min(answer.created for answer in answers)
    span = max(answer.created for answer in answers) - start
    unit, divisor = ("hours", 3600.0) if span > 3 * 3600 else ("minutes", 60.0) if span > 180 else ("seconds", 1.0)
    for name in ANSWERS:
        times = sorted((a.created - start) / divisor for a in answers if a.answer == name)
        if times:
            axes.step([0.0, *times], range(len(times) + 1), where="post", color=ANSWER_COLORS[name], label=f"{name} ({len(times):,})")
    axes.set_xlabel(f"{unit} since the first decision ({datetime.fromtimestamp(start, timezone.utc):%Y-%m-%d %H:%M} UTC)")
    axes.set_ylabel("decisions")
    axes.legend(frameon=False)
    return _png(figure)


def _labels_plot(counts: dict[str, Any]) -> str | None:
    labels = sorted(counts["labels"])
    if not labels:
        return None
    figure, axes = _figure(height=0.9 + 0.4 * len(labels))
    left = np.zeros(len(labels))
    for name in ANSWERS:
        values = np.array([counts["labels"][label][name] for label in labels], dtype=float)
        axes.barh(labels, values, left=left, color=ANSWER_COLORS[name], label=name, height=0.55)
        left += values
    axes.grid(axis="y", visible=False)
    axes.grid(axis="x", color="#e6e6e6", linewidth=0.8)
    axes.set_xlabel("decisions")
    axes.legend(frameon=False, ncol=3, loc="lower left", bbox_to_anchor=(0, 1.0))
    return _png(figure)


def _precision_plot(lf_stats: list[dict[str, Any]]) -> str | None:
    """Each rule's precision from the decisions, with its interval, beside the LabelModel's estimate."""
    shown = [lf for lf in lf_stats if lf["kind"] != "boundary"]
    if not shown:
        return None
    figure, axes = _figure(height=0.8 + 0.32 * len(shown))
    y = np.arange(len(shown))[::-1]
    for position, lf in zip(y, shown):
        interval = lf["from_decisions"]
        if interval["n"]:
            axes.plot([interval["low"], interval["high"]], [position, position], color=RULES_COLOR, linewidth=2.5, alpha=0.45)
            axes.plot(interval["estimate"], position, "o", color=RULES_COLOR)
        if lf["label_model_accuracy"] is not None:
            axes.plot(lf["label_model_accuracy"], position, "d", color=MODEL_COLOR, markersize=6)
    axes.plot([], [], "o-", color=RULES_COLOR, label="from decisions (95% interval)")
    axes.plot([], [], "d", color=MODEL_COLOR, label="LabelModel estimate")
    axes.set_yticks(y, [("not " if lf["negative"] else "") + _short(lf["name"]) for lf in shown], fontsize=8)
    axes.set_xlim(-0.02, 1.02)
    axes.set_xlabel("precision (share of its votes the decisions confirm)")
    axes.grid(axis="y", visible=False)
    axes.grid(axis="x", color="#e6e6e6", linewidth=0.8)
    axes.legend(frameon=False, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2)
    return _png(figure)


def _learning_plot(runs: list[dict[str, Any]]) -> str | None:
    """The handoff's models: F on held-out decisions (what adoption compares) over the decisions
    they learnt from, and the rules' on the same decisions."""
    rows = [row for row in map(_run_row, runs) if row["model_f"] is not None]
    if not rows:
        return None
    figure, axes = _figure()
    x = [row["decisions"] for row in rows]
    axes.plot(x, [row["model_f"] for row in rows], "o-", color=MODEL_COLOR, label="model")
    rules = [(row["decisions"], row["rules_f"]) for row in rows if row["rules_f"] is not None]
    if rules:
        axes.plot(*zip(*rules), "s--", color=RULES_COLOR, label="rules (LabelModel)")
    adopted = [(row["decisions"], row["model_f"]) for row in rows if row["adopted"]]
    if adopted:
        axes.plot(*zip(*adopted), "o", markersize=11, markerfacecolor="none", markeredgecolor="#333", label="adopted")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("decisions the model was trained on")
    axes.set_ylabel("F on held-out decisions")
    axes.legend(frameon=False)
    return _png(figure)


# -- formatting ------------------------------------------------------------------------------------


def _number(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:.{digits}f}"


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


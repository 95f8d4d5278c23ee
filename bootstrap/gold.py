"""Gold annotations, and an annotator that answers binary questions from them.

``bootstrap simulate``, the benchmarks and the tests all answer questions the same way: accept
when the gold data has exactly that span with that label, reject otherwise. Texts are matched
to gold by ``input_hash``, so gold and texts may come from different files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .corpus import read_texts

Gold = dict[int, set[tuple[int, int, str]]]


def load_gold(path: str | Path) -> Gold:
    """``input_hash -> {(start, end, label)}`` of a JSONL file with gold ``spans``."""
    gold: Gold = {}
    for record in read_texts(path):
        spans = record.task.get("spans") or []
        gold.setdefault(record.input_hash, set()).update(
            (span["start"], span["end"], span["label"]) for span in spans if "label" in span
        )
    return gold


def gold_answer(gold: Gold, input_hash: int, start: int, end: int, label: str) -> str:
    """The oracle's answer to "is text[start:end] a ``label``?"."""
    return "accept" if (start, end, label) in gold.get(input_hash, ()) else "reject"


def task_answer(gold: Gold, task: dict[str, Any]) -> str:
    """The oracle's answer to one of the loop's questions (a task with one span, as
    ``Session.next_question`` returns it)."""
    span = task["spans"][0]
    return gold_answer(gold, int(task["input_hash"]), span["start"], span["end"], span["label"])

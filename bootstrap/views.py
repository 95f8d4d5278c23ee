"""What the page shows beside a question: the task itself, who voted what, and the overlapping spans.

Plain functions of the candidate table and the aggregate, kept out of the loop so
:class:`~bootstrap.session.Session` only decides *which* question comes next; the votes are also
stored with every answer (``Store.add_answer(votes=...)``), so the report can say later what the
rules said when the question was asked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .aggregate import Aggregate
from .labelmatrix import NOT_ENTITY, CandidateTable


def question_task(
    table: CandidateTable, aggregate: Aggregate, row: int, cls: int, *, task_hash: int, text: str,
    meta: dict[str, Any], exploration: bool, score: float, scorer: str,
) -> dict[str, Any]:
    """A question as a Prodigy-style task, with what the page shows beside it.

    ``token_end`` here is spaCy's (exclusive), as everywhere inside bootstrap; ``bootstrap
    export`` writes Prodigy's inclusive one.
    """
    label = table.label_of(cls)
    return {
        "task_hash": task_hash,
        "input_hash": int(table.input_hash[row]),
        "text": text,
        "label": label,
        "spans": [{
            "start": int(table.start[row]), "end": int(table.end[row]), "label": label,
            "token_start": int(table.token_start[row]), "token_end": int(table.token_end[row]),
        }],
        "probability": float(aggregate.probabilities()[row, cls]),
        "exploration": exploration,
        "score": score,
        "scorer": scorer,
        "votes": votes(table, aggregate, row),
        "overlaps": overlaps(table, row),
        "meta": meta,
    }


def votes(table: CandidateTable, aggregate: Aggregate, row: int) -> list[dict[str, Any]]:
    """Who voted what on a row, with each voter's current precision: shown and stored with answers."""
    precision = aggregate.posterior_accuracy()
    shown = []
    for name, cls in table.votes(row).items():
        j = table.lf_names.index(name)
        column = table.columns[j]
        if cls != NOT_ENTITY:
            vote = table.label_of(cls)
        elif column.negative:
            vote = f"not {column.label}"
        elif column.kind == "boundary":
            vote = "other boundaries"
        else:
            vote = "not an entity"
        shown.append({"lf": name, "kind": column.kind, "vote": vote, "precision": round(float(precision[j]), 4)})
    return shown


def overlaps(table: CandidateTable, row: int) -> list[dict[str, Any]]:
    """The text's other candidates that overlap this one with other boundaries, longest first,
    each with whoever voted for it. The page shows them on a boundary question ("dystrophy"
    inside "Duchenne muscular dystrophy (DMD)") and names the span each ``#boundary`` vote
    is about. One comparison over the table's rows: about a millisecond at a million rows."""
    start, end = int(table.start[row]), int(table.end[row])
    same_text = np.flatnonzero(table.input_hash == table.input_hash[row])
    found = []
    for other in same_text[(table.start[same_text] < end) & (table.end[same_text] > start) & (same_text != row)]:
        o_start, o_end = int(table.start[other]), int(table.end[other])
        relation = "longer" if o_start <= start and end <= o_end else "shorter" if start <= o_start and o_end <= end else "crossing"
        voters = [{"lf": table.columns[j].name, "kind": table.columns[j].kind} for j in np.flatnonzero(table.L[other] > 0)]
        found.append({"text": table.text[other], "start": o_start, "end": o_end, "relation": relation, "voters": voters})
    return sorted(found, key=lambda overlap: overlap["start"] - overlap["end"])

"""What the page shows: the task itself, who voted what, the overlapping spans, the counts of
answers, the recent decisions and the pattern lines suggested from them.

Plain read-only functions of the candidate table, the aggregate and the store, kept out of the
loop so :class:`~bootstrap.session.Session` only decides *which* question comes next; the votes
are also stored with every answer (``Store.add_answer(votes=...)``), so the report can say later
what the rules said when the question was asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .aggregate import Aggregate
from .hashing import TaskIndex
from .labelmatrix import ABSTAIN, NOT_ENTITY, CandidateTable
from .tasks import ANSWERS


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
    """Who voted what on a row, with each voter's current precision: shown and stored with answers.
    ``counted`` is False for a vote the aggregate does not weigh (a model's on a rule's candidate:
    ``aggregate.counted_votes``)."""
    precision = aggregate.posterior_accuracy()
    counted = aggregate.votes[row]
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
        shown.append({"lf": name, "kind": column.kind, "vote": vote, "precision": round(float(precision[j]), 4),
                      "counted": bool(counted[j] != ABSTAIN)})
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


def answer_counts(
    table: CandidateTable, index_of: TaskIndex, answers: Iterable[tuple[int, str]],
) -> tuple[dict[str, int], dict[str, int]]:
    """The live ``(task_hash, answer)`` pairs counted by answer, and the accepts per label (those on
    questions of ``table``, whose index by task hash is ``index_of``): the progress the page shows."""
    by_answer = dict.fromkeys(ANSWERS, 0)
    accepts = dict.fromkeys(table.labels, 0)
    for task, answer in answers:
        by_answer[answer] += 1
        index = index_of.get(task)
        if answer == "accept" and index is not None:
            accepts[table.label_of(int(table.question_class[index]))] += 1
    return by_answer, accepts


def recent(store: Any, dataset: str, annotator: str, n: int) -> list[dict[str, Any]]:
    """The annotator's last ``n`` live answers with their texts (the page's list of recent decisions)."""
    answers = store.recent_answers(dataset, annotator, n)
    texts = store.example_texts(dataset, {a.input_hash for a in answers})
    return [
        {"answer_id": a.id, "task_hash": a.task_hash, "span_text": a.span_text, "label": a.label,
         "answer": a.answer, "created": a.created, "text": texts.get(a.input_hash, "")}
        for a in answers
    ]


def suggestions(store: Any, dataset: str, pattern_files: Sequence[Path], *, min_count: int, lang: str,
                phrase_attr: str) -> list[dict[str, Any]]:
    """Pattern lines learned back from the decisions (``bootstrap suggest-patterns``); none
    without the rules' files."""
    if not pattern_files:
        return []
    from .suggest import suggest_patterns

    return suggest_patterns(store, dataset, pattern_files, min_count=min_count, lang=lang, phrase_attr=phrase_attr)

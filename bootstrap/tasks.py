"""Prodigy's task format: the one shape a text, a span and a decision have on the way in and out.

Users already hold their texts and decisions as Prodigy task JSONL (``text``, ``spans``,
``answer``, ``_input_hash``, ``_task_hash``, ``meta``), so bootstrap reads and writes exactly
that. Everything about the format lives here, so a file read as a corpus (``corpus``), as
decisions (``train``) or as an import (``store``) is checked by the same rules, with the same
messages:

* :func:`task_problem` checks a task's text, meta and spans (and, for a decision, its answer);
* :data:`ANSWERS` and :func:`check_answer` are the one list of answers;
* :func:`export_task` and :class:`TaskImport` turn stored rows into tasks and tasks into rows.

Token offsets: inside bootstrap ``token_end`` is exclusive (spaCy's ``Span.end``); Prodigy counts
it inclusively (the last token), so export and import convert at this border and nowhere else.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Mapping

from .errors import json_type
from .hashing import input_hash as hash_text
from .hashing import task_hash as hash_task

if TYPE_CHECKING:  # spaCy is needed only while importing: a server process starts faster without it
    from spacy.language import Language

    from .corpus import Record

ANSWERS = ("accept", "reject", "ignore")
# Prodigy view ids of tasks that show every entity of a text at once: accepting one means the
# annotator reviewed the whole text, so what is not marked is not an entity.
MANUAL_VIEWS = ("ner_manual", "spans_manual")
# Keys export_task adds to an example's meta; TaskImport takes them back out.
ANSWER_META = ("probability", "exploration", "votes")


def is_int(value: Any) -> bool:
    """An integer offset: JSON ``true`` is a bool, which Python would take for 1."""
    return isinstance(value, int) and not isinstance(value, bool)


def answer_problem(answer: Any) -> str | None:
    if answer not in ANSWERS:
        return f'"answer" must be one of {", ".join(ANSWERS)}, got {answer!r}'
    return None


def check_answer(answer: Any) -> None:
    """Raise ``ValueError`` unless ``answer`` is one of :data:`ANSWERS`."""
    problem = answer_problem(answer)
    if problem:
        raise ValueError(problem)


def task_problem(task: Any, *, decision: bool = False) -> str | None:
    """What makes ``task`` unusable, or None; with ``decision``, it must carry an answer too.

    Used for ``file:line`` messages, so each names the key and the span at fault.
    """
    if not isinstance(task, dict):
        return f"expected a JSON object with a \"text\" key, got {json_type(task)}"
    if "text" not in task:
        return 'missing "text"'
    if not isinstance(task["text"], str):
        return f'"text" must be a string, got {json_type(task["text"])}'
    if "meta" in task and not isinstance(task["meta"], dict):
        return f'"meta" must be an object, got {json_type(task["meta"])}'
    spans = task.get("spans")
    if spans is not None:
        if not isinstance(spans, list):
            return f'"spans" must be a list, got {json_type(spans)}'
        for i, span in enumerate(spans):
            if not isinstance(span, dict) or not all(is_int(span.get(key)) for key in ("start", "end")):
                return f'span {i} needs integer "start" and "end"'
            if not isinstance(span.get("label"), str) or not span["label"]:
                return f'span {i} needs a "label" string'
            problem = span_problem(i, span["start"], span["end"], len(task["text"]))
            if problem:
                return problem
    return answer_problem(task.get("answer")) if decision else None


def span_problem(i: int, start: int, end: int, length: int) -> str | None:
    """What is wrong with character offsets ``(start, end)`` in a text of ``length``, or None."""
    if end < start:
        return f"span {i} ({start}, {end}) ends before it starts"
    if end == start:
        return f"span {i} ({start}, {end}) is empty"
    if start < 0 or end > length:
        return f"span {i} ({start}, {end}) is outside the text of {length} characters"
    return None


def task_input_hash(task: dict[str, Any]) -> int:
    """The task's ``_input_hash`` (what the store keys ``proposed`` by), else the hash of its text."""
    value = task.get("_input_hash")
    return value if isinstance(value, int) else hash_text(task["text"])


def decision_accuracy(right: Mapping[str, int], total: Mapping[str, int]) -> dict[str, Any]:
    """Agreement with held-out accepts and rejects, as every scorer of decisions reports it:
    ``accept_accuracy`` is the share of accepted spans predicted, ``reject_accuracy`` the share
    of rejected spans not predicted, ``accuracy`` both together (None where nothing was counted)."""

    def share(n: int, of: int) -> float | None:
        return n / of if of else None

    return {
        "accepted": total["accept"], "rejected": total["reject"],
        "accept_accuracy": share(right["accept"], total["accept"]),
        "reject_accuracy": share(right["reject"], total["reject"]),
        "accuracy": share(right["accept"] + right["reject"], total["accept"] + total["reject"]),
    }


def question_row(question: Any) -> dict[str, Any]:
    """A question (a candidate, a mapping) as the store keys it: offsets, label and task hash."""
    get = question.get if isinstance(question, Mapping) else lambda key, default=None: getattr(question, key, default)
    # int(): the label matrix holds offsets and hashes in numpy arrays, which database drivers refuse.
    row = {key: int(get(key)) for key in ("input_hash", "start", "end", "token_start", "token_end")}
    row["label"] = str(get("label"))
    row["task_hash"] = hash_task(row["input_hash"], row["start"], row["end"], row["label"])
    return row


def export_task(row: Any, dataset: str) -> dict[str, Any]:
    """One stored answer (a row with the example's text and meta, the question and the answer) as
    a Prodigy binary NER task; ``token_end`` becomes Prodigy's inclusive one."""
    span = {"start": row.start, "end": row.end, "label": row.label,
            "token_start": row.token_start, "token_end": row.token_end - 1}
    meta = {**(row.meta or {}), "exploration": row.exploration}
    if row.probability is not None:
        meta["probability"] = row.probability
    if row.votes is not None:
        meta["votes"] = row.votes
    annotator_id = f"{dataset}-{row.annotator}"
    return {
        "text": row.text, "spans": [span], "label": row.label, "answer": row.answer, "meta": meta,
        "_input_hash": row.input_hash, "_task_hash": row.task_hash, "_view_id": "ner",
        "_annotator_id": annotator_id, "_session_id": row.session_id or annotator_id,
        "_timestamp": int(row.created),
    }


def dumps_task(task: dict[str, Any]) -> str:
    """One JSONL line of a task, as Prodigy writes them (UTF-8, not ASCII-escaped)."""
    return json.dumps(task, ensure_ascii=False)


class TaskImport:
    """The rows of an import file, checked line by line before anything is written.

    A binary task has one span (its label on the span or the task). A task of a manual view, or
    with zero or several spans, marks every entity of its text: accepted, each span becomes an
    accepted question and the text is ``reviewed``; rejected or ignored, it says nothing about
    single spans and is skipped (counted).
    """

    def __init__(self, dataset: str, nlp: Language, annotator: str | None, skip_misaligned: bool):
        self.dataset = dataset
        self.annotator = annotator
        self.nlp = nlp
        self.skip_misaligned = skip_misaligned
        self.skipped_misaligned = 0
        self.examples: dict[int, dict[str, Any]] = {}
        self.questions: dict[int, dict[str, Any]] = {}
        self.answers: list[dict[str, Any]] = []
        self.reviewed: set[int] = set()
        self.tasks = 0
        self.skipped_manual = 0
        self._doc = None

    def add(self, record: Record) -> str | None:
        """Take one task in; a message when it is not a decision bootstrap can store."""
        task = record.task
        self.tasks += 1
        answer = task.get("answer")
        problem = answer_problem(answer)
        if problem:
            return problem
        spans = task.get("spans")
        if spans is None:
            return 'missing "spans": a binary NER task has one span'
        manual = task.get("_view_id") in MANUAL_VIEWS or len(spans) != 1
        if manual and answer != "accept":
            self.skipped_manual += 1
            return None
        questions = []
        for i, span in enumerate(spans):
            label = span.get("label", task.get("label"))
            if not isinstance(label, str) or not label:
                return f'span {i} has no "label" (on the span or the task)'
            given = span.get("token_start"), span.get("token_end")
            if given != (None, None) and not (all(map(is_int, given)) and 0 <= given[0] <= given[1]):
                return f'span {i}: "token_start" and "token_end" must be integers with token_start <= token_end'
            tokens = self._token_offsets(record.text, span)
            if given != (None, None):
                claimed = (given[0], given[1] + 1)  # Prodigy's token_end is the last token, inclusive
                if tokens is not None and claimed != tokens:
                    return (f"span {i}: token_start/token_end {given[0]}, {given[1]} do not match characters "
                            f"{span['start']}-{span['end']}, which are tokens {tokens[0]}-{tokens[1] - 1} of "
                            f"spacy.blank({self.nlp.lang!r}) (Prodigy counts token_end inclusive)")
                tokens = tokens or claimed  # a span our tokenizer cannot align keeps the tokens it came with
            if tokens is None:
                if self.skip_misaligned:
                    self.skipped_misaligned += 1
                    return None
                return (f"span {i} ({span['start']}, {span['end']}) {record.text[span['start']:span['end']]!r} does not "
                        f"start and end on token boundaries of spacy.blank({self.nlp.lang!r}): fix the offsets, give "
                        f"token_start and token_end, or import with --skip-misaligned")
            questions.append(question_row({
                "input_hash": record.input_hash, "start": span["start"], "end": span["end"], "label": label,
                "token_start": tokens[0], "token_end": tokens[1],
            }))
        meta = dict(record.meta)
        answer_meta = {key: meta.pop(key) for key in ANSWER_META if key in meta}
        self.examples.setdefault(record.input_hash, {"input_hash": record.input_hash, "text": record.text, "meta": meta})
        if manual:
            self.reviewed.add(record.input_hash)
        annotator = self.annotator or annotator_of(task, self.dataset)
        timestamp = task.get("_timestamp")
        created = float(timestamp) if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool) else time.time()
        probability = answer_meta.get("probability")
        for question in questions:
            self.questions[question["task_hash"]] = question
            self.answers.append({
                "task_hash": question["task_hash"], "answer": answer, "annotator": annotator,
                "session_id": task.get("_session_id") if isinstance(task.get("_session_id"), str) else None,
                "created": created, "exploration": bool(answer_meta.get("exploration", False)),
                "probability": float(probability) if isinstance(probability, (int, float)) else None,
                "votes": None if manual else answer_meta.get("votes"),
            })
        return None

    def _token_offsets(self, text: str, span: dict[str, Any]) -> tuple[int, int] | None:
        """(token_start, exclusive token_end) of the span in spaCy's tokens; None when it cuts a token."""
        if self._doc is None or self._doc.text != text:
            self._doc = self.nlp.make_doc(text)
        char_span = self._doc.char_span(span["start"], span["end"])
        return None if char_span is None else (char_span.start, char_span.end)


def annotator_of(task: dict[str, Any], dataset: str) -> str:
    """The annotator of an imported task: its ``_annotator_id`` without our ``"{dataset}-"``
    prefix (so an export imports back under the same name), else ``"import"``."""
    annotator_id = task.get("_annotator_id") or task.get("_session_id")
    if not isinstance(annotator_id, str) or not annotator_id:
        return "import"
    return annotator_id.removeprefix(f"{dataset}-") or annotator_id

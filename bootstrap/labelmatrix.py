"""The label matrix: one row per candidate span, one column per labeling function.

Classes are ``0`` = not an entity and ``k`` = ``labels[k - 1]``; ``-1`` is an abstain, as in
Snorkel. A row is a *span* (one text, one start, one end), not a (span, label) pair, so that
rules proposing different labels for the same span are disagreeing LFs of one row, which is
what Snorkel's LabelModel can weigh. The binary questions are the (row, label) pairs some LF
voted for.

How each source enters the matrix:

* a positive rule that matched the row's span exactly votes its label; a **negative rule**
  votes ``0`` ("not an entity"). With one label that is exact; with several, "not PERSON" is
  read as "not an entity" too, because a LabelModel column can only name one class.
* **Boundaries.** A positive rule whose match *overlaps* the row with other boundaries (nested
  or crossing) claims that the entity is elsewhere: it votes ``0`` on the row, in a column of
  its own, ``<rule>#boundary``. A separate column lets the LabelModel learn how far to trust a
  rule about boundaries apart from how far to trust its label: ``cancer`` inside ``breast
  cancer`` says little about whether ``cancer`` alone is a disease mention.
* a user **labeling function** votes on every row: its label, ``0`` for ``False``, or abstains;
* a user **span proposer** adds its spans as rows (if no rule found them) and votes for them,
  and like a rule it has a boundary column.

A positive vote for a label no rule proposed on a row (an LF saying "this PERSON is a
CORPORATION") adds that (row, label) question: every vote for a label is reachable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
from spacy.tokens import Span

from .candidates import DocCandidates
from .hashing import task_hashes
from .lfs import LabelingFunction, LFErrors, proposals_of, vote_of
from .matching import token_span
from .rules import RuleSet


def surface_key(text: str) -> str:
    """The key under which decisions on a string are shared across its occurrences.

    Lower-cased ("Cancer" opening a sentence is "cancer"), except a string with a capital after
    its first character, which keeps its case: acronyms and symbols are other words than the
    lower-case ones they spell. Carried case-blind, one accept of "WAS" (Wiskott-Aldrich
    syndrome) made 718 occurrences of the verb "was" DISEASE entities on NCBI-disease, and
    "AT" and "AS" did the same with "at" and "as".
    """
    text = text.strip()
    return text if any(ch.isupper() for ch in text[1:]) else text.lower()


ABSTAIN = -1
NOT_ENTITY = 0
BOUNDARY_SUFFIX = "#boundary"


@dataclass(frozen=True)
class Column:
    """One labeling function of the matrix: a rule, a rule's boundary votes, or a user function."""

    name: str
    kind: str  # "rule", "boundary", "lf", "proposer" or "model"
    label: str | None  # the label it votes for (None for an unlabeled user function)
    negative: bool = False

    @property
    def source(self) -> str:
        """The rule or function behind the column (a boundary column's owner)."""
        return self.name.removesuffix(BOUNDARY_SUFFIX)


@dataclass
class CandidateTable:
    """Columnar candidates: arrays of rows, the label matrix, and the questions over them."""

    labels: list[str]
    columns: list[Column]
    input_hash: np.ndarray  # int64, per row
    start: np.ndarray  # int32 character offsets, per row
    end: np.ndarray
    token_start: np.ndarray
    token_end: np.ndarray
    text: list[str]  # the span's surface string, per row
    L: np.ndarray  # int8 (rows × columns), class ids, -1 abstains
    question_row: np.ndarray  # int32, per question
    question_class: np.ndarray  # int16, per question (>= 1)
    errors: LFErrors = field(default_factory=LFErrors)
    texts: int = 0
    model_probability: np.ndarray | None = None  # float, per question, once a trained model is in the loop

    @property
    def n_rows(self) -> int:
        return len(self.input_hash)

    @property
    def n_questions(self) -> int:
        return len(self.question_row)

    @property
    def cardinality(self) -> int:
        return len(self.labels) + 1

    @property
    def lf_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def class_of(self, label: str) -> int:
        return self.labels.index(label) + 1

    def label_of(self, cls: int) -> str:
        return self.labels[cls - 1]

    def question(self, index: int) -> tuple[int, int, int, str]:
        """``(input_hash, start, end, label)`` of one question."""
        row = int(self.question_row[index])
        return int(self.input_hash[row]), int(self.start[row]), int(self.end[row]), self.label_of(int(self.question_class[index]))

    def task_hashes(self, chunk: int = 65_536) -> np.ndarray:
        """Every question's task hash, in question order, as int64 (``hashing.task_hashes``, a
        chunk of questions at a time: the plain lists it reads cost ~150 B a question while
        they live, 200 MB at a million texts had they been made at once)."""
        labels = [self.label_of(cls) for cls in range(1, self.cardinality)]
        hashes = np.empty(self.n_questions, dtype=np.int64)
        for first in range(0, self.n_questions, chunk):
            rows = self.question_row[first:first + chunk]
            hashes[first:first + len(rows)] = task_hashes(
                self.input_hash[rows].tolist(), self.start[rows].tolist(), self.end[rows].tolist(), labels,
                (self.question_class[first:first + chunk] - 1).tolist())
        return hashes

    def question_cells(self) -> np.ndarray:
        """Per question, its cell in the rows × classes grid: ``row * cardinality + class``."""
        return self.question_row.astype(np.int64) * self.cardinality + self.question_class

    def question_at_cell(self) -> np.ndarray:
        """Per cell of the rows × classes grid, the index of its question, or -1.

        The (row, class) → question lookup as an array: 4 bytes a cell where a dict spends some
        200 bytes a question (260 MB at a million texts) and seconds to build.
        """
        lookup = np.full(self.n_rows * self.cardinality, -1, dtype=np.int32)
        lookup[self.question_cells()] = np.arange(self.n_questions, dtype=np.int32)
        return lookup

    def votes(self, row: int) -> dict[str, int]:
        """The non-abstain votes on a row, by column name."""
        line = self.L[row]
        return {self.columns[j].name: int(line[j]) for j in np.flatnonzero(line != ABSTAIN)}

    def ruled_rows(self) -> np.ndarray:
        """Per row, whether some rule or function voted on it (a model's vote aside): the rules'
        candidates, as against the spans only a model in the loop proposed."""
        rules = [j for j, column in enumerate(self.columns) if column.kind != "model"]
        return (self.L[:, rules] != ABSTAIN).any(axis=1)

    def overlapping(self) -> np.ndarray:
        """Per row, whether its span overlaps a span the rules proposed in the same text (nested
        or crossing): the row's *setting*.

        A decision on such a row may be about its boundaries rather than its string: "cancer"
        is rejected inside "breast cancer" and accepted on its own, so decisions carry to the
        other occurrences of a string in the same setting only (``weak_labels``, ``ranking``).

        Only the rules' spans (rows some rule or function voted on) make a setting: a model in
        the loop must not move a rule candidate from one setting to the other. The training set
        carries decisions by the rules' settings; when the ranking took a model's proposal
        "breast cancer" as making its "cancer" a boundary question, that occurrence was not
        settled by the answer on "cancer" standing alone, it was asked again, and a reject there
        made the string's answers disagree, so the answer was carried nowhere. A row only the
        model proposed has the setting the rules' spans give it (``overlaps_with``).
        """
        if not any(column.kind == "model" for column in self.columns):
            return overlaps(self.input_hash, self.start, self.end)
        ruled = self.ruled_rows()
        result = np.zeros(self.n_rows, dtype=bool)
        result[ruled] = overlaps(self.input_hash[ruled], self.start[ruled], self.end[ruled])
        result[~ruled] = overlaps_with(self.input_hash[~ruled], self.start[~ruled], self.end[~ruled],
                                       (self.input_hash[ruled], self.start[ruled], self.end[ruled]))
        return result


def overlaps(text: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per span (``text``, ``start``, ``end``: one array each, spans distinct), whether it overlaps
    another span of the same text, nested or crossing: one sweep in order of start (longest
    first), keeping the span that reaches furthest, so a text of n spans costs n log n."""
    result = np.zeros(len(start), dtype=bool)
    order = np.lexsort((-np.asarray(end, dtype=np.int64), start, text))
    current, reach, owner = None, -1, -1
    for row in order.tolist():
        if text[row] != current:
            current, reach, owner = text[row], -1, -1
        if start[row] < reach:
            result[row] = result[owner] = True
        if end[row] > reach:
            reach, owner = int(end[row]), row
    return result


def overlaps_with(text: np.ndarray, start: np.ndarray, end: np.ndarray,
                  others: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Per span (``text``, ``start``, ``end``), whether it overlaps one of ``others`` (the same
    three arrays) in its text, nested or crossing; the same span is not an overlap. Per text,
    the others are sorted by start; a span overlaps those that start before it ends and end
    after it starts."""
    result = np.zeros(len(start), dtype=bool)
    other_text, other_start, other_end = (np.asarray(a) for a in others)
    order = np.lexsort((other_start, other_text))
    other_text, other_start, other_end = other_text[order], other_start[order], other_end[order]
    first = np.searchsorted(other_text, text, side="left")
    last = np.searchsorted(other_text, text, side="right")
    for i in range(len(start)):
        lo, hi = first[i], last[i]
        if lo == hi:
            continue
        before_end = lo + int(np.searchsorted(other_start[lo:hi], end[i], side="left"))
        starts, ends = other_start[lo:before_end], other_end[lo:before_end]
        result[i] = bool(((ends > start[i]) & ~((starts == start[i]) & (ends == end[i]))).any())
    return result


class _Builder:
    """Accumulates rows, votes and questions one text at a time."""

    def __init__(self, rules: RuleSet, lfs: Sequence[LabelingFunction], labels: Sequence[str] | None):
        self.rules = rules
        self.voters = [lf for lf in lfs if lf.kind == "vote"]
        self.proposers = [lf for lf in lfs if lf.kind == "propose"]
        known = list(labels) if labels else list(dict.fromkeys([*rules.labels, *(lf.label for lf in lfs if lf.label)]))
        self.labels = known
        self.class_of = {label: i + 1 for i, label in enumerate(known)}
        self.columns: list[Column] = []
        self.column_of: dict[str, int] = {}
        for rule in rules:
            self._add_column(Column(rule.id, "rule", rule.label, rule.negative))
        for lf in lfs:
            self._add_column(Column(lf.id, "lf" if lf.kind == "vote" else "proposer", lf.label))
        self.errors = LFErrors()
        self.rows: list[tuple[int, int, int, int, int, str]] = []
        self.votes: list[tuple[int, int, int]] = []  # (row, column, class)
        self.questions: set[tuple[int, int]] = set()
        self.texts = 0

    def _add_column(self, column: Column) -> int:
        if column.name not in self.column_of:
            self.column_of[column.name] = len(self.columns)
            self.columns.append(column)
        return self.column_of[column.name]

    def _column_rank(self, column: Column) -> tuple[int, int]:
        owner = self.column_of[column.source]
        return (column.kind == "boundary", owner)

    def add(self, result: DocCandidates) -> None:
        self.texts += 1
        doc, record = result.doc, result.record
        for failure in result.failures:  # rules that timed out on this text: counted as LF errors are
            self.errors.record_named(*failure)
        # (column, token_start, token_end, class, start_char, end_char); positive ones propose rows
        proposals: list[tuple[int, int, int, int, int, int]] = []
        for match in result.matches:
            rule = self.rules[match.rule_id]
            if rule.label not in self.class_of:
                continue
            cls = NOT_ENTITY if rule.negative else self.class_of[rule.label]
            proposals.append((self.column_of[rule.id], match.token_start, match.token_end, cls, match.start, match.end))
        for lf in self.proposers:
            for start_char, end_char, label in proposals_of(lf, doc, self.errors, record.source):
                tokens = token_span(doc, start_char, end_char) if label in self.class_of else None
                if tokens is not None:
                    span = doc[tokens[0]:tokens[1]]
                    proposals.append((self.column_of[lf.id], span.start, span.end, self.class_of[label], span.start_char, span.end_char))
        spans = sorted({(p[1], p[2]): (p[4], p[5]) for p in proposals if p[3] != NOT_ENTITY}.items())
        if not spans:
            return
        first_row = len(self.rows)
        row_of = {}
        for i, ((token_start, token_end), (start_char, end_char)) in enumerate(spans):
            row_of[(token_start, token_end)] = first_row + i
            self.rows.append((record.input_hash, start_char, end_char, token_start, token_end, record.text[start_char:end_char]))
        exact: set[tuple[int, int]] = set()
        proposed: dict[int, set[int]] = {}  # row -> classes voted for on it
        for column, token_start, token_end, cls, _, _ in proposals:
            row = row_of.get((token_start, token_end))
            if row is not None:
                self.votes.append((row, column, cls))
                exact.add((row, column))
                if cls != NOT_ENTITY:
                    proposed.setdefault(row, set()).add(cls)
        for column, p_start, p_end, cls, _, _ in proposals:
            if cls == NOT_ENTITY:
                continue
            for (token_start, token_end), row in row_of.items():
                overlaps = token_start < p_end and p_start < token_end and (token_start, token_end) != (p_start, p_end)
                if overlaps and (row, column) not in exact:
                    source = self.columns[column]
                    boundary = self._add_column(Column(source.name + BOUNDARY_SUFFIX, "boundary", source.label))
                    self.votes.append((row, boundary, NOT_ENTITY))
        self._apply_voters(result, row_of, proposed)
        self.questions.update((row, cls) for row, classes in proposed.items() for cls in classes)

    def _apply_voters(self, result: DocCandidates, row_of: dict[tuple[int, int], int], proposed: dict[int, set[int]]) -> None:
        """Ask every user labeling function about every row; the span carries its first proposed label."""
        if not self.voters:
            return
        doc, labels = result.doc, self.class_of
        for (token_start, token_end), row in row_of.items():
            first = min(proposed[row]) if proposed.get(row) else None
            span = Span(doc, token_start, token_end, label=self.labels[first - 1] if first else "")
            for lf in self.voters:
                vote = vote_of(lf, span, labels, self.errors, result.record.source)
                if vote is None:
                    continue
                label, positive = vote
                if label not in labels:
                    continue
                cls = labels[label] if positive else NOT_ENTITY
                self.votes.append((row, self.column_of[lf.id], cls))
                if positive:
                    proposed.setdefault(row, set()).add(cls)

    def build(self) -> CandidateTable:
        # Boundary columns were added as they were first needed; put each after the others,
        # in the order of its owner, so the same rules give the same columns on any corpus.
        order = sorted(range(len(self.columns)), key=lambda j: self._column_rank(self.columns[j]))
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        n = len(self.rows)
        L = np.full((n, len(self.columns)), ABSTAIN, dtype=np.int8)
        if self.votes:
            votes = np.asarray(self.votes, dtype=np.int64)
            L[votes[:, 0], position[votes[:, 1]]] = votes[:, 2]
        rows = list(zip(*self.rows)) if self.rows else [[] for _ in range(6)]
        questions = np.asarray(sorted(self.questions), dtype=np.int64).reshape(-1, 2)
        return CandidateTable(
            labels=self.labels,
            columns=[self.columns[j] for j in order],
            input_hash=np.asarray(rows[0], dtype=np.int64),
            start=np.asarray(rows[1], dtype=np.int32),
            end=np.asarray(rows[2], dtype=np.int32),
            token_start=np.asarray(rows[3], dtype=np.int32),
            token_end=np.asarray(rows[4], dtype=np.int32),
            text=list(rows[5]),
            L=L,
            question_row=questions[:, 0].astype(np.int32),
            question_class=questions[:, 1].astype(np.int16),
            errors=self.errors,
            texts=self.texts,
        )


def build_candidate_table(
    results: Iterable[DocCandidates],
    rules: RuleSet,
    lfs: Sequence[LabelingFunction] = (),
    labels: Sequence[str] | None = None,
) -> CandidateTable:
    """Consume a candidate stream (``generate_candidates``) into a :class:`CandidateTable`.

    ``labels`` restricts the table to those labels (``--label``); rules and functions of other
    labels are kept as columns but propose nothing.
    """
    builder = _Builder(rules, lfs, labels)
    for result in results:
        builder.add(result)
    return builder.build()



def concat_tables(tables: Sequence[CandidateTable]) -> CandidateTable:
    """One table from tables built over consecutive parts of a corpus, in corpus order.

    Equal to the table one builder makes over the whole corpus: rows and questions in the same
    order, and the same columns, which means boundary columns (each part has those its texts
    needed) go after the others in the order of their owner, as :meth:`_Builder.build` puts them.
    A distributed build (``bootstrap.scale``) builds parts on workers and merges them here.
    """
    if not tables:
        raise ValueError("no tables to concatenate")
    first = tables[0]
    if any(t.model_probability is not None for t in tables):
        raise ValueError("tables with a model in them cannot be concatenated: add the model after")
    base = [c for c in first.columns if c.kind != "boundary"]
    for table in tables[1:]:
        if table.labels != first.labels or [c for c in table.columns if c.kind != "boundary"] != base:
            raise ValueError("tables of different rules, functions or labels cannot be concatenated")
    owner = {column.name: j for j, column in enumerate(base)}
    boundaries = {c.name: c for t in tables for c in t.columns if c.kind == "boundary"}
    columns = base + sorted(boundaries.values(), key=lambda c: owner[c.source])
    position = {column.name: j for j, column in enumerate(columns)}
    n = sum(t.n_rows for t in tables)
    L = np.full((n, len(columns)), ABSTAIN, dtype=np.int8)
    offsets = np.cumsum([0] + [t.n_rows for t in tables])
    errors = LFErrors()
    for table, offset in zip(tables, offsets):
        L[offset:offset + table.n_rows, [position[c.name] for c in table.columns]] = table.L
        errors.merge(table.errors)
    join = lambda name, dtype: np.concatenate([getattr(t, name) for t in tables]).astype(dtype, copy=False)  # noqa: E731
    return CandidateTable(
        labels=first.labels,
        columns=columns,
        input_hash=join("input_hash", np.int64),
        start=join("start", np.int32),
        end=join("end", np.int32),
        token_start=join("token_start", np.int32),
        token_end=join("token_end", np.int32),
        text=[text for t in tables for text in t.text],
        L=L,
        question_row=np.concatenate([t.question_row + offset for t, offset in zip(tables, offsets)]).astype(np.int32),
        question_class=join("question_class", np.int16),
        errors=errors,
        texts=sum(t.texts for t in tables),
    )


MODEL_COLUMN = "model"


@dataclass(frozen=True)
class ModelSpan:
    """A span a trained model scored, with its probability of being ``label``."""

    input_hash: int
    start: int
    end: int
    token_start: int
    token_end: int
    text: str
    label: str
    probability: float


def with_model(table: CandidateTable, spans: Iterable[ModelSpan], scored_texts: Iterable[int],
               threshold: float = 0.5, keep: Iterable[ModelSpan] = ()) -> CandidateTable:
    """The rules' table with a trained model in it: a proposer, and a voter on its own spans.

    * The model **proposes**: a span it scores at ``threshold`` or more becomes a row and a
      question if no rule found it; that is how entities no rule covers reach the annotator.
    * It **votes** on every row of the texts it scored: the label it gives ``threshold`` or more,
      else "not an entity". The page shows that vote beside the rules'; the aggregate counts it
      only on the rows no rule or function voted on (``aggregate.counted_votes``: a model
      trained on the rules' labels repeats them on their own candidates).
    * Its probability per question is kept (``model_probability``): the ranking uses it on the
      model's own questions and to find the decided strings it sees otherwise
      (``ranking.disputed``).

    ``keep`` are spans that must stay questions whatever this model says (answered questions
    a previous model proposed), so no decision loses its row.
    """
    index = {(int(h), int(s), int(e)): row for row, (h, s, e) in enumerate(zip(table.input_hash, table.start, table.end))}
    scored = set(scored_texts)
    new_rows: list[ModelSpan] = []
    probability: dict[tuple[int, int], float] = {}  # (row, class) -> model probability
    questions = set(zip(table.question_row.tolist(), table.question_class.tolist()))
    labels = {label: i + 1 for i, label in enumerate(table.labels)}

    def row_of(span: ModelSpan) -> int:
        key = (span.input_hash, span.start, span.end)
        if key not in index:
            index[key] = table.n_rows + len(new_rows)
            new_rows.append(span)
        return index[key]

    for span in spans:
        cls = labels.get(span.label)
        if cls is None:
            continue
        key = (span.input_hash, span.start, span.end)
        if span.probability >= threshold or key in index:
            row = row_of(span)
            probability[(row, cls)] = span.probability
            if span.probability >= threshold:
                questions.add((row, cls))
    for span in keep:
        if span.label in labels:
            questions.add((row_of(span), labels[span.label]))
    n = table.n_rows + len(new_rows)
    L = np.full((n, table.L.shape[1] + 1), ABSTAIN, dtype=np.int8)
    L[: table.n_rows, :-1] = table.L
    input_hash = np.concatenate([table.input_hash, np.array([s.input_hash for s in new_rows], dtype=np.int64)])
    L[np.isin(input_hash, np.fromiter(scored, dtype=np.int64, count=len(scored))), -1] = NOT_ENTITY
    for (row, cls), p in probability.items():
        if p >= threshold:
            L[row, -1] = cls
    ordered = np.asarray(sorted(questions), dtype=np.int64).reshape(-1, 2)
    scored_rows = L[:, -1] != ABSTAIN
    model_probability = np.array(
        [probability.get((int(r), int(c)), 0.0 if scored_rows[r] else np.nan) for r, c in ordered], dtype=float
    )
    extend = lambda array, values, dtype: np.concatenate([array, np.asarray(values, dtype=dtype)])  # noqa: E731
    return CandidateTable(
        labels=table.labels,
        columns=[*table.columns, Column(MODEL_COLUMN, "model", None)],
        input_hash=input_hash,
        start=extend(table.start, [s.start for s in new_rows], np.int32),
        end=extend(table.end, [s.end for s in new_rows], np.int32),
        token_start=extend(table.token_start, [s.token_start for s in new_rows], np.int32),
        token_end=extend(table.token_end, [s.token_end for s in new_rows], np.int32),
        text=[*table.text, *(s.text for s in new_rows)],
        L=L,
        question_row=ordered[:, 0].astype(np.int32),
        question_class=ordered[:, 1].astype(np.int16),
        errors=table.errors,
        texts=table.texts,
        model_probability=model_probability,
    )

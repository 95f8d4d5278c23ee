"""The durable store of decisions: datasets, texts, questions and answers, in SQL.

Every answer is one transaction, committed before :meth:`Store.add_answer` returns, so a
decision the page has acknowledged survives a killed process. Decisions are never deleted:
undo marks an answer ``undone_at`` and a changed answer keeps its first value.

SQLAlchemy Core (tables, not the ORM) keeps rows plain and lets the same code run on SQLite
(a file, the default) and on a server database given by URL
(``postgresql+psycopg://user@host/db``, with that driver installed). On SQLite, writes start with
``BEGIN IMMEDIATE``: the write lock is taken before anything is read, so two processes deciding
"is this question free?" never both see "yes" (a deferred transaction would read, then fail to
upgrade its lock).

**A database that refuses writes** (a read-only file, a full disk, an I/O error) raises
:class:`StorageError`, an :class:`~bootstrap.errors.InputError` with one line naming the
database and what is wrong, from whatever statement met it (SQLAlchemy's ``handle_error`` hook):
the command line prints it without a traceback, and the page's API answers ``503`` with it. The
transaction it interrupted is rolled back, so nothing is half-stored.

Token offsets: in the tables, as everywhere in bootstrap, ``token_end`` is exclusive (spaCy's
``Span.end``). Prodigy's task format counts it inclusively (the last token), so
:meth:`Store.export_tasks` and :meth:`Store.import_tasks` convert at the border.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, NamedTuple

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .config import DEFAULT_DB, LANG
from .corpus import JSONL_SUFFIXES, Record, read_texts
from .errors import InputError, Problem
from .hashing import input_hash as hash_text
from .tasks import ANSWERS, TaskImport, check_answer, export_task, question_row

if TYPE_CHECKING:  # spaCy is imported only by import_tasks: a server process starts faster without it
    from spacy.language import Language

BATCH_SIZE = 5000

metadata = sa.MetaData()

datasets_table = sa.Table(
    "datasets", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
)

examples_table = sa.Table(
    "examples", metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("input_hash", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("meta", sa.JSON, nullable=False),
)

questions_table = sa.Table(
    "questions", metadata,
    sa.Column("dataset_id", sa.Integer, primary_key=True),
    sa.Column("task_hash", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("input_hash", sa.BigInteger, nullable=False),
    sa.Column("start", sa.Integer, nullable=False),
    sa.Column("end", sa.Integer, nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("token_start", sa.Integer, nullable=False),
    sa.Column("token_end", sa.Integer, nullable=False),  # exclusive, as spaCy's Span.end
    sa.ForeignKeyConstraint(["dataset_id", "input_hash"], ["examples.dataset_id", "examples.input_hash"]),
    sa.Index("ix_questions_input", "dataset_id", "input_hash"),
)

answers_table = sa.Table(
    "answers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset_id", sa.Integer, nullable=False),
    sa.Column("task_hash", sa.BigInteger, nullable=False),
    sa.Column("answer", sa.String(10), nullable=False),
    sa.Column("annotator", sa.String(200), nullable=False),
    sa.Column("session_id", sa.String(400)),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("shown_at", sa.Float),
    sa.Column("exploration", sa.Boolean, nullable=False, default=False),
    sa.Column("probability", sa.Float),
    sa.Column("votes", sa.JSON),
    sa.Column("undone_at", sa.Float),
    sa.Column("changed_at", sa.Float),
    sa.Column("first_answer", sa.String(10)),  # the answer before the first change, kept
    sa.ForeignKeyConstraint(["dataset_id", "task_hash"], ["questions.dataset_id", "questions.task_hash"]),
    sa.CheckConstraint("answer IN ('accept', 'reject', 'ignore')", name="ck_answer"),
    sa.Index("ix_answers_task", "dataset_id", "task_hash"),
    sa.Index("ix_answers_annotator", "dataset_id", "annotator", "id"),
    # what another process undid or changed lately (Store.answer_changes), found without a scan
    sa.Index("ix_answers_undone", "dataset_id", "undone_at"),
    sa.Index("ix_answers_changed", "dataset_id", "changed_at"),
    sa.Index("ix_answers_created", "dataset_id", "created"),
)
# An Answer's fields, in order, from answers joined to questions and examples (_with_question_and_text).
ANSWER_COLUMNS = (
    answers_table.c.id, answers_table.c.task_hash, questions_table.c.input_hash, questions_table.c.start,
    questions_table.c.end, questions_table.c.label, answers_table.c.answer, answers_table.c.annotator,
    answers_table.c.created, answers_table.c.exploration, answers_table.c.probability, answers_table.c.votes,
    questions_table.c.token_start, questions_table.c.token_end, answers_table.c.changed_at, answers_table.c.undone_at,
    # span_text: SQL counts from 1, in characters
    sa.func.substr(examples_table.c.text, questions_table.c.start + 1, questions_table.c.end - questions_table.c.start),
)
# Indexes added after the first release: created on databases made before them, too.
LATER_INDEXES = ("ix_answers_undone", "ix_answers_changed", "ix_answers_created")

leases_table = sa.Table(
    "leases", metadata,
    sa.Column("dataset_id", sa.Integer, primary_key=True),
    sa.Column("task_hash", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("annotator", sa.String(200), nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)

# One row per model the session trained from the decisions: its score and the rules' on the same
# held-out decisions, and whether it entered the loop (the handoff's history).
models_table = sa.Table(
    "models", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset_id", sa.Integer, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("decisions", sa.Integer, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("scores", sa.JSON, nullable=False),
    sa.Column("adopted", sa.Boolean, nullable=False),
)


class StorageError(InputError):
    """The database refused a write (or a read) for a reason outside bootstrap: ``reason`` is a
    few words for the page ("disk full"), the problem a line for the command line."""

    def __init__(self, location: str, reason: str, detail: str):
        self.reason = reason
        super().__init__([Problem(location, None, f"{reason}: {detail}")])


# (words in the driver's message or SQLSTATE, what to call it, what to do)
STORAGE_FAILURES = (
    (("disk is full", "disk full", "no space left", "53100"), "disk full", "free some space; nothing was saved by the write that failed"),
    (("readonly database", "read-only", "read only", "25006"), "the database is read-only",
     "give --db a file (and folder) this user may write, or make it writable"),
    (("unable to open database file", "permission denied", "42501"), "the database cannot be opened for writing",
     "check that the file and its folder exist and this user may write them"),
    (("disk i/o error", "58030"), "disk I/O error", "the disk failed a read or write; check it, then start again"),
)


def storage_failure(error: BaseException) -> tuple[str, str] | None:
    """``(reason, advice)`` when a driver's error is about the storage, not about bootstrap's SQL."""
    text = f"{error} {getattr(error, 'sqlstate', '') or ''}".lower()
    for needles, reason, advice in STORAGE_FAILURES:
        if any(needle in text for needle in needles):
            return reason, advice
    return None


class UnknownDataset(ValueError):
    """Raised when a command names a dataset the database does not have."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One stored decision on one question (``created`` in Unix seconds)."""

    id: int
    task_hash: int
    input_hash: int
    start: int
    end: int
    label: str
    answer: str
    annotator: str
    created: float
    exploration: bool
    probability: float | None
    votes: Any
    token_start: int | None = None
    token_end: int | None = None  # exclusive
    changed_at: float | None = None
    undone_at: float | None = None
    span_text: str | None = None  # text[start:end], for lists of recent answers


class AnswerChange(NamedTuple):
    """What ``Store.answer_changes`` tells a session about an answer another process may have
    added, changed or undone."""

    id: int
    task_hash: int
    annotator: str
    answer: str
    exploration: bool
    undone_at: float | None


CHANGE_COLUMNS = (answers_table.c.id, answers_table.c.task_hash, answers_table.c.annotator, answers_table.c.answer,
                  answers_table.c.exploration, answers_table.c.undone_at)


@dataclass(frozen=True, slots=True)
class DatasetStats:
    name: str
    created: float
    examples: int
    questions: int
    accept: int
    reject: int
    ignore: int
    annotators: tuple[str, ...]

    @property
    def answers(self) -> int:
        return self.accept + self.reject + self.ignore

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "created": self.created, "examples": self.examples, "questions": self.questions,
            "answers": self.answers, "accept": self.accept, "reject": self.reject, "ignore": self.ignore,
            "annotators": list(self.annotators),
        }


@dataclass(frozen=True, slots=True)
class ImportResult:
    tasks: int  # lines read
    answers: int  # answers added
    duplicates: int  # the same annotator's same answer to the same question was already stored
    reviewed: int  # texts of manual tasks, marked fully reviewed
    skipped_manual: int  # manual tasks rejected or ignored: no span-level decision to take from them
    skipped_misaligned: int = 0  # tasks with a span off token boundaries, left out on request


def engine_url(db: str | Path) -> str:
    """A URL as given, or a path to a SQLite file.

    A bare ``postgresql://`` gets the psycopg 3 driver the ``postgres`` extra installs
    (SQLAlchemy's default for it is psycopg2, which bootstrap does not depend on).
    """
    if isinstance(db, str) and "://" in db:
        return "postgresql+psycopg://" + db.removeprefix("postgresql://") if db.startswith("postgresql://") else db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def is_sqlite_path(db: str | Path) -> bool:
    return not (isinstance(db, str) and "://" in db)


class Store:
    """Decisions in a database: ``Store("bootstrap.db")``, ``Store("postgresql://...")``.

    ``create=False`` refuses to create a missing SQLite file (commands that only read use it, so
    a typo in ``--db`` is an error, not a new empty database).
    """

    def __init__(self, db: str | Path = DEFAULT_DB, *, create: bool = True):
        if is_sqlite_path(db):
            path = Path(db).expanduser()
            if not create and not path.exists():
                raise FileNotFoundError(f"no database at {path}")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageError(str(db), "the database's folder cannot be created", error.strerror or str(error)) from None
        self.url = engine_url(db)
        self.engine: Engine = sa.create_engine(self.url, **_engine_options(self.url))
        if self.engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"{self.engine.dialect.name} is not supported: use a SQLite file or a postgresql:// URL")
        # For messages: the file as the user named it, or the URL without its password.
        self.location = str(db) if is_sqlite_path(db) else self.engine.url.render_as_string(hide_password=True)
        if self.engine.dialect.name == "sqlite":
            _configure_sqlite(self.engine)
        _report_storage_failures(self.engine, self.location)
        # Writes go through this view of the engine: on SQLite its transactions begin IMMEDIATE.
        self._writer = self.engine.execution_options(bootstrap_write=True)
        self._lease_writer = self.engine.execution_options(bootstrap_write=True, bootstrap_ephemeral=True)
        self._dataset_ids: dict[str, int] = {}  # ids never change, names never move
        try:
            metadata.create_all(self._writer)
            self._create_later_indexes()
        except sa.exc.DBAPIError as error:  # raised while connecting, before handle_error can see it
            failure = storage_failure(error.orig or error)
            if failure is None:
                raise
            raise StorageError(self.location, failure[0], f"{failure[1]} ({error.orig})") from None

    def _create_later_indexes(self) -> None:
        indexes = {index.name: index for index in answers_table.indexes}
        inspector = sa.inspect(self.engine)
        existing = {index["name"] for index in inspector.get_indexes(answers_table.name)}
        missing = [indexes[name] for name in LATER_INDEXES if name not in existing]
        if missing:
            with self._writer.begin() as conn:
                for index in missing:
                    index.create(conn, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    # Datasets -----------------------------------------------------------------------------

    def dataset_id(self, name: str, create: bool = True) -> int:
        """The dataset's id, created unless ``create=False`` (then :class:`UnknownDataset`)."""
        if name in self._dataset_ids:
            return self._dataset_ids[name]
        with self.engine.connect() as conn:
            found = conn.scalar(sa.select(datasets_table.c.id).where(datasets_table.c.name == name))
        if found is not None:
            self._dataset_ids[name] = found
            return found
        if not create:
            raise UnknownDataset(f"no dataset {name!r} in {self.location} (datasets: {', '.join(self.dataset_names()) or 'none'})")
        with self._writer.begin() as conn:
            conn.execute(self._insert_ignore(datasets_table), {"name": name, "created": time.time()})
            found = conn.scalar(sa.select(datasets_table.c.id).where(datasets_table.c.name == name))
        self._dataset_ids[name] = found
        return found

    def dataset_texts(self, name: str) -> tuple[float, int] | None:
        """When the dataset was created and how many texts it holds; None if there is no such dataset
        (the table cache asks whether a cached table's texts are all in this database)."""
        d, e = datasets_table, examples_table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(d.c.id, d.c.created).where(d.c.name == name)).first()
            if row is None:
                return None
            return row.created, conn.scalar(sa.select(sa.func.count()).select_from(e).where(e.c.dataset_id == row.id))

    def question_count(self, dataset: str) -> int:
        """How many questions the dataset holds (0 if there is no such dataset)."""
        q = questions_table
        with self.engine.connect() as conn:
            dataset_id = conn.scalar(sa.select(datasets_table.c.id).where(datasets_table.c.name == dataset))
            if dataset_id is None:
                return 0
            return conn.scalar(sa.select(sa.func.count()).select_from(q).where(q.c.dataset_id == dataset_id))

    def dataset_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(datasets_table.c.name).order_by(datasets_table.c.name)))

    def datasets(self) -> list[DatasetStats]:
        d, e, q, a = datasets_table, examples_table, questions_table, answers_table
        with self.engine.connect() as conn:
            examples = dict(conn.execute(sa.select(e.c.dataset_id, sa.func.count()).group_by(e.c.dataset_id)).all())
            questions = dict(conn.execute(sa.select(q.c.dataset_id, sa.func.count()).group_by(q.c.dataset_id)).all())
            answers: dict[int, Counter] = {}
            annotators: dict[int, set[str]] = {}
            live = a.c.undone_at.is_(None)
            rows = conn.execute(
                sa.select(a.c.dataset_id, a.c.answer, a.c.annotator, sa.func.count()).where(live)
                .group_by(a.c.dataset_id, a.c.answer, a.c.annotator)
            )
            for dataset_id, answer, annotator, count in rows:
                answers.setdefault(dataset_id, Counter())[answer] += count
                annotators.setdefault(dataset_id, set()).add(annotator)
            stats = []
            for dataset_id, name, created in conn.execute(sa.select(d.c.id, d.c.name, d.c.created).order_by(d.c.name)):
                counts = answers.get(dataset_id, Counter())
                stats.append(DatasetStats(
                    name, created, examples.get(dataset_id, 0), questions.get(dataset_id, 0),
                    counts["accept"], counts["reject"], counts["ignore"], tuple(sorted(annotators.get(dataset_id, ()))),
                ))
        return stats

    # Texts and questions ------------------------------------------------------------------

    def add_examples(self, dataset: str, records: Iterable[Record | Mapping[str, Any]]) -> int:
        """Insert texts not stored yet (by input hash); returns how many rows were offered."""
        dataset_id = self.dataset_id(dataset)
        rows = ({"dataset_id": dataset_id, **_example_row(record)} for record in records)
        return self._insert_batches(examples_table, rows)

    def example(self, dataset: str, input_hash: int) -> tuple[str, dict[str, Any]] | None:
        """The text and meta of one stored example: the session shows texts from here, not memory."""
        e = examples_table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(e.c.text, e.c.meta).where(
                e.c.dataset_id == self.dataset_id(dataset), e.c.input_hash == int(input_hash),
            )).first()
        return None if row is None else (row.text, row.meta)

    def example_texts(self, dataset: str, input_hashes: Iterable[int]) -> dict[int, str]:
        """The texts of several examples in one query (the page's list of recent answers)."""
        hashes = [int(h) for h in input_hashes]
        if not hashes:
            return {}
        e = examples_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(e.c.input_hash, e.c.text).where(
                e.c.dataset_id == self.dataset_id(dataset), e.c.input_hash.in_(hashes),
            ))
            return {row.input_hash: row.text for row in rows}

    def add_questions(self, dataset: str, questions: Iterable[Any]) -> int:
        """Register questions (candidates or dicts with ``input_hash, start, end, label, token_start,
        token_end``), asked or not: the spans proposed for a text are what training treats as
        "looked at". Their texts must have been added with :meth:`add_examples` first."""
        dataset_id = self.dataset_id(dataset)
        rows = ({"dataset_id": dataset_id, **question_row(question)} for question in questions)
        try:
            return self._insert_batches(questions_table, rows)
        except sa.exc.IntegrityError as error:
            raise ValueError(f"questions of dataset {dataset!r} refer to texts not stored with add_examples: {error.orig}") from None

    def _insert_batches(self, table: sa.Table, rows: Iterable[dict[str, Any]]) -> int:
        """Insert-or-ignore in batches, one transaction: fast for 100k rows, all or nothing."""
        statement = self._insert_ignore(table)
        count = 0
        with self._writer.begin() as conn:
            for batch in _batches(rows, BATCH_SIZE):
                conn.execute(statement, batch)
                count += len(batch)
        return count

    def _insert_ignore(self, table: sa.Table):
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).on_conflict_do_nothing()

    def proposed_spans(self, dataset: str) -> dict[int, list[tuple[int, int, str]]]:
        """Every question span of each text that has at least one live answer."""
        dataset_id = self.dataset_id(dataset)
        q, a = questions_table, answers_table
        answered = (
            sa.select(q.c.input_hash).join(a, (a.c.dataset_id == q.c.dataset_id) & (a.c.task_hash == q.c.task_hash))
            .where(q.c.dataset_id == dataset_id, a.c.undone_at.is_(None))
        )
        query = (
            sa.select(q.c.input_hash, q.c.start, q.c.end, q.c.label)
            .where(q.c.dataset_id == dataset_id, q.c.input_hash.in_(answered))
            .order_by(q.c.input_hash, q.c.start, q.c.end, q.c.label)
        )
        spans: dict[int, list[tuple[int, int, str]]] = {}
        with self.engine.connect() as conn:
            for input_hash, start, end, label in conn.execute(query):
                spans.setdefault(input_hash, []).append((start, end, label))
        return spans

    # Answers ------------------------------------------------------------------------------

    def add_answer(
        self, dataset: str, task_hash: int, answer: str, annotator: str, *,
        exploration: bool = False, probability: float | None = None, votes: Any = None,
        shown_at: float | None = None, session_id: str | None = None,
    ) -> int:
        """Store one decision and commit it (durably: SQLite syncs its log) before returning its id.

        The annotator's lease on the question ends with the answer.
        """
        check_answer(answer)
        task_hash = int(task_hash)
        dataset_id = self.dataset_id(dataset)
        with self._writer.begin() as conn:
            exists = conn.scalar(
                sa.select(questions_table.c.task_hash)
                .where(questions_table.c.dataset_id == dataset_id, questions_table.c.task_hash == task_hash)
            )
            if exists is None:
                raise KeyError(f"no question with task hash {task_hash} in dataset {dataset!r}: add_questions first")
            answer_id = conn.execute(sa.insert(answers_table).values(
                dataset_id=dataset_id, task_hash=task_hash, answer=answer, annotator=annotator, session_id=session_id,
                created=time.time(), shown_at=shown_at, exploration=bool(exploration),
                probability=None if probability is None else float(probability), votes=votes,
            )).inserted_primary_key[0]
            conn.execute(sa.delete(leases_table).where(
                leases_table.c.dataset_id == dataset_id, leases_table.c.task_hash == task_hash,
                leases_table.c.annotator == annotator,
            ))
        return answer_id

    def undo_last(self, dataset: str, annotator: str) -> Answer | None:
        """Mark the annotator's newest live answer undone (the row stays) and return it."""
        dataset_id = self.dataset_id(dataset)
        a = answers_table
        with self._writer.begin() as conn:
            newest = conn.scalar(
                sa.select(sa.func.max(a.c.id))
                .where(a.c.dataset_id == dataset_id, a.c.annotator == annotator, a.c.undone_at.is_(None))
            )
            if newest is None:
                return None
            conn.execute(sa.update(a).where(a.c.id == newest).values(undone_at=time.time()))
            return next(self._select_answers(conn, a.c.id == newest, live=False))

    def change_answer(self, answer_id: int, answer: str) -> Answer:
        """Change a live answer in place (the page's "last answers" list); the first value is kept."""
        check_answer(answer)
        a = answers_table
        with self._writer.begin() as conn:
            row = conn.execute(sa.select(a.c.answer, a.c.first_answer, a.c.undone_at).where(a.c.id == answer_id)).first()
            if row is None:
                raise KeyError(f"no answer with id {answer_id}")
            if row.undone_at is not None:
                raise ValueError(f"answer {answer_id} was undone; it cannot be changed")
            if row.answer != answer:
                conn.execute(sa.update(a).where(a.c.id == answer_id).values(
                    answer=answer, changed_at=time.time(), first_answer=row.first_answer or row.answer,
                ))
            return next(self._select_answers(conn, a.c.id == answer_id))

    def recent_answers(self, dataset: str, annotator: str, n: int = 10) -> list[Answer]:
        """The annotator's ``n`` newest live answers, newest first."""
        a = answers_table
        where = (a.c.dataset_id == self.dataset_id(dataset)) & (a.c.annotator == annotator)
        with self.engine.connect() as conn:
            return list(self._select_answers(conn, where, order=a.c.id.desc(), limit=n))

    def answers(self, dataset: str) -> Iterator[Answer]:
        """Every live answer of the dataset, oldest first."""
        where = answers_table.c.dataset_id == self.dataset_id(dataset)
        with self.engine.connect() as conn:
            yield from self._select_answers(conn, where)

    def answer_changes(self, dataset: str, after_id: int, since: float) -> list[AnswerChange]:
        """Answers added after ``after_id`` or created at ``since`` or later, and answers undone or
        changed at ``since`` or later (undone ones included, with ``undone_at`` set), by id: what a
        session running beside another process must learn before it picks a question. (On
        PostgreSQL ids are handed out before commit, so an answer with a lower id can commit after
        one with a higher id was seen: ``created`` within the look-back catches it.)

        Every session asks before each question, and the look-back returns every answer of its
        last minute again: so each condition is an indexed lookup on the answers table alone, and
        the rows carry what a session needs to know, not the question and text joined to them
        (joined, these reads were half the CPU of an answer on a 100k-text corpus)."""
        a = answers_table
        mine = a.c.dataset_id == self.dataset_id(dataset)
        found: dict[int, AnswerChange] = {}
        with self.engine.connect() as conn:
            for where in (a.c.id > int(after_id), a.c.created >= since, a.c.undone_at >= since, a.c.changed_at >= since):
                for row in conn.execute(sa.select(*CHANGE_COLUMNS).where(mine & where)):
                    found[row.id] = AnswerChange(*row)
        return [found[key] for key in sorted(found)]

    def answered_task_hashes(self, dataset: str) -> set[int]:
        """Questions with a live answer by anyone: what a resumed session does not ask again."""
        a = answers_table
        with self.engine.connect() as conn:
            return set(conn.scalars(
                sa.select(a.c.task_hash).distinct()
                .where(a.c.dataset_id == self.dataset_id(dataset), a.c.undone_at.is_(None))
            ))

    def counts(self, dataset: str) -> dict[str, Any]:
        """Live answers: ``{"total", "accept", "reject", "ignore", "labels": {label: {answer: n}},
        "annotators": {name: n}}``."""
        a, q = answers_table, questions_table
        dataset_id = self.dataset_id(dataset)
        query = (
            sa.select(a.c.answer, q.c.label, a.c.annotator, sa.func.count())
            .join(q, (q.c.dataset_id == a.c.dataset_id) & (q.c.task_hash == a.c.task_hash))
            .where(a.c.dataset_id == dataset_id, a.c.undone_at.is_(None))
            .group_by(a.c.answer, q.c.label, a.c.annotator)
        )
        result: dict[str, Any] = {"total": 0, **{answer: 0 for answer in ANSWERS}, "labels": {}, "annotators": {}}
        with self.engine.connect() as conn:
            for answer, label, annotator, count in conn.execute(query):
                result["total"] += count
                result[answer] += count
                per_label = result["labels"].setdefault(label, {answer: 0 for answer in ANSWERS})
                per_label[answer] += count
                result["annotators"][annotator] = result["annotators"].get(annotator, 0) + count
        return result

    def _select_answers(self, conn: Connection, where, *, live: bool = True, order=None, limit: int | None = None) -> Iterator[Answer]:
        a = answers_table
        query = (
            _with_question_and_text(*ANSWER_COLUMNS)
            .where(where)
            .order_by(a.c.id if order is None else order)
        )
        if live:
            query = query.where(a.c.undone_at.is_(None))
        if limit is not None:
            query = query.limit(limit)
        for row in conn.execute(query):
            yield Answer(*row)

    # Leases -------------------------------------------------------------------------------

    def lease(self, dataset: str, task_hash: int, annotator: str, seconds: float = 300, *,
              second_opinion: bool = False) -> bool:
        """Reserve a question for one annotator while it is on their screen.

        True when no other annotator holds an unexpired lease on it and nobody has answered it
        (with ``second_opinion``: this annotator has not; for double annotation); then the lease
        is (re)taken for ``seconds``. Atomic across processes: the update of an expired or own
        lease and the insert of a new one are decided by the database (row lock, primary key),
        never by a read followed by a write; and the answers are looked at *after* the lease is
        held, so an answer committed by the process that held it before is seen (an answer ends
        its lease in the same transaction).
        """
        dataset_id, task_hash = self.dataset_id(dataset), int(task_hash)
        now = time.time()
        a, l = answers_table, leases_table
        with self._lease_writer.begin() as conn:
            taken = conn.execute(
                sa.update(l)
                .where(l.c.dataset_id == dataset_id, l.c.task_hash == task_hash)
                .where((l.c.annotator == annotator) | (l.c.expires < now))
                .values(annotator=annotator, expires=now + seconds)
            ).rowcount
            if not taken:
                taken = conn.execute(
                    self._insert_ignore(l).returning(l.c.task_hash),  # rowcount of an INSERT is not portable
                    {"dataset_id": dataset_id, "task_hash": task_hash, "annotator": annotator, "expires": now + seconds},
                ).first() is not None
            if not taken:
                return False
            answered = sa.select(a.c.id).where(a.c.dataset_id == dataset_id, a.c.task_hash == task_hash, a.c.undone_at.is_(None))
            if second_opinion:
                answered = answered.where(a.c.annotator == annotator)
            if conn.scalar(answered.limit(1)) is None:
                return True
            conn.execute(sa.delete(l).where(l.c.dataset_id == dataset_id, l.c.task_hash == task_hash, l.c.annotator == annotator))
            return False

    def release(self, dataset: str, task_hash: int, annotator: str) -> None:
        l = leases_table
        with self._lease_writer.begin() as conn:
            conn.execute(sa.delete(l).where(
                l.c.dataset_id == self.dataset_id(dataset), l.c.task_hash == int(task_hash), l.c.annotator == annotator,
            ))

    def leased_by_others(self, dataset: str, annotator: str) -> set[int]:
        """Questions someone else has on screen now: not to be offered to ``annotator``."""
        l = leases_table
        with self.engine.connect() as conn:
            return set(conn.scalars(sa.select(l.c.task_hash).where(
                l.c.dataset_id == self.dataset_id(dataset), l.c.annotator != annotator, l.c.expires >= time.time(),
            )))

    # Models ------------------------------------------------------------------------------

    def add_model_run(self, dataset: str, decisions: int, path: str | Path, scores: dict[str, Any], adopted: bool) -> int:
        """Record a model trained from the decisions, with its and the rules' scores."""
        dataset_id = self.dataset_id(dataset)
        with self._writer.begin() as conn:
            return conn.execute(sa.insert(models_table).values(
                dataset_id=dataset_id, created=time.time(), decisions=int(decisions), path=str(path),
                scores=scores, adopted=bool(adopted),
            )).inserted_primary_key[0]

    def model_runs(self, dataset: str) -> list[dict[str, Any]]:
        """Every recorded model of the dataset, oldest first."""
        m = models_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(m.c.id, m.c.created, m.c.decisions, m.c.path, m.c.scores, m.c.adopted)
                                .where(m.c.dataset_id == self.dataset_id(dataset)).order_by(m.c.id))
            return [dict(row._mapping) for row in rows]

    def texts(self, dataset: str) -> Iterator[tuple[int, str]]:
        """``(input_hash, text)`` of every stored example, streamed in input-hash order."""
        e = examples_table
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(
                sa.select(e.c.input_hash, e.c.text).where(e.c.dataset_id == self.dataset_id(dataset)).order_by(e.c.input_hash)
            )
            for row in result:
                yield row.input_hash, row.text

    # Prodigy's task format ----------------------------------------------------------------

    def export_tasks(self, dataset: str, answers: Iterable[str] = ANSWERS) -> Iterator[dict[str, Any]]:
        """Every live answer as a Prodigy binary NER task, oldest first.

        ``token_end`` is Prodigy's: the index of the span's last token (inclusive).
        """
        wanted = tuple(answers)
        for answer in wanted:
            check_answer(answer)
        dataset_id = self.dataset_id(dataset, create=False)
        a, e = answers_table, examples_table
        query = (
            _with_question_and_text(*ANSWER_COLUMNS, e.c.text, e.c.meta, a.c.session_id)
            .where(a.c.dataset_id == dataset_id, a.c.undone_at.is_(None), a.c.answer.in_(wanted))
            .order_by(a.c.id)
        )
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                yield export_task(row, dataset)

    def import_tasks(
        self, dataset: str, path: str | Path, *, lang: str = LANG, nlp: Language | None = None,
        annotator: str | None = None, skip_misaligned: bool = False,
    ) -> ImportResult:
        """Read decisions in Prodigy's JSONL task format into ``dataset``, all or nothing.

        ``_input_hash`` and ``_task_hash`` in the file are ignored and recomputed: Prodigy's are
        32-bit murmurhashes of its own inputs, ours are 64-bit hashes of text and span, and the
        store's keys must be ours so an imported decision and a new question on the same span meet.

        A binary task has one span (its label on the span or the task). A task of a manual view
        (``ner_manual``), or with zero or several spans, marks every entity of its text: when
        accepted, each span becomes an accepted question and the text is marked
        ``meta.reviewed = true`` (nothing unmarked in it is an entity); a rejected or ignored
        manual task says nothing about single spans and is skipped (counted in the result).
        Missing token offsets come from the tokenizer of ``nlp`` (default ``spacy.blank(lang)``); a span that does not
        fall on its token boundaries is an error (NER cannot learn part of a token), or with
        ``skip_misaligned`` its task is left out and counted (a manual one too: marking its text
        reviewed without that span would turn an entity into a non-entity). The annotator is ``annotator`` if given, else the
        task's ``_annotator_id`` (without a ``"{dataset}-"`` prefix), else ``"import"``. The same
        annotator's same answer to the same question is stored once, so importing twice is harmless.
        """
        path = Path(path)
        if path.suffix.lower() not in JSONL_SUFFIXES:
            raise InputError.single(path, None, f"expected a JSONL file of Prodigy tasks ({', '.join(JSONL_SUFFIXES)})")
        if nlp is None:
            import spacy

            nlp = spacy.blank(lang)
        parsed = TaskImport(dataset, nlp, annotator, skip_misaligned)
        problems: list[Problem] = []
        for record in read_texts(path, on_problem=problems.append):
            file, _, line = record.source.rpartition(":")
            message = parsed.add(record)
            if message:
                problems.append(Problem(file, int(line), message))
        if problems:
            raise InputError(problems)
        if parsed.tasks == 0:
            raise InputError.single(path, None, "no tasks in the file")
        return self._write_import(dataset, parsed)

    def _write_import(self, dataset: str, parsed: TaskImport) -> ImportResult:
        dataset_id = self.dataset_id(dataset)
        e, a = examples_table, answers_table
        with self._writer.begin() as conn:
            for table, rows in ((e, parsed.examples.values()), (questions_table, parsed.questions.values())):
                for batch in _batches(({"dataset_id": dataset_id, **row} for row in rows), BATCH_SIZE):
                    conn.execute(self._insert_ignore(table), batch)
            for input_hash in parsed.reviewed:
                meta = conn.scalar(sa.select(e.c.meta).where(e.c.dataset_id == dataset_id, e.c.input_hash == input_hash))
                if not (meta or {}).get("reviewed"):
                    conn.execute(sa.update(e).where(e.c.dataset_id == dataset_id, e.c.input_hash == input_hash)
                                 .values(meta={**(meta or {}), "reviewed": True}))
            stored = set(map(tuple, conn.execute(
                sa.select(a.c.task_hash, a.c.annotator, a.c.answer).where(a.c.dataset_id == dataset_id, a.c.undone_at.is_(None))
            )))
            new = []
            for row in parsed.answers:
                key = (row["task_hash"], row["annotator"], row["answer"])
                if key not in stored:
                    stored.add(key)
                    new.append({"dataset_id": dataset_id, **row})
            for batch in _batches(new, BATCH_SIZE):
                conn.execute(sa.insert(a), batch)
        return ImportResult(
            parsed.tasks, len(new), len(parsed.answers) - len(new), len(parsed.reviewed), parsed.skipped_manual,
            parsed.skipped_misaligned,
        )


def _example_row(record: Record | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(record, Record):
        return {"input_hash": record.input_hash, "text": record.text, "meta": record.meta}
    text = record["text"]
    meta = record.get("meta") or {}
    return {"input_hash": int(record.get("input_hash", hash_text(text))), "text": text, "meta": dict(meta)}


def _with_question_and_text(*columns) -> sa.Select:
    """``SELECT columns FROM answers`` joined to each answer's question and its text."""
    a, q, e = answers_table, questions_table, examples_table
    return (
        sa.select(*columns)
        .join(q, (q.c.dataset_id == a.c.dataset_id) & (q.c.task_hash == a.c.task_hash))
        .join(e, (e.c.dataset_id == q.c.dataset_id) & (e.c.input_hash == q.c.input_hash))
    )


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _engine_options(url: str) -> dict[str, Any]:
    options: dict[str, Any] = {"json_serializer": _dumps_json}
    if url.startswith("sqlite"):
        # A writer waits up to 30 s for another process's write lock instead of failing at once.
        return {**options, "connect_args": {"timeout": 30}}
    return {**options, "pool_pre_ping": True}


def _dumps_json(value: Any) -> str:
    """JSON columns (meta, votes) accept numpy numbers and arrays too, as the label model returns them."""
    return json.dumps(value, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalar or array
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _report_storage_failures(engine: Engine, location: str) -> None:
    """Turn a driver's storage error, from any statement, into one :class:`StorageError` line."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context) -> None:
        failure = storage_failure(context.original_exception)
        if failure is not None:
            reason, advice = failure
            raise StorageError(location, reason, f"{advice} ({context.original_exception})")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # We send BEGIN ourselves (SQLAlchemy's recipe for pysqlite), so writes can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor it them
        cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if not options.get("bootstrap_write"):
            conn.exec_driver_sql("BEGIN")
            return
        # Leases are not decisions: one lost in a power cut only means a question may be offered
        # twice. Their commits skip the sync that costs most of an answer's time (WAL: a later
        # synced commit makes them durable too); every other write is synced.
        conn.exec_driver_sql(f"PRAGMA synchronous={'NORMAL' if options.get('bootstrap_ephemeral') else 'FULL'}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")


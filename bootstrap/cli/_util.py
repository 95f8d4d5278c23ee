"""What every command shares: the Typer app, the default command, and how input errors are shown.

Nothing here (or at the top of any command's module) imports spaCy, Snorkel, torch, FastAPI or
matplotlib: together they take seconds to import, and ``bootstrap --help`` should answer at
once. Each command imports the library's modules inside its function, when it runs
(``tests/test_cli_startup.py`` keeps it so).
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ..config import DEFAULT_DB
from ..errors import InputError, Notice

if TYPE_CHECKING:
    from spacy.language import Language

DEFAULT_COMMAND = "annotate"

console = Console(stderr=True)

# Every command that reads or writes decisions takes the same --db (`db: Annotated[str, DB_OPTION] = DEFAULT_DB`).
DB_OPTION = typer.Option(
    "--db", envvar="BOOTSTRAP_DB",
    help=f"Where decisions are stored: a SQLite file (default ./{DEFAULT_DB}) or a database URL (postgresql://...).",
)
T = TypeVar("T")


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning) -> None:
    """A :class:`Notice` (lines skipped, a slow rule switched off) as one ``warning`` line, as
    problems are shown; any other warning as Python shows it."""
    if issubclass(category, Notice):
        console.print(f"[yellow]warning[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _default(message, category, filename, lineno, file, line)


warnings.showwarning = _show_warning


# Names of value types in help, as click writes them ("--lang TEXT"), for Typer's "<str>".
TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "int range": "INTEGER", "float": "FLOAT", "float range": "FLOAT",
              "path": "PATH", "bool": "BOOLEAN"}


def plain_params(params: list, ctx) -> list:
    """Help that names values as people write them: ``check [OPTIONS] PATTERNS... TEXTS`` and
    ``--lang TEXT``, not Typer's ``{files}...``, ``<list[Path]>`` and ``--json <bool>``.

    An argument shows its metavar (its name in capitals unless the command gives one) and no
    type, an option with a value the type's name (a repeatable one, that of one value), a flag
    nothing. Applied each time the parameters are asked for: click makes ``--help`` then.
    """
    for param in params:
        if isinstance(param, TyperArgument):
            param.metavar = param.metavar or param.name.upper() + ("..." if param.nargs != 1 else "")
            param.display_type_rich = lambda ctx: None  # Typer's type column ("<list[Path]>")
        elif isinstance(param, TyperOption) and param.metavar is None:
            kind = param.display_type(ctx).strip("<>").removeprefix("list[").removesuffix("]").lower()
            param.metavar = "" if param.is_flag or param.count else TYPE_NAMES.get(kind, kind.upper())
    return params


class Command(TyperCommand):
    """Every bootstrap command: plain help (see :func:`plain_params`)."""

    def get_params(self, ctx) -> list:
        return plain_params(super().get_params(ctx), ctx)

    def collect_usage_pieces(self, ctx) -> list[str]:
        """``[OPTIONS] PATTERNS... TEXTS``: optional arguments in brackets, none in braces."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(param.metavar if param.required or param.metavar.startswith("[") else f"[{param.metavar}]")
        return pieces


class DefaultCommandGroup(TyperGroup):
    """Lets ``bootstrap patterns.jsonl texts.jsonl`` mean ``bootstrap annotate patterns.jsonl texts.jsonl``."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-") and DEFAULT_COMMAND in self.commands:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def get_params(self, ctx) -> list:
        return plain_params(super().get_params(ctx), ctx)


app = typer.Typer(
    cls=DefaultCommandGroup,
    name="bootstrap",
    help="Cold-start a spaCy NER model for a new entity type from rules and binary decisions.\n\n"
         "`bootstrap PATTERNS... TEXTS` is `bootstrap annotate PATTERNS... TEXTS`: it starts (or resumes) "
         "an annotation session in the browser. `bootstrap COMMAND --help` says more about each command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def with_plain_help(typer_app: typer.Typer) -> None:
    """Give every registered command plain help (:class:`Command`); called once all are registered."""
    for info in typer_app.registered_commands:
        if info.cls in (None, TyperCommand):  # (Typer fills in TyperCommand when none is given)
            info.cls = Command


F = TypeVar("F", bound=Callable)


def reports_input_errors(command: F) -> F:
    """Print every problem of a bad input file as ``file:line: what`` and exit 1, no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InputError as error:
            for problem in error.problems:
                console.print(f"[bold red]error[/] {escape(str(problem))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)

    return wrapper  # type: ignore[return-value]


def split_patterns_and_texts(files: list[Path]) -> tuple[list[Path], Path | None]:
    """``PATTERNS... TEXTS``: every file but the last holds patterns; a single file is patterns only."""
    if len(files) == 1:
        return files, None
    return files[:-1], files[-1]


def count_lines(path: Path) -> int | None:
    """A quick upper bound of the texts in a file or folder, for the progress bar's total.

    None when there is nothing to count: reading the path will then say what is wrong with it.
    """
    if not path.exists():
        return None
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    total = 0
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                total += block.count(b"\n")
    return max(total, 1)


def blank_nlp(lang: str) -> Language:
    """``spacy.blank(lang)``, with an unknown language code as a usage error, not a traceback."""
    import spacy

    try:
        return spacy.blank(lang)
    except ImportError:
        raise typer.BadParameter(f"spaCy has no language {lang!r}", param_hint="'--lang'") from None


def validate_phrase_attr(attr: str) -> str:
    """Typer callback: an attribute spaCy's PhraseMatcher accepts on a blank pipeline's Docs.

    Adding a tokenized phrase is spaCy's own check: it refuses POS, LEMMA, DEP ... (E155),
    which only a trained pipeline sets. The default, ``ORTH``, is always valid: a command run
    without the option need not import spaCy for it.
    """
    if attr == "ORTH":
        return attr
    from spacy.matcher import PhraseMatcher
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

    vocab = Vocab()
    try:
        PhraseMatcher(vocab, attr=attr).add("check", [Doc(vocab, words=["phrase"])])
    except ValueError:
        raise typer.BadParameter(f"{attr!r} is not a token attribute the PhraseMatcher can match on in a blank pipeline (ORTH, LOWER, NORM, SHAPE, ...)") from None
    return attr


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
        console=console, transient=True, disable=not sys.stderr.isatty(),
    )


def with_progress(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    """Yield ``items`` while a progress bar on stderr counts them (hidden when stderr is no terminal)."""
    with progress_bar() as progress:
        task = progress.add_task(description, total=total, rate="")
        for count, item in enumerate(items, start=1):
            yield item
            if count % 64 == 0:
                elapsed = progress.tasks[0].elapsed or 0
                progress.update(task, completed=count, rate=f"{count / elapsed:,.0f}/s" if elapsed else "")
        progress.update(task, completed=total)


def fail(message: str) -> NoReturn:
    """Print one error the user can fix (no traceback) and exit 1."""
    console.print(f"[bold red]error[/] {escape(message)}", highlight=False, soft_wrap=True)  # "[/x]" is user text
    raise typer.Exit(1)

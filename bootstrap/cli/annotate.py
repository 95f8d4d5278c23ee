"""``bootstrap PATTERNS... TEXTS``: start (or resume) an annotation session and serve its page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import DEFAULT_DB, FIRST_TEXTS, LANG, MODES, PHRASE_ATTR, HandoffPolicy, SessionConfig
from ._util import (
    DB_OPTION, app, blank_nlp, console, count_lines, fail, reports_input_errors, split_patterns_and_texts,
    validate_phrase_attr, with_progress,
)


@app.command("annotate")
@reports_input_errors
def annotate_cli(
    files: Annotated[list[Path], typer.Argument(metavar="PATTERNS... TEXTS", help="Pattern files, then the texts (JSONL, .txt or a folder).")],
    lfs: Annotated[Optional[Path], typer.Option("--lfs", help="Python file of @labeling_function / @span_proposer functions.")] = None,
    dataset: Annotated[str, typer.Option(help="Dataset the answers are stored in; the same name resumes.")] = "bootstrap",
    db: Annotated[str, DB_OPTION] = DEFAULT_DB,
    label: Annotated[Optional[list[str]], typer.Option("--label", help="Only ask about this label (repeat for several).")] = None,
    host: Annotated[str, typer.Option(help="Interface to serve on: 127.0.0.1 keeps the page on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the page.")] = 8080,
    lang: Annotated[str, typer.Option(help="Language of spacy.blank() used to tokenize.")] = LANG,
    phrase_attr: Annotated[str, typer.Option(callback=validate_phrase_attr, help="Token attribute phrase patterns match on.")] = PHRASE_ATTR,
    exploration: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of questions drawn at random (unbiased estimates).")] = SessionConfig.exploration,
    model_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of ranked questions given to the model once one is in the loop: spans only it proposed, and decided strings it sees otherwise somewhere.")] = SessionConfig.model_share,
    refit_every: Annotated[int, typer.Option(min=0, help="Refit the LabelModel every N decisions (0: never).")] = SessionConfig.refit_every,
    seed: Annotated[int, typer.Option(help="Seed of the exploration draws, the LabelModel and training.")] = SessionConfig.seed,
    handoff: Annotated[str, typer.Option(help="When a model trained from the decisions takes over: auto (when it beats the rules on held-out decisions), now, never.")] = HandoffPolicy.mode,
    handoff_every: Annotated[int, typer.Option(min=1, help="Train a new model every N decisions.")] = HandoffPolicy.every,
    handoff_min_accepts: Annotated[int, typer.Option(min=1, help="Accepts each label needs before the first model.")] = HandoffPolicy.min_accepts,
    models_dir: Annotated[Path, typer.Option(help="Where trained models are written.")] = Path(HandoffPolicy.models_dir),
    dask: Annotated[Optional[str], typer.Option("--dask", metavar="ADDRESS|local:N", help="Find the candidates on a Dask cluster: a scheduler's address, or local:N for N worker processes here (needs the dask extra installed).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Match the rules and run the functions again, whatever the cache holds. A restart otherwise reads the candidate table back from the cache; it is rebuilt by itself when a pattern file, the --lfs file, the texts (path, size, modification time), --label, --lang, --phrase-attr or bootstrap changes, or when the database lacks the texts. A module your --lfs file imports is not seen: after changing one, use --rebuild.")] = False,
    first_texts: Annotated[int, typer.Option(min=0, help="Start asking on the corpus's first N texts while the rest is read, stored and matched in the background (0: read everything first).")] = FIRST_TEXTS,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", envvar="BOOTSTRAP_CACHE_DIR", help="Where candidate tables are cached (default: DB.cache/ beside a SQLite file, ./.bootstrap-cache/ for a database URL).")] = None,
) -> None:
    """Answer one binary question at a time in the browser; every answer is stored at once."""
    from .. import scale
    from ..reading import start_session

    pattern_files, texts = split_patterns_and_texts(files)
    if texts is None:
        raise typer.BadParameter("give the pattern files, then the texts", param_hint="FILES")
    blank_nlp(lang)  # an unknown language is a usage error before any work
    if handoff not in MODES:
        raise typer.BadParameter(f"one of {', '.join(MODES)}", param_hint="'--handoff'")
    policy = HandoffPolicy(mode=handoff, every=handoff_every, min_accepts=handoff_min_accepts, models_dir=str(models_dir))
    config = SessionConfig(exploration=exploration, model_share=model_share, refit_every=refit_every, seed=seed, handoff=policy, lang=lang)
    try:
        build = scale.builder(dask) if dask else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="'--dask'") from None
    session = start_session(  # a restart reads the whole table back from the cache
        pattern_files, texts, db=db, dataset=dataset, lfs=lfs, labels=label, lang=lang, phrase_attr=phrase_attr,
        config=config, first_texts=first_texts, build=build, cache_dir=cache_dir, rebuild=rebuild,
        progress=lambda records: with_progress(records, f"Reading {texts.name}", count_lines(texts)),
    )
    if not session.table.n_questions and session.reading is None:
        session.close()
        fail(f"no rule or function proposed a single span in {texts}: there is nothing to ask "
             f"(bootstrap check {' '.join(str(p) for p in pattern_files)} {texts} shows what each rule matches)")
    for message in session.table.errors.messages():
        console.print(f"[yellow]warning[/] {message}", highlight=False)
    progress = session.progress()
    console.print(
        f"{session.table.n_questions:,} questions on {session.table.texts:,} texts "
        f"({session.aggregate.method_reason}); {progress['answers']:,} answered in dataset {dataset!r} of {db}.",
        highlight=False,
    )
    if session.reading is not None:
        console.print(f"The rest of {texts} is read, stored and matched in the background; its questions join "
                      "when it is done (the page shows how far it is).", highlight=False)
    session.start_handoff()  # the first model learns the rules' labels in the background while you answer
    from ..server import serve  # the web stack is imported only when a page is served

    serve(session, host=host, port=port)

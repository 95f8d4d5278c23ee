"""``bootstrap simulate PATTERNS... TEXTS --gold GOLD``: learning curves of active vs random order vs rules alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..config import LANG, MAX_EPOCHS, SEED
from ._util import app, console, fail, progress_bar, reports_input_errors, split_patterns_and_texts

# ``bootstrap.simulate.STRATEGIES``, written out so that ``--help`` need not import the
# simulation (spaCy, Snorkel, torch); tests/test_cli_startup.py checks that the two agree.
STRATEGIES = ("active", "random", "rules", "gold")
TRAINING = ("checkpoints", "first", "none")  # --training: simulate's train=True, first_model=True, neither


class ProgressReporter:
    """One rich progress bar per strategy (hidden when stderr is not a terminal): a
    ``bootstrap.simulate.Reporter``, by its methods."""

    def __init__(self, progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def start(self, name: str, total: int) -> None:
        self.tasks[name] = self.progress.add_task(name, total=total, rate="")

    def advance(self, name: str, steps: int = 1) -> None:
        self.progress.advance(self.tasks[name], steps)

    def note(self, name: str, message: str) -> None:
        self.progress.update(self.tasks[name], description=f"{name}: {message}")


@app.command("simulate")
@reports_input_errors
def simulate_cli(
    files: Annotated[list[Path], typer.Argument(metavar="PATTERNS... TEXTS", help="Pattern files, then the texts whose questions are answered from GOLD (the pool).")],
    gold: Annotated[Path, typer.Option("--gold", help="JSONL with complete annotations ({text, spans}) of the pool texts; may be the TEXTS file itself.")],
    test: Annotated[Optional[Path], typer.Option("--test", help="Held-out gold texts to score on; default: a stable 20% of GOLD by input hash, taken out of the pool.")] = None,
    budget: Annotated[int, typer.Option(help="Decisions per strategy.")] = 500,
    checkpoint: Annotated[int, typer.Option(help="Train and score a model every this many decisions.")] = 100,
    seeds: Annotated[Optional[list[int]], typer.Option("--seed", help="Seed of the ranking, the annotator's noise and every training run. Repeat it to run several seeds, one after the other, and get their mean, range and standard error: one run cannot tell two orders apart. \\[default: 0]")] = None,
    strategies: Annotated[str, typer.Option(help=f"Comma-separated, of {', '.join(STRATEGIES)}.")] = ",".join(STRATEGIES),
    noise: Annotated[float, typer.Option(help="Share of answers the simulated annotator gets wrong (accept and reject swapped).")] = 0.0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for curves.json and curves.png; with several seeds, each seed's in DIR/seed-N and their summary.json and summary.png.")] = Path("simulation"),
    lfs: Annotated[Optional[Path], typer.Option("--lfs", help="Python file of labeling functions, as for `bootstrap annotate`.")] = None,
    max_epochs: Annotated[int, typer.Option(help="Passes over the training data at most, per checkpoint model and for the ceiling.")] = MAX_EPOCHS,
    lang: Annotated[str, typer.Option(help="Language of spacy.blank().")] = LANG,
    label: Annotated[Optional[list[str]], typer.Option("--label", help="A gold label to score and train the ceiling on (repeat for several). \\[default: the labels the rules and functions vote for]")] = None,
    training: Annotated[str, typer.Option(help="What is trained: 'checkpoints' (the product's loop: a model at the start and at every checkpoint, scored as the training hands it over), 'first' (only active order's first model, at the start, kept in the loop; the checkpoints score the rules corrected by the decisions: one training a seed) or 'none' (no model: the corrected rules, a minute a seed). The last two measure the order of questions over many seeds.")] = "checkpoints",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Seeds run at once, each in a process of its own: up to one a core (a seed's training keeps one busy).")] = 1,
) -> None:
    """Answer the loop's questions from gold and compare learning curves: active, random order, rules, ceiling."""
    from ..simulate import write_curves

    patterns, texts = split_patterns_and_texts(files)
    if texts is None:
        raise typer.BadParameter("give the pattern file(s) and then the TEXTS file", param_hint="FILES")
    chosen = [name.strip() for name in strategies.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in STRATEGIES]
    if unknown or not chosen:
        raise typer.BadParameter(f"{', '.join(unknown) or 'none given'} (choose from {', '.join(STRATEGIES)})",
                                 param_hint="'--strategies'")
    if budget < 1 or checkpoint < 1:
        raise typer.BadParameter("--budget and --checkpoint must be at least 1")
    if not 0.0 <= noise <= 1.0:
        raise typer.BadParameter(f"{noise} is not a share between 0 and 1", param_hint="'--noise'")
    if training not in TRAINING:
        raise typer.BadParameter(f"{training!r} (choose from {', '.join(TRAINING)})", param_hint="'--training'")
    seeds = list(dict.fromkeys(seeds or [SEED]))
    options = dict(test=test, budget=budget, checkpoint=checkpoint, strategies=chosen, noise=noise, lfs=lfs, lang=lang,
                   max_epochs=max_epochs, labels=label, train=training == "checkpoints", first_model=training == "first")
    results: dict[int, dict[str, Any]] = {}
    for seed, result in run_seeds(patterns, texts, gold, seeds, jobs, options):
        results[seed] = result
        json_path, png_path = write_curves(result, output / f"seed-{seed}" if len(seeds) > 1 else output)
        Console().print(reach_table(result))  # the result, on stdout; progress and messages go to stderr
    if len(seeds) > 1:
        json_path, png_path = write_summary([results[seed] for seed in seeds], output, name=texts.stem)
    console.print(f"Scored on gold {', '.join(result['labels'])} only (--label); "
                  f"{'summary' if len(seeds) > 1 else 'curves'} in {json_path} and {png_path}", highlight=False)


def run_seeds(patterns: list[Path], texts: Path, gold: Path, seeds: list[int], jobs: int,
              options: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each seed's simulation, as it ends: one after the other with a progress bar per strategy,
    or ``jobs`` at a time in worker processes (:mod:`bootstrap.workers`) with one bar of seeds.
    A bad input or setting ends the command with its message (the other seeds are dropped)."""
    from ..simulate import simulate

    if jobs == 1 or len(seeds) == 1:
        for done, seed in enumerate(seeds):
            with progress_bar() as progress:
                if len(seeds) > 1:
                    console.print(f"seed {seed} ({done + 1} of {len(seeds)})", highlight=False)
                try:
                    result = simulate(patterns, texts, gold, seed=seed, reporter=ProgressReporter(progress), **options)
                except ValueError as error:
                    fail(str(error))
            yield seed, result
        return
    from concurrent.futures import as_completed

    from ..workers import worker_pool

    pool = worker_pool(min(jobs, len(seeds)))
    try:
        with progress_bar() as progress:
            bar = progress.add_task(f"{len(seeds)} seeds, {min(jobs, len(seeds))} at a time", total=len(seeds), rate="")
            running = {pool.submit(simulate, patterns, texts, gold, seed=seed, **options): seed for seed in seeds}
            for future in as_completed(running):
                try:
                    result = future.result()
                except ValueError as error:
                    fail(str(error))
                progress.advance(bar)
                yield running[future], result
    finally:  # (a failed seed ends the command: the seeds not started are dropped, the others end with it)
        pool.shutdown(wait=False, cancel_futures=True)


def write_summary(results: list[dict[str, Any]], output: Path, name: str) -> tuple[Path, Path]:
    """The seeds' summary (``bootstrap.seeds``): ``output/summary.json`` and ``summary.png``, its
    lines printed on stdout."""
    import json

    from .. import seeds

    summary = seeds.summarize(results, name)
    output.mkdir(parents=True, exist_ok=True)
    json_path, png_path = output / "summary.json", output / "summary.png"
    json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    seeds.plot(summary, png_path)
    for line in seeds.report(summary):
        typer.echo(line)
    return json_path, png_path


def reach_table(result: dict[str, Any]) -> Table:
    """Per strategy: final F, and the decisions needed to reach 80% and 90% of the ceiling."""
    from ..simulate import REACH_LEVELS

    settings = result["settings"]
    ceiling = result.get("ceiling_f")
    table = Table(title=f"seed {settings['seed']}, budget {settings['budget']}, noise {settings['noise']:.0%}",
                  caption=f"columns: decisions to reach that share of the ceiling F {ceiling:.3f}" if ceiling is not None
                  else "no ceiling: add the gold strategy to see decisions needed", caption_justify="left")
    table.add_column("strategy")
    table.add_column("F at budget", justify="right")
    levels = REACH_LEVELS if ceiling is not None else ()
    for level in levels:
        table.add_column(f"{level:.0%} of ceiling", justify="right")
    for name, curve in result["strategies"].items():
        last = curve["points"][-1]
        untrained = settings.get("train", True) and not last.get("trained", True)  # (by design with --training first or none)
        cells = [name, f"{last['f']:.3f}" + (" (untrained)" if untrained else "")]
        for level in levels:
            needed = result["reach"].get(name, {}).get(f"{level:.0%}")
            cells.append("" if name == "gold" else f"> {settings['budget']}" if needed is None else f"{needed:,}")
        table.add_row(*cells)
    return table

"""How much slower is ``bootstrap check`` than the bare spaCy matching it is built on?

The goal (issue 2): candidate generation runs at 0.9 or more of the texts per second of
``nlp.pipe`` plus a ``Matcher``/``PhraseMatcher`` holding the same patterns and doing nothing
else. Both paths read the same JSONL file, tokenize with the same blank pipeline and match the
same rules; they run interleaved, several times. Rates are texts per second of this process's
CPU time (everything here runs in one thread), so other jobs on a shared machine disturb them
little, and the best run of each path is compared, as ``timeit`` advises: interference only
ever slows a run down. Medians and wall-clock seconds are kept as well.

* **baseline**: ``json.loads`` each line, ``nlp.pipe``, the two spaCy matchers and the rules'
  regexes (``regex.finditer`` snapped to tokens with ``Doc.char_span``), one set of
  ``(rule, start, end)`` a text. That is the least anyone can do to apply these rules.
* **candidates**: ``read_texts`` → ``generate_candidates`` (what every later step consumes).
* **check**: the same stream through ``check_rules`` as well (what ``bootstrap check`` runs,
  minus printing the table).

All paths must find the same number of matches, or the comparison is void (the script says so
and exits 1).

    python benchmarks/candidates_throughput.py                      # 20k sentences of NCBI train
    python benchmarks/candidates_throughput.py --texts 2000 --unit abstracts --repeats 5

``--output FILE`` keeps the run as one row of ``FILE`` (``benchmarks/results/candidates_throughput.json``
for the README's table, which ``benchmarks/readme_figures.py`` writes): a row per corpus and rule
set, replaced when the same corpus and rules are measured again.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import regex
import spacy
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from bootstrap.candidates import generate_candidates  # noqa: E402
from bootstrap.check import check_rules  # noqa: E402
from bootstrap.corpus import read_texts  # noqa: E402
from bootstrap.errors import InputError  # noqa: E402
from bootstrap.matching import RuleMatcher  # noqa: E402
from bootstrap.rules import RuleSet, load_rules  # noqa: E402

DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "ncbi-disease" / "train.jsonl"
DEFAULT_PATTERNS = ROOT / "examples" / "diseases" / "patterns.jsonl"
GOAL = 0.9
# A sentence ends at . ! or ? followed by a space and a capital, or at a line break (titles).
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[])|\n+")


@dataclass
class Run:
    """One timed pass of one path over the whole corpus."""

    path: str
    texts: int
    matches: int
    seconds: float  # wall clock
    cpu_seconds: float  # this process only

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.cpu_seconds


def build_corpus(source: Path, n_texts: int, unit: str = "sentences", seed: int = 0) -> list[str]:
    """``n_texts`` texts cut from ``source`` (a JSONL of ``{"text"}``), shuffled and repeated as needed."""
    pool: list[str] = []
    with source.open(encoding="utf8") as file:
        for line in file:
            text = json.loads(line)["text"]
            if unit == "abstracts":
                pool.append(text)
            else:
                pool.extend(s.strip() for s in SENTENCE_END.split(text) if len(s.strip()) >= 20)
    if not pool:
        raise SystemExit(f"{source}: no texts")
    rng = random.Random(seed)
    corpus: list[str] = []
    while len(corpus) < n_texts:
        rng.shuffle(pool)
        corpus.extend(pool[: n_texts - len(corpus)])
    return corpus


def baseline_run(nlp: Language, rules: RuleSet, texts_path: Path, batch_size: int) -> Run:
    """The bare spaCy way: the rules in one ``Matcher``, one ``PhraseMatcher`` and their regexes."""
    matcher = Matcher(nlp.vocab)
    phrase_matcher = PhraseMatcher(nlp.vocab)
    regexes = []
    for rule in rules:
        tokens = [p.value for p in rule.patterns if p.kind == "tokens"]
        phrases = [p.value for p in rule.patterns if p.kind == "phrase"]
        if tokens:
            matcher.add(rule.id, tokens, greedy="LONGEST")
        if phrases:
            phrase_matcher.add(rule.id, list(nlp.tokenizer.pipe(phrases)))
        # keyed like the matchers' matches, so a rule's regex and token hits on one span count once
        key = nlp.vocab.strings.add(rule.id)
        regexes.extend((key, regex.compile(p.value)) for p in rule.patterns if p.kind == "regex")

    matchers = [m for m in (matcher, phrase_matcher) if len(m)]  # an empty one only warns (W036)

    def work() -> tuple[int, int]:
        texts = matches = 0
        with texts_path.open(encoding="utf8") as file:
            stream = (json.loads(line)["text"] for line in file)
            for doc in nlp.pipe(stream, batch_size=batch_size):
                found = set()
                for spacy_matcher in matchers:
                    found.update(spacy_matcher(doc))
                text = doc.text
                for key, pattern in regexes:
                    for hit in pattern.finditer(text):
                        span = doc.char_span(hit.start(), hit.end(), alignment_mode="expand")
                        if span is not None:
                            found.add((key, span.start, span.end))
                texts += 1
                matches += len(found)
        return texts, matches

    return _timed("baseline", work)


def candidates_run(nlp: Language, rules: RuleSet, texts_path: Path, batch_size: int) -> Run:
    """``read_texts`` → ``generate_candidates``: the stream every later step consumes."""
    matcher = RuleMatcher(nlp, rules)

    def work() -> tuple[int, int]:
        texts = matches = 0
        for result in generate_candidates(nlp, matcher, read_texts(texts_path), batch_size):
            texts += 1
            matches += len(result.matches)
        return texts, matches

    return _timed("candidates", work)


def check_run(nlp: Language, rules: RuleSet, texts_path: Path, batch_size: int) -> Run:
    """The same stream through ``check_rules``: what ``bootstrap check`` does before printing."""
    matcher = RuleMatcher(nlp, rules)

    def work() -> tuple[int, int]:
        report = check_rules(rules, generate_candidates(nlp, matcher, read_texts(texts_path), batch_size))
        return report.texts, sum(stats.matches for stats in report.rules)

    return _timed("check", work)


def _timed(path: str, work: Callable[[], tuple[int, int]]) -> Run:
    start, cpu_start = time.perf_counter(), time.process_time()
    texts, matches = work()
    return Run(path, texts, matches, time.perf_counter() - start, time.process_time() - cpu_start)


RUNNERS = {"baseline": baseline_run, "candidates": candidates_run, "check": check_run}


def benchmark(
    texts: list[str], pattern_paths: list[Path], repeats: int = 3, batch_size: int = 256, lang: str = "en"
) -> dict:
    """Run every path ``repeats`` times, interleaved, on the same file; return runs, best rates and ratios.

    Every run gets a pipeline and rules of its own, as every command does (``build_table``,
    ``bootstrap check``): each pays for its words' lexemes and their token ``REGEX`` flags, as a
    command on a new corpus does. (On one shared vocab the matchers once took new flag bits each,
    ran out after two and fell to slow ``Token._`` getters: check measured 0.38 of the baseline;
    they share their flags now, ``matching.WordFlag``.)
    """
    runs: list[Run] = []

    def fresh_run(runner: Callable[..., Run]) -> Run:
        nlp = spacy.blank(lang)
        return runner(nlp, load_rules(pattern_paths, nlp.vocab), texts_path, batch_size)

    with tempfile.TemporaryDirectory() as folder:
        texts_path = Path(folder) / "texts.jsonl"
        with texts_path.open("w", encoding="utf8") as file:
            file.writelines(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts)
        for runner in RUNNERS.values():  # warm-up: lazy imports, the file in the page cache
            fresh_run(runner)
        for _ in range(repeats):
            runs.extend(fresh_run(runner) for runner in RUNNERS.values())
    rates = {path: [run.texts_per_second for run in runs if run.path == path] for path in RUNNERS}
    best = {path: max(rate) for path, rate in rates.items()}
    matches = {path: {run.matches for run in runs if run.path == path} for path in RUNNERS}
    return {
        "texts": len(texts),
        "rules": len(load_rules(pattern_paths, spacy.blank(lang).vocab)),
        "repeats": repeats,
        "runs": [asdict(run) | {"texts_per_second": run.texts_per_second} for run in runs],
        "texts_per_second": best,
        "median_texts_per_second": {path: statistics.median(rate) for path, rate in rates.items()},
        "matches": {path: sorted(found) for path, found in matches.items()},
        "same_matches": len(set.union(*matches.values())) == 1,
        "ratio": {path: best[path] / best["baseline"] for path in RUNNERS if path != "baseline"},
        "goal": GOAL,
    }


def print_result(result: dict) -> None:
    print(f"{result['texts']:,} texts, {result['rules']} rules, best of {result['repeats']} interleaved runs (median), per CPU second")
    for path, rate in result["texts_per_second"].items():
        median = result["median_texts_per_second"][path]
        ratio = result["ratio"].get(path)
        shown = f"  ratio {ratio:.2f} {'ok' if ratio >= GOAL else f'below the {GOAL} goal'}" if ratio else ""
        print(f"  {path:<11} {rate:>8,.0f} texts/s ({median:>8,.0f})  matches {result['matches'][path]}{shown}")
    if not result["same_matches"]:
        print("  the paths found different numbers of matches: the comparison is void")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="JSONL of texts to sample from")
    parser.add_argument("--patterns", type=Path, nargs="+", default=[DEFAULT_PATTERNS])
    parser.add_argument("--texts", type=int, default=20_000, help="texts in the corpus (repeated as needed)")
    parser.add_argument("--unit", choices=("sentences", "abstracts"), default="sentences")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--output", type=Path, help="keep the figures as a row of this JSON file")
    args = parser.parse_args(argv)
    if args.texts < 1 or args.repeats < 1:
        parser.error("--texts and --repeats must be at least 1")
    if not args.source.is_file():
        parser.error(f"{args.source}: no such file (the NCBI data is read from ../shared/data by default)")
    texts = build_corpus(args.source, args.texts, args.unit, args.seed)
    try:
        result = benchmark(texts, args.patterns, args.repeats, args.batch_size)
    except InputError as error:
        parser.error(str(error))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_result(result)
    if args.output:
        record_row(args.output, result, unit=args.unit, patterns=[_shown(path) for path in args.patterns])
    return 0 if result["same_matches"] else 1


def _shown(path: Path) -> str:
    """A pattern file as the README names it: relative to the checkout when it is in it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def record_row(path: Path, result: dict, *, unit: str, patterns: list[str]) -> None:
    """Put this run in ``path`` as one row, replacing an earlier row of the same corpus and rules."""
    row = {key: value for key, value in result.items() if key != "runs"} | {
        "unit": unit, "patterns": patterns, "spacy": spacy.__version__, "load_average": round(os.getloadavg()[0], 1)}
    key = (unit, row["texts"], patterns)
    rows = json.loads(path.read_text(encoding="utf8"))["rows"] if path.is_file() else []
    rows = [other for other in rows if (other["unit"], other["texts"], other["patterns"]) != key] + [row]
    path.write_text(json.dumps({"benchmark": "benchmarks/candidates_throughput.py", "rows": rows}, indent=1) + "\n",
                    encoding="utf8")


if __name__ == "__main__":
    sys.exit(main())

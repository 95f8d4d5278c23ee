"""Do LabelModel probabilities rank candidates better than a majority vote, and do decisions help?

For each data set and its example rules: build the candidate table over the training texts, and
score every question against gold (accept iff gold has exactly that span and label):

* ROC-AUC and Brier score of Snorkel's LabelModel's probabilities, of the plain vote (the
  aggregate a session starts from: every rule trusted alike) and of a majority vote (the share of
  a row's votes that name the question's label);
* the Brier score and ROC-AUC of the *remaining* candidates after 0, 50, 100, 200 and 400 gold
  decisions taken in random order, through ``Aggregate.observe`` (no refit) of the aggregate a
  session uses: the calibration the ranking gets from decisions alone.

Results go to ``benchmarks/results/aggregate_quality.json``; the README's table is written from
it by ``benchmarks/readme_figures.py``.

    python benchmarks/aggregate_quality.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import spacy
from sklearn.metrics import roc_auc_score

from bootstrap.aggregate import Aggregate
from bootstrap.candidates import generate_candidates
from bootstrap.corpus import read_texts
from bootstrap.gold import gold_answer, load_gold
from bootstrap.labelmatrix import ABSTAIN, build_candidate_table
from bootstrap.matching import RuleMatcher
from bootstrap.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SETS = {
    "ncbi-disease": (ROOT / "examples/diseases/patterns.jsonl", DATA / "ncbi-disease/train.jsonl"),
    "wnut17": (ROOT / "examples/social-media/patterns.jsonl", DATA / "wnut17/train.jsonl"),
}
DECISIONS = (0, 50, 100, 200, 400)


def majority_vote(table) -> np.ndarray:
    """Per question, the share of the row's votes that name the question's label."""
    votes = table.L[table.question_row]
    return (votes == table.question_class[:, None]).sum(axis=1) / (votes != ABSTAIN).sum(axis=1)


def _scores(truth: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"roc_auc": float(roc_auc_score(truth, p)), "brier": float(np.mean((p - truth) ** 2))}


def evaluate(patterns: Path, texts: Path, seed: int = 0) -> dict:
    nlp = spacy.blank("en")
    rules = load_rules(patterns, nlp.vocab)
    started = time.perf_counter()
    table = build_candidate_table(generate_candidates(nlp, RuleMatcher(nlp, rules), read_texts(texts)), rules)
    built = time.perf_counter() - started
    gold = load_gold(texts)
    truth = np.array([gold_answer(gold, *table.question(i)) == "accept" for i in range(table.n_questions)])
    started = time.perf_counter()
    label_model = Aggregate(table, seed=seed, method="LabelModel").question_probabilities()
    fitted = time.perf_counter() - started
    plain_vote = Aggregate(table, seed=seed, method="weighted vote").question_probabilities()
    vote = majority_vote(table)
    result = {
        "texts": table.texts, "questions": table.n_questions, "lfs": len(table.columns), "positives": float(truth.mean()),
        "method": Aggregate(table, seed=seed).method, "build_seconds": round(built, 2), "fit_seconds": round(fitted, 2),
        "label_model": _scores(truth, label_model),
        "plain_vote": _scores(truth, plain_vote),
        "majority_vote": _scores(truth, vote),
        "after_decisions": [],
    }
    order = np.random.default_rng(seed).permutation(table.n_questions)
    for n in DECISIONS:
        aggregate = Aggregate(table, seed=seed)
        for i in order[:n]:
            aggregate.observe(int(table.question_row[i]), int(table.question_class[i]), "accept" if truth[i] else "reject")
        rest = order[n:]
        p = aggregate.question_probabilities()[rest]
        result["after_decisions"].append({
            "decisions": n, "brier_rest": float(np.mean((p - truth[rest]) ** 2)), "roc_auc_rest": roc_auc_score(truth[rest], p),
        })
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "aggregate_quality.json",
                        help="where the figures are written")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {name: evaluate(patterns, texts, args.seed) for name, (patterns, texts) in SETS.items()}
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from readme_figures import aggregate_quality

    print(aggregate_quality())


if __name__ == "__main__":
    main()

"""Do LabelModel probabilities rank candidates better than a majority vote, and do decisions help?

For each data set and its example rules: build the candidate table over the training texts, and
score every question against gold (accept iff gold has exactly that span and label):

* ROC-AUC and Brier score of the LabelModel's probabilities and of a plain majority vote (the
  share of a row's votes that name the question's label);
* the Brier score and ROC-AUC of the *remaining* candidates after 0, 50, 100, 200 and 400 gold
  decisions taken in random order, through ``Aggregate.observe`` (no refit): the calibration the
  ranking gets from decisions alone.

    python benchmarks/aggregate_quality.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
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


def evaluate(patterns: Path, texts: Path, seed: int = 0) -> dict:
    nlp = spacy.blank("en")
    rules = load_rules(patterns, nlp.vocab)
    started = time.perf_counter()
    table = build_candidate_table(generate_candidates(nlp, RuleMatcher(nlp, rules), read_texts(texts)), rules)
    built = time.perf_counter() - started
    gold = load_gold(texts)
    truth = np.array([gold_answer(gold, *table.question(i)) == "accept" for i in range(table.n_questions)])
    started = time.perf_counter()
    aggregate = Aggregate(table, seed=seed)
    fitted = time.perf_counter() - started
    label_model = aggregate.question_probabilities()
    vote = majority_vote(table)
    result = {
        "texts": table.texts, "questions": table.n_questions, "lfs": len(table.columns), "positives": float(truth.mean()),
        "method": aggregate.method, "build_seconds": round(built, 2), "fit_seconds": round(fitted, 2),
        "label_model": {"roc_auc": roc_auc_score(truth, label_model), "brier": float(np.mean((label_model - truth) ** 2))},
        "majority_vote": {"roc_auc": roc_auc_score(truth, vote), "brier": float(np.mean((vote - truth) ** 2))},
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
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {name: evaluate(patterns, texts, args.seed) for name, (patterns, texts) in SETS.items()}
    print(f"{'data':<14}{'questions':>10}{'LFs':>5}{'gold yes':>9}  {'AUC LabelModel':>15}{'AUC majority':>13}  {'Brier LM':>9}{'Brier MV':>9}")
    for name, r in results.items():
        print(f"{name:<14}{r['questions']:>10,}{r['lfs']:>5}{r['positives']:>9.2f}  {r['label_model']['roc_auc']:>15.3f}"
              f"{r['majority_vote']['roc_auc']:>13.3f}  {r['label_model']['brier']:>9.3f}{r['majority_vote']['brier']:>9.3f}")
    print("\nRemaining candidates after N gold decisions (random order, no refit): Brier / ROC-AUC")
    print(f"{'data':<14}" + "".join(f"{n:>16}" for n in DECISIONS))
    for name, r in results.items():
        cells = "".join(f"{d['brier_rest']:>8.3f} / {d['roc_auc_rest']:.3f}" for d in r["after_decisions"])
        print(f"{name:<14}{cells}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Which way of turning binary decisions into training data gives the best NER model?

Simulates an annotation project on NCBI-disease: the seed rules propose candidates on the
texts of ``train.jsonl``, an oracle answers each one (accept iff the gold annotation has exactly
that span and label), and, optionally, a share of the gold mentions no rule found is asked as
if a model had proposed it (and accepted). Every scheme in ``bootstrap.train.SCHEMES`` trains
on the same decisions, split and seed, and is scored on the gold ``test.jsonl`` beside the
rules alone (every positive rule match, longest first; and the same minus spans a negative rule
overlaps).

    python benchmarks/training_schemes.py --texts 250 --epochs 6                  # rules' candidates only
    python benchmarks/training_schemes.py --texts 250 --epochs 6 --model-share 0.3 --schemes sparse-outside
    python benchmarks/training_schemes.py --seed 1 --schemes sparse-outside reviewed-outside

Keep runs short on a shared machine: 250 abstracts and 6 epochs take 1-3 minutes a scheme on
one core (beam twice that). Abstracts are trained whole: the blank pipeline has no sentence
splitter and spaCy's NER handles 250-token docs well, so splitting bought nothing here.

Findings (README, "Training"; all runs in ``benchmarks/results/training_schemes.json``): with
the rules' candidates alone every scheme that marks tokens outside lands near the rules'
F 0.37 (0.33-0.41 over schemes and two seeds) and "missing" collapses (F 0.12); once some
mentions no rule found are proposed and accepted (``--model-share 0.3``), ``sparse-outside``
reaches F 0.56-0.59 against 0.47-0.50 for reviewed-outside and 0.43 for rejected-outside.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import spacy
from spacy.tokens import Span
from spacy.util import filter_spans

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bootstrap.candidates import generate_candidates  # noqa: E402
from bootstrap.corpus import read_texts  # noqa: E402
from bootstrap.hashing import task_hash  # noqa: E402
from bootstrap.matching import RuleMatcher  # noqa: E402
from bootstrap.rules import load_rules  # noqa: E402
from bootstrap.train import (  # noqa: E402
    SCHEMES, docs_from_decisions, evaluate_decisions, evaluate_gold, gold_docs, score_ents, split_decisions,
    token_span, train_ner,
)

DATA = ROOT.parent / "shared" / "data" / "ncbi-disease"
PATTERNS = next(p for p in (ROOT / "examples" / "diseases" / "patterns.jsonl",
                            ROOT / "examples" / "ncbi-disease" / "patterns.jsonl") if p.exists())


def simulate_decisions(nlp, rules, records, *, model_share: float, answer_share: float, seed: int):
    """Oracle decisions on rule candidates (+ accepted "model proposals"), and every proposed span."""
    rng = random.Random(seed)
    matcher = RuleMatcher(nlp, rules)
    tasks, proposed = [], {}
    for result in generate_candidates(nlp, matcher, records):
        record = result.record
        gold = {(s["start"], s["end"], s["label"]) for s in record.task.get("spans", [])}
        spans = {(c.start, c.end, c.label) for c in result.candidates}
        found_by_model = sorted(
            key for key in gold - spans
            if rng.random() < model_share and token_span(result.doc, key[0], key[1]) is not None
        )
        proposed[record.input_hash] = sorted(spans) + found_by_model
        for key in sorted(spans) + found_by_model:
            if key in spans and rng.random() >= answer_share:
                continue  # proposed, never asked
            start, end, label = key
            tasks.append({
                "text": record.text, "_input_hash": record.input_hash,
                "_task_hash": task_hash(record.input_hash, start, end, label),
                "spans": [{"start": start, "end": end, "label": label}],
                "answer": "accept" if key in gold else "reject",
                "meta": {"source": "model" if key not in spans else "rules"},
            })
    return tasks, proposed


def rules_baseline(nlp, rules, reference, *, use_negative: bool) -> dict:
    """Score the rules themselves: every positive match is a prediction (longest wins overlaps);
    with ``use_negative``, minus the spans a negative rule of the same label matched too (the
    candidates' ``votes_against``)."""
    matcher = RuleMatcher(nlp, rules)
    predicted = []
    for doc in reference:
        pred = nlp.make_doc(doc.text)
        matches = matcher(pred)
        negative = [m for m in matches if rules[m.rule_id].negative]

        def vetoed(match) -> bool:
            label = rules[match.rule_id].label
            return any((n.start, n.end) == (match.start, match.end) and rules[n.rule_id].label == label for n in negative)

        spans = [
            Span(pred, m.token_start, m.token_end, rules[m.rule_id].label) for m in matches
            if not rules[m.rule_id].negative and not (use_negative and vetoed(m))
        ]
        pred.set_ents(filter_spans(spans), default="outside")
        predicted.append(pred)
    return score_ents(predicted, reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=250, help="abstracts of train.jsonl to annotate")
    parser.add_argument("--test-texts", type=int, default=100, help="abstracts of test.jsonl to score on")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--patience", type=int, default=3, help="evaluations without improvement before stopping")
    parser.add_argument("--model-share", type=float, default=0.0,
                        help="share of gold mentions no rule found that are asked (and accepted) as model proposals")
    parser.add_argument("--answer-share", type=float, default=1.0, help="share of rule candidates answered")
    parser.add_argument("--schemes", nargs="*", default=list(SCHEMES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "training_schemes.json")
    args = parser.parse_args()

    nlp = spacy.blank("en")
    rules = load_rules(PATTERNS, nlp.vocab)
    records = list(islice(read_texts(DATA / "train.jsonl"), args.texts))
    tasks, proposed = simulate_decisions(nlp, rules, records, model_share=args.model_share,
                                         answer_share=args.answer_share, seed=args.seed)
    train_tasks, dev_tasks = split_decisions(tasks)
    test = gold_docs(nlp, DATA / "test.jsonl")[: args.test_texts]
    answers = {a: sum(t["answer"] == a for t in tasks) for a in ("accept", "reject")}
    print(f"{len(records)} texts, {len(tasks)} decisions ({answers['accept']} accept, {answers['reject']} reject), "
          f"train {len(train_tasks)} / dev {len(dev_tasks)} decisions; test {len(test)} texts", flush=True)

    results = {
        "setup": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                  "patterns": str(PATTERNS.relative_to(ROOT)), "decisions": len(tasks), **answers,
                  "train_decisions": len(train_tasks), "dev_decisions": len(dev_tasks)},
        "rules": rules_baseline(nlp, rules, test, use_negative=False),
        "rules_minus_negative": rules_baseline(nlp, rules, test, use_negative=True),
        "schemes": {},
    }
    for name in args.schemes:
        scheme = SCHEMES[name]
        started = time.perf_counter()
        train_docs = docs_from_decisions(nlp, train_tasks, proposed, scheme)
        dev_docs = docs_from_decisions(nlp, dev_tasks, proposed, scheme)
        with tempfile.TemporaryDirectory() as tmp:
            best = train_ner(train_docs, dev_docs, tmp, seed=args.seed, max_epochs=args.epochs,
                             patience=args.patience, beam=scheme.beam)
            model = spacy.load(best)
            scores = evaluate_gold(model, test)
            scores["dev_decisions"] = evaluate_decisions(model, dev_tasks)
        scores["seconds"] = round(time.perf_counter() - started, 1)
        scores["seconds_per_1000_decisions"] = round(scores["seconds"] * 1000 / max(len(train_tasks), 1), 1)
        results["schemes"][name] = scores
        print(f"{name:24} P {scores['precision']:.3f}  R {scores['recall']:.3f}  F {scores['f']:.3f}  "
              f"({scores['seconds']} s, {scores['seconds_per_1000_decisions']} s per 1,000 training decisions)", flush=True)

    print()
    print(f"| {'method':24} | P     | R     | F     | dev accept acc | dev reject acc | s / 1,000 decisions |")
    print(f"|{'-' * 26}|-------|-------|-------|----------------|----------------|---------------------|")
    for name in ("rules", "rules_minus_negative"):
        s = results[name]
        print(f"| {name:24} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f']:.3f} |                |                |                     |")
    for name, s in results["schemes"].items():
        d = s["dev_decisions"]
        print(f"| {name:24} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f']:.3f} | "
              f"{d['accept_accuracy']:.3f}          | {d['reject_accuracy']:.3f}          | {s['seconds_per_1000_decisions']:>19} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()

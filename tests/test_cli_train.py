"""``bootstrap train`` from a handful of decisions: it says the model learned nothing, and writes
no colour codes when its output goes to a file or a pipe."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bootstrap.cli import app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diseases"


def test_a_model_that_learned_nothing_is_said_to_have_and_the_log_is_plain(tmp_path):
    decisions = tmp_path / "decisions.jsonl"
    with (EXAMPLE / "gold.jsonl").open(encoding="utf8") as gold, decisions.open("w", encoding="utf8") as out:
        for _, line in zip(range(6), gold):
            task = json.loads(line)
            out.write(json.dumps({"text": task["text"], "spans": task["spans"][:1], "answer": "accept"}) + "\n")
    result = CliRunner().invoke(app, ["train", "--from-jsonl", str(decisions), "--output", str(tmp_path / "model"),
                                      "--max-epochs", "1", "--seed", "0"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "warning The model finds none of the 2 held-out accepted spans" in output and "learned nothing useful yet" in output
    assert "accepted spans per label: DISEASE" in output and "20 accepts per label" in output
    assert "\x1b[" not in result.output  # CliRunner's output is no terminal: no ANSI codes, spaCy's table included


def test_no_warning_when_the_model_finds_some_held_out_accepts(capsys):
    from bootstrap.cli.train import warn_if_it_learned_nothing

    tasks = [{"text": "Patients with asthma.", "spans": [{"start": 14, "end": 20, "label": "DISEASE"}], "answer": "accept"}]
    warn_if_it_learned_nothing(Path("no-model-needed"), tasks, {"accepted": 3, "accept_accuracy": 1 / 3})
    assert "warning" not in capsys.readouterr().err


def test_train_with_rules_says_so_too_when_its_model_finds_nothing(tmp_path, monkeypatch, answer_from_gold):
    """The README's `bootstrap train DATASET --rules PATTERNS` warns as the decisions-only path does;
    its training is replaced by a pipeline that finds no entity (what a model that learned nothing does)."""
    import spacy

    import bootstrap.weak_labels as weak_labels
    from bootstrap.gold import load_gold
    from bootstrap.handoff import HandoffPolicy
    from bootstrap.session import Session, SessionConfig

    db = tmp_path / "bootstrap.db"
    session = Session.from_files([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=db, dataset="diseases",
                                 config=SessionConfig(background_refit=False, handoff=HandoffPolicy(mode="never")))
    gold = load_gold(EXAMPLE / "gold.jsonl")
    answer_from_gold(session, gold, 30)
    session.close()
    finds_nothing = tmp_path / "finds-nothing"
    spacy.blank("en").to_disk(finds_nothing)
    trained = []

    def train_model(training_set, output, **options):
        trained.append(training_set.stats["train_texts"])
        return {"model": finds_nothing, "pipeline": finds_nothing,
                "scores": {"train_cpu_seconds": 1.0,
                           "pipeline": {"name": "rules", "path": str(finds_nothing), "held_out_f": {"ner": 0.31, "rules": 0.35},
                                        "trials": {"ner": {"against": "rules", "confidence": 0.4}}},
                           "held_out_decisions": {"accepted": 4, "accept_accuracy": 0.0}}}

    monkeypatch.setattr(weak_labels, "train_model", train_model)
    result = CliRunner().invoke(app, ["train", "diseases", "--db", str(db), "--rules", str(EXAMPLE / "patterns.jsonl"),
                                      "--output", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output
    assert trained and trained[0] > 0
    output = " ".join(result.output.split())
    assert "warning The model finds none of the 4 held-out accepted spans: it has learned nothing useful yet" in output
    assert "accepted spans per label: DISEASE" in output and "bootstrap check" in output
    assert "train with --rules" not in output  # it did
    assert "(spacy.load opens it: rules, chosen on the held-out texts from ner (F 0.31, beats rules in 40% of " \
        "resamples), rules (F 0.35))" in output

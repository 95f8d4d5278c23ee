"""``bootstrap simulate`` on a slice of NCBI-disease: the oracle, the curves, and what counts as learning."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bootstrap.cli import app
from bootstrap.gold import load_gold
from bootstrap.hashing import input_hash
from bootstrap.session import Session, SessionConfig
from bootstrap.simulate import GoldAnnotator, checkpoints_of, prepare_data, processor, reach, simulate, write_curves

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ROOT / "examples" / "diseases" / "patterns.jsonl"
BUDGET, CHECKPOINT = 60, 30


@pytest.fixture(scope="module")
def slice_files(tmp_path_factory, shared_data):
    """40 NCBI training abstracts as the pool (and its gold), 20 test abstracts as the test split."""
    folder = tmp_path_factory.mktemp("ncbi-slice")
    for name, source, n in (("pool.jsonl", "train.jsonl", 40), ("test.jsonl", "test.jsonl", 20)):
        lines = (shared_data / "ncbi-disease" / source).read_text(encoding="utf8").splitlines()[:n]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf8")
    return folder / "pool.jsonl", folder / "test.jsonl"


@pytest.fixture(scope="module")
def questions(slice_files, tmp_path_factory):
    """Tasks as the session hands them out (random order, so both answers occur), 80 of them."""
    pool, _ = slice_files
    db = tmp_path_factory.mktemp("questions") / "q.db"
    session = Session.from_files([PATTERNS], pool, db=db, dataset="q",
                                 config=SessionConfig(exploration=1.0, background_refit=False))
    tasks = []
    try:
        while len(tasks) < 80 and (task := session.next_question("t")) is not None:
            tasks.append(task)
            session.answer("t", task["task_hash"], "ignore")
    finally:
        session.close()
    return tasks


@pytest.fixture(scope="module")
def curves(slice_files, tmp_path_factory):
    pool, test = slice_files
    result = simulate([PATTERNS], pool, pool, test=test, budget=BUDGET, checkpoint=CHECKPOINT, seed=0, max_epochs=2)
    output = tmp_path_factory.mktemp("curves")
    json_path, png_path = write_curves(result, output)
    return result, json_path, png_path


def gold_membership(path: Path) -> dict[int, set[tuple[int, int, str]]]:
    """Straight from the JSON lines, not through bootstrap.gold."""
    spans = {}
    for line in path.read_text(encoding="utf8").splitlines():
        task = json.loads(line)
        spans[input_hash(task["text"])] = {(s["start"], s["end"], s["label"]) for s in task["spans"]}
    return spans


def test_oracle_accepts_exactly_the_gold_spans(slice_files, questions):
    gold = gold_membership(slice_files[0])
    oracle = GoldAnnotator(load_gold(slice_files[0]))
    answers = [oracle(task) for task in questions]
    expected = [
        "accept" if (task["spans"][0]["start"], task["spans"][0]["end"], task["label"]) in gold[task["input_hash"]]
        else "reject"
        for task in questions
    ]
    assert answers == expected
    assert {"accept", "reject"} <= set(answers)
    assert oracle.flipped == 0 and oracle.asked == len(questions)


def test_noise_flips_about_that_share_the_same_way_for_a_seed(slice_files, questions):
    gold = load_gold(slice_files[0])
    tasks = questions * 25  # 2,000 answers
    truth = [GoldAnnotator(gold).truth(task) for task in tasks]
    noisy = GoldAnnotator(gold, noise=0.2, seed=3)
    answers = [noisy(task) for task in tasks]
    flipped = sum(a != t for a, t in zip(answers, truth))
    assert flipped == noisy.flipped
    assert 0.17 < flipped / len(tasks) < 0.23
    same_seed, other_seed = GoldAnnotator(gold, noise=0.2, seed=3), GoldAnnotator(gold, noise=0.2, seed=4)
    assert answers == [same_seed(task) for task in tasks]
    assert answers != [other_seed(task) for task in tasks]
    with pytest.raises(ValueError, match="noise"):
        GoldAnnotator(gold, noise=1.5)


def test_default_test_split_is_stable_and_never_in_the_pool(tmp_path, shared_data):
    gold = shared_data / "ncbi-disease" / "dev.jsonl"
    data = prepare_data(gold, gold, None, tmp_path)
    assert data.pool_hashes.isdisjoint(data.test_hashes)
    assert len(data.pool_hashes) + len(data.test_hashes) == len(gold_membership(gold))
    assert 10 <= len(data.test_hashes) <= 30  # 20% of 100, give or take
    pool_lines = [json.loads(line) for line in data.pool.read_text(encoding="utf8").splitlines()]
    assert all("spans" not in task for task in pool_lines)  # the loop never sees gold
    again = tmp_path / "again"
    again.mkdir()
    assert prepare_data(gold, gold, None, again).test_hashes == data.test_hashes


def test_curves_have_one_point_per_checkpoint_and_flat_lines_do_not_move(curves):
    result, json_path, _ = curves
    parsed = json.loads(json_path.read_text(encoding="utf8"))
    assert parsed == json.loads(json.dumps(result))
    assert set(parsed["strategies"]) == {"active", "random", "rules", "labelmodel", "aggregate", "gold"}
    checkpoints = checkpoints_of(BUDGET, CHECKPOINT)
    assert checkpoints[0] == 0  # the model before any decision: the rules, learned
    for name, curve in parsed["strategies"].items():
        assert [p["checkpoint"] for p in curve["points"]] == checkpoints, name
        if curve["kind"] == "flat":
            assert {p["f"] for p in curve["points"]} == {curve["f"]}, name
        else:
            for point in curve["points"]:
                assert point["decisions"] == point["checkpoint"]  # 40 abstracts have far more questions
                assert point["accepts"] + point["rejects"] + point["ignores"] == point["decisions"]
                assert 0.0 <= point["f"] <= 1.0
                # trained on the whole pool, not only on the decided texts
                assert point["training_set"]["texts"] + point["training_set"]["held_out_texts"] == 40
            assert curve["annotator"] == {"asked": BUDGET, "flipped": 0}
            assert curve["asked"]["questions"] == BUDGET
            assert 0 <= curve["asked"]["beyond_rules_accepted"] <= curve["asked"]["beyond_rules"]

    assert parsed["ceiling_f"] == parsed["strategies"]["gold"]["f"]
    assert parsed["data"] == {**parsed["data"], "pool_texts": 40, "test_texts": 20}


def test_random_order_draws_questions_the_ranking_would_not(curves):
    """Same seed, same candidates: the two decision strategies must not be the same run."""
    strategies = curves[0]["strategies"]
    assert [p["accepts"] for p in strategies["active"]["points"]] != [p["accepts"] for p in strategies["random"]["points"]] \
        or [p["texts"] for p in strategies["active"]["points"]] != [p["texts"] for p in strategies["random"]["points"]]


def test_the_png_is_a_png(curves):
    png = curves[2].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_a_run_with_only_ignores_is_not_reported_as_learning(slice_files):
    """Ignores teach nothing: every checkpoint's training set, and so its model, is the one of 0 decisions."""
    pool, test = slice_files
    result = simulate([PATTERNS], pool, pool, test=test, budget=40, checkpoint=20, strategies=["random"],
                      answer_with=lambda task: "ignore", max_epochs=2)
    points = result["strategies"]["random"]["points"]
    assert [p["decisions"] for p in points] == [0, 20, 40]
    assert all(p["accepts"] == 0 and p["rejects"] == 0 for p in points)
    assert len({p["f"] for p in points}) == 1  # the same model as before any decision
    assert all(p["training_set"]["entities"]["decision"] == 0 and p["training_set"]["entities"]["carried"] == 0
               for p in points)
    assert "annotator" not in result["strategies"]["random"]


def test_without_a_model_each_checkpoint_scores_the_rules_corrected_by_the_decisions(slice_files, monkeypatch):
    """``train=False``: nothing is trained, no model enters the loop; at 0 decisions the curve is
    the rules' own line, and gold answers (rejects carried to every occurrence) lift it."""
    from bootstrap import train

    def no_training(*args, **kwargs):
        raise AssertionError("train=False trained a model")

    monkeypatch.setattr(train, "train_ner", no_training)
    pool, test = slice_files
    result = simulate([PATTERNS], pool, pool, test=test, budget=80, checkpoint=40, seed=0,
                      strategies=["active", "random", "rules"], train=False)
    rules = result["strategies"]["rules"]["f"]
    for name in ("active", "random"):
        points = result["strategies"][name]["points"]
        assert [p["decisions"] for p in points] == [0, 40, 80]
        assert all(p["pipeline"] == "rules" and not p["trained"] for p in points)
        assert points[0]["f"] == pytest.approx(rules, abs=1e-4)
        assert points[-1]["precision"] > points[0]["precision"]  # the rejected strings are gone everywhere
        assert points[-1]["training_set"]["carried_strings"] > 0
    assert result["settings"]["train"] is False


def test_with_the_first_model_only_active_order_keeps_it_in_the_loop(slice_files):
    """``first_model``: active's session trains once, at its start, and that model stays in the
    loop (its proposals asked within their share); the checkpoints score the corrected rules and
    train nothing more. Random order has no model at all."""
    pool, test = slice_files
    result = simulate([PATTERNS], pool, pool, test=test, budget=60, checkpoint=30, seed=0, max_epochs=1,
                      strategies=["active", "random"], train=False, first_model=True)
    active, random_order = (result["strategies"][name] for name in ("active", "random"))
    assert [p["model_in_loop"] for p in active["points"]] == [True, True, True]
    assert not any(p["model_in_loop"] for p in random_order["points"])
    assert all(p["pipeline"] == "rules" and not p["trained"] for p in active["points"])
    assert active["asked"]["beyond_rules"] > 0 and random_order["asked"]["beyond_rules"] == 0
    assert result["settings"]["first_model"] is True


def test_reach_counts_decisions_for_curves_and_zero_for_flat_lines():
    curves = {
        "active": {"kind": "decisions", "points": [{"decisions": 100, "f": 0.5}, {"decisions": 200, "f": 0.75}]},
        "random": {"kind": "decisions", "points": [{"decisions": 100, "f": 0.2}, {"decisions": 200, "f": 0.3}]},
        "rules": {"kind": "flat", "points": [{"decisions": 100, "f": 0.65}, {"decisions": 200, "f": 0.65}]},
        "gold": {"kind": "flat", "points": [{"decisions": 100, "f": 0.8}, {"decisions": 200, "f": 0.8}]},
    }
    assert reach(curves, 0.8) == {
        "active": {"80%": 200, "90%": 200}, "random": {"80%": None, "90%": None}, "rules": {"80%": 0, "90%": None},
    }
    assert reach(curves, None) == {}


def test_cli_writes_curves_and_prints_the_table(slice_files, tmp_path):
    pool, test = slice_files
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", str(PATTERNS), str(pool), "--gold", str(pool), "--test", str(test),
                                      "--strategies", "rules", "--budget", "10", "--checkpoint", "5",
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "labelmodel" in result.output and "no ceiling" in result.output
    assert "Scored on gold DISEASE only" in " ".join(result.output.split())  # it says which labels were scored
    assert [p["checkpoint"] for p in json.loads((out / "curves.json").read_text())["strategies"]["rules"]["points"]] == [0, 5, 10]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_names_pool_texts_missing_from_gold(slice_files, tmp_path):
    pool, test = slice_files
    partial = tmp_path / "partial-gold.jsonl"
    partial.write_text("\n".join(pool.read_text(encoding="utf8").splitlines()[:10]) + "\n", encoding="utf8")
    result = CliRunner().invoke(app, ["simulate", str(PATTERNS), str(pool), "--gold", str(partial), "--test", str(test),
                                      "--output", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "30 text(s) are not in" in result.output and f"{pool}:11" in result.output
    assert "Traceback" not in result.output


def test_cli_refuses_an_unknown_strategy(slice_files, tmp_path):
    pool, test = slice_files
    result = CliRunner().invoke(app, ["simulate", str(PATTERNS), str(pool), "--gold", str(pool),
                                      "--strategies", "active,greedy"])
    assert result.exit_code == 2
    assert "greedy" in result.output


def test_a_pool_that_runs_dry_keeps_its_last_count(slice_files, tmp_path):
    pool, test = slice_files
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(pool.read_text(encoding="utf8").splitlines()[:2]) + "\n", encoding="utf8")
    result = simulate([PATTERNS], small, small, test=test, budget=400, checkpoint=200, strategies=["random"],
                      answer_with=lambda task: "ignore")
    curve = result["strategies"]["random"]
    assert curve["exhausted"] and curve["questions"] < 200
    assert [p["decisions"] for p in curve["points"]] == [0] + [curve["questions"]] * 2
    assert [p["checkpoint"] for p in curve["points"]] == [0, 200, 400]


def test_gold_labels_the_rules_do_not_cover_are_not_scored(slice_files, tmp_path):
    """A corpus annotating more types than the rules cover: the rules are scored on their own label."""
    pool, test = slice_files
    extra = tmp_path / "test-with-genes.jsonl"
    lines = []
    for line in test.read_text(encoding="utf8").splitlines():
        task = json.loads(line)
        words = [(m.start(), m.end()) for m in re.finditer(r"[A-Z]{2,}\d*", task["text"])]
        taken = [(s["start"], s["end"]) for s in task["spans"]]
        genes = [{"start": s, "end": e, "label": "GENE"} for s, e in words
                 if not any(a < e and s < b for a, b in taken)]
        lines.append(json.dumps({**task, "spans": task["spans"] + genes}))
    extra.write_text("\n".join(lines) + "\n", encoding="utf8")
    plain = simulate([PATTERNS], pool, pool, test=test, budget=5, checkpoint=5, strategies=["rules"])
    with_genes = simulate([PATTERNS], pool, pool, test=extra, budget=5, checkpoint=5, strategies=["rules"])
    assert with_genes["labels"] == ["DISEASE"]
    assert with_genes["strategies"]["rules"]["f"] == plain["strategies"]["rules"]["f"]
    both = simulate([PATTERNS], pool, pool, test=extra, budget=5, checkpoint=5, strategies=["rules"],
                    labels=["DISEASE", "GENE"])
    assert both["strategies"]["rules"]["recall"] < plain["strategies"]["rules"]["recall"]


def with_genes(source: Path, target: Path) -> Path:
    """``source``'s gold plus a GENE span on every upper-case word no DISEASE span covers."""
    lines = []
    for line in source.read_text(encoding="utf8").splitlines():
        task = json.loads(line)
        taken = [(s["start"], s["end"]) for s in task["spans"]]
        genes = [{"start": m.start(), "end": m.end(), "label": "GENE"} for m in re.finditer(r"[A-Z]{2,}\d*", task["text"])
                 if not any(a < m.end() and m.start() < b for a, b in taken)]
        lines.append(json.dumps({**task, "spans": task["spans"] + genes}))
    target.write_text("\n".join(lines) + "\n", encoding="utf8")
    return target


def test_the_ceiling_trains_only_on_the_scored_labels(slice_files, tmp_path, monkeypatch):
    """Issue 14: the ceiling is a model of the same task as the rules, not of every gold type;
    ``--label`` widens it. The training itself is replaced: only what it is given matters here."""
    import bootstrap.simulate as simulate_module

    pool, test = slice_files
    gold = with_genes(pool, tmp_path / "pool-with-genes.jsonl")
    given = []

    class Given(Exception):
        pass

    def train_ner(train, dev, output, *, labels, **options):
        given.append((labels, sorted({ent.label_ for doc in train + dev for ent in doc.ents})))
        raise Given

    monkeypatch.setattr(simulate_module, "train_ner", train_ner)
    with pytest.raises(Given):
        simulate([PATTERNS], pool, gold, test=test, budget=5, checkpoint=5, strategies=["gold"])
    result = CliRunner().invoke(app, ["simulate", str(PATTERNS), str(pool), "--gold", str(gold), "--test", str(test),
                                      "--strategies", "gold", "--label", "GENE", "--label", "DISEASE",
                                      "--output", str(tmp_path / "out")])
    assert isinstance(result.exception, Given), result.output
    assert given == [(["DISEASE"], ["DISEASE"]), (["DISEASE", "GENE"], ["DISEASE", "GENE"])]


def test_cli_runs_several_seeds_and_summarizes_them(slice_files, tmp_path):
    """``--seed`` repeated: each seed's curves in its own folder, and one summary whose means,
    ranges and lead are those of the seeds' own curves (``--training none``: no model, fast)."""
    pool, test = slice_files
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", str(PATTERNS), str(pool), "--gold", str(pool), "--test", str(test),
                                      "--strategies", "active,random,rules", "--budget", "20", "--checkpoint", "10",
                                      "--seed", "0", "--seed", "3", "--training", "none", "--output", str(out)])
    assert result.exit_code == 0, result.output
    runs = [json.loads((out / f"seed-{seed}" / "curves.json").read_text()) for seed in (0, 3)]
    assert [run["settings"]["seed"] for run in runs] == [0, 3] and not any(run["settings"]["train"] for run in runs)
    import spacy

    versions = runs[0]["settings"]["versions"]  # what a model's figures depend on
    assert versions["spacy"] == spacy.__version__ and versions["processor"] == processor() != ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 3] and summary["checkpoints"] == [0, 10, 20]
    for order in ("active", "random"):
        for i, point in enumerate(summary["orders"][order]):
            fs = [run["strategies"][order]["points"][i]["f"] for run in runs]
            assert point["f"]["mean"] == pytest.approx(sum(fs) / 2, abs=1e-4)
            assert (point["f"]["min"], point["f"]["max"]) == (pytest.approx(min(fs), abs=1e-4), pytest.approx(max(fs), abs=1e-4))
    lead = summary["lead"][-1]
    assert lead["mean"] == pytest.approx(summary["orders"]["active"][-1]["f"]["mean"]
                                         - summary["orders"]["random"][-1]["f"]["mean"], abs=1e-4)
    assert "active's lead over random" in result.output and "pool, seeds 0, 3" in result.output
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_runs_seeds_in_parallel_processes_as_it_does_one_after_the_other(slice_files, tmp_path):
    """``--jobs 2``: the same curves and summary as the seeds run in turn, from worker processes;
    a bad input there is the same one-line error, no traceback."""
    pool, test = slice_files
    common = ["simulate", str(PATTERNS), str(pool), "--gold", str(pool), "--test", str(test), "--strategies",
              "active,random", "--budget", "20", "--checkpoint", "10", "--seed", "0", "--seed", "3", "--training", "none"]
    for jobs in ("1", "2"):
        result = CliRunner().invoke(app, [*common, "--jobs", jobs, "--output", str(tmp_path / jobs)])
        assert result.exit_code == 0, result.output
    for seed in (0, 3):
        one, two = (json.loads((tmp_path / jobs / f"seed-{seed}" / "curves.json").read_text()) for jobs in ("1", "2"))
        for order in ("active", "random"):
            assert [p["f"] for p in one["strategies"][order]["points"]] == [p["f"] for p in two["strategies"][order]["points"]]
    summaries = [json.loads((tmp_path / jobs / "summary.json").read_text()) for jobs in ("1", "2")]
    assert summaries[0]["orders"] == summaries[1]["orders"] and summaries[1]["seeds"] == [0, 3]

    partial = tmp_path / "partial-gold.jsonl"
    partial.write_text("\n".join(pool.read_text(encoding="utf8").splitlines()[:10]) + "\n", encoding="utf8")
    common[4] = str(partial)  # (--gold)
    result = CliRunner().invoke(app, [*common, "--jobs", "2", "--output", str(tmp_path / "bad")])
    assert result.exit_code == 1, result.output
    assert "30 text(s) are not in" in result.output and "Traceback" not in result.output


def test_cli_refuses_an_unknown_training(slice_files, tmp_path):
    pool, test = slice_files
    result = CliRunner().invoke(app, ["simulate", str(PATTERNS), str(pool), "--gold", str(pool), "--training", "some"])
    assert result.exit_code == 2 and "'some'" in result.output


def test_a_summary_names_the_commit_of_every_curve_it_holds():
    """A strategy re-run on its own (the benchmark's ``--only``) was measured at another commit
    than the rest of its file: the summary names both."""
    from bootstrap.seeds import summarize

    path = Path(__file__).resolve().parents[1] / "benchmarks/results/first_model/annotation_efficiency/ncbi-seed{}.json"
    runs = [json.loads(Path(str(path).format(seed)).read_text()) for seed in (0, 1)]
    runs[0]["settings"].update(commit="aaaaaaa", rerun={"active": "bbbbbbb, handoff now"})
    runs[1]["settings"].update(commit="ccccccc", rerun={})
    assert summarize(runs, "NCBI-disease")["commits"] == ["bbbbbbb", "aaaaaaa", "ccccccc"]

"""Input and task hashes: stable across runs, 64-bit, and distinct on real texts."""

import json
import os
import subprocess
import sys

from bootstrap.hashing import TaskIndex, input_hash, task_hash

TEXTS = ["Acute heart failure.", "", "naïve 😀 text", "a" * 10_000]


def test_hashes_are_the_same_in_another_process():
    # Python's own hash() is salted per process; these must not be.
    code = (
        "import json, sys; from bootstrap.hashing import input_hash, task_hash; "
        "texts = json.load(sys.stdin); "
        "print(json.dumps([input_hash(t) for t in texts] + [task_hash(input_hash(texts[0]), 6, 19, 'DISEASE')]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(TEXTS), capture_output=True, text=True, env=env, check=True)
    assert json.loads(out.stdout) == [input_hash(t) for t in TEXTS] + [task_hash(input_hash(TEXTS[0]), 6, 19, "DISEASE")]


def test_hashes_are_signed_64_bit_json_integers():
    for value in [input_hash(t) for t in TEXTS] + [task_hash(input_hash(t), 0, 1, "X") for t in TEXTS]:
        assert isinstance(value, int) and -(2**63) <= value < 2**63
        assert json.loads(json.dumps(value)) == value
    # Both halves of the range are used: the hash is signed, not a truncated unsigned value.
    signs = {input_hash(str(i)) < 0 for i in range(64)}
    assert signs == {True, False}


def test_task_hash_changes_with_every_part_of_the_question():
    base = input_hash("Acute heart failure.")
    question = task_hash(base, 6, 19, "DISEASE")
    others = [
        task_hash(input_hash("Acute heart failure!"), 6, 19, "DISEASE"),
        task_hash(base, 0, 19, "DISEASE"),
        task_hash(base, 6, 11, "DISEASE"),
        task_hash(base, 6, 19, "ORGAN"),
        task_hash(base, 61, 9, "DISEASE"),  # "6|19" vs "61|9": the separator matters
    ]
    assert question == task_hash(base, 6, 19, "DISEASE")
    assert len({question, *others}) == 1 + len(others)


def test_no_collisions_on_the_real_corpora(shared_data):
    texts = set()
    for name in ["ncbi-disease", "wnut17"]:
        for split in ["train", "dev", "test"]:
            with (shared_data / name / f"{split}.jsonl").open(encoding="utf8") as file:
                texts.update(json.loads(line)["text"] for line in file)
    assert len(texts) > 5000
    assert len({input_hash(text) for text in texts}) == len(texts)


def test_a_tables_task_hashes_and_cell_lookup_match_its_questions_one_by_one(shared_data, tmp_path):
    import itertools
    from pathlib import Path

    import numpy as np

    from bootstrap.table import build_table

    with (shared_data / "wnut17" / "train.jsonl").open(encoding="utf8") as file:
        (tmp_path / "texts.jsonl").write_text("".join(itertools.islice(file, 600)), encoding="utf8")
    table = build_table([Path(__file__).resolve().parents[1] / "examples" / "social-media" / "patterns.jsonl"],
                        tmp_path / "texts.jsonl")
    assert len(set(table.question_class.tolist())) > 1 and table.n_questions > 100  # the label of each hash matters
    hashes = [task_hash(*table.question(i)) for i in range(table.n_questions)]
    assert table.task_hashes().tolist() == hashes
    assert table.task_hashes(chunk=7).tolist() == hashes  # a chunk at a time, the last one short
    index = TaskIndex(table.task_hashes())
    assert {h: index[h] for h in hashes} == {h: i for i, h in enumerate(hashes)}  # (a repeated text: the last)
    assert len(index) == table.n_questions
    assert all(index.hash_of(i) == h for i, h in enumerate(hashes))
    absent = next(h for h in range(10**6) if h not in set(hashes))
    assert index.get(absent) is None and absent not in index
    for not_a_hash in (2**70, -(2**70), "abc", None, 1.5e30):
        assert index.get(not_a_hash) is None
    lookup, k = table.question_at_cell(), table.cardinality
    for i in range(table.n_questions):
        assert lookup[int(table.question_row[i]) * k + int(table.question_class[i])] == i
    assert np.count_nonzero(lookup >= 0) == table.n_questions  # every other cell says "no question"

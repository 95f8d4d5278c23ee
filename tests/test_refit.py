"""The LabelModel's background refit: fit in a worker process, the same fit as in the thread."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bootstrap.aggregate import Aggregate
from bootstrap.config import HandoffPolicy, SessionConfig
from bootstrap.gold import load_gold
from bootstrap.workers import run_in_worker
from bootstrap.session import Session
from bootstrap.table import build_table

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "diseases"


def test_the_worker_fits_the_labelmodel_as_the_thread_does():
    table = build_table([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", lfs=EXAMPLE / "lfs.py")
    aggregate = Aggregate(table, method="LabelModel")
    assert aggregate.can_fit_label_model()
    balance = np.array([0.7, 0.3])
    here = aggregate.compute_fit(balance)
    there = aggregate.compute_fit(balance, run=run_in_worker)
    assert here.method == there.method == "LabelModel"
    np.testing.assert_allclose(there.prior_accuracy, here.prior_accuracy, rtol=1e-6)
    np.testing.assert_allclose(there.base_log_proba, here.base_log_proba, rtol=1e-6, atol=1e-9)
    assert not np.allclose(here.prior_accuracy, aggregate.fits["weighted vote"].prior_accuracy)  # (a real fit)


def doubled_unless_in_a_worker(value: int) -> int:
    """Kills the worker process that runs it; in the session's own process it answers."""
    if multiprocessing.parent_process() is not None:
        os._exit(1)
    return 2 * value


def test_a_worker_that_dies_leaves_the_work_to_the_thread_and_is_replaced():
    assert run_in_worker(doubled_unless_in_a_worker, 21) == 42  # the worker died: run here
    assert run_in_worker(os.getpid) != os.getpid()  # a new worker


def test_a_session_refits_in_the_background_and_answering_goes_on(tmp_path, answer_from_gold):
    session = Session.from_files([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl", db=tmp_path / "d.db",
                                 dataset="d", lfs=EXAMPLE / "lfs.py",
                                 config=SessionConfig(refit_every=20, handoff=HandoffPolicy(mode="never")))
    try:
        session.wait_for_refit()  # the start's fit, the LabelModel included, ran in the worker
        assert session.aggregate.label_model_later is None and "LabelModel" in session.aggregate.fits
        assert answer_from_gold(session, load_gold(EXAMPLE / "gold.jsonl"), 30) == 30
        session.wait_for_refit()
        assert session.aggregate.decisions_since_fit < 30  # refit after 20 decisions, applied
    finally:
        session.close()


def test_the_worker_ends_when_its_session_process_is_killed(tmp_path):
    script = tmp_path / "session.py"
    script.write_text("import os, time\nfrom bootstrap.workers import run_in_worker\n"
                      "if __name__ == '__main__':\n    print(run_in_worker(os.getpid), flush=True)\n    time.sleep(120)\n")
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(process.stdout.readline())
        assert worker != process.pid
        os.kill(worker, 0)  # alive
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError("the worker outlived its session's process")

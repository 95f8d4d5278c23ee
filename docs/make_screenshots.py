"""Make the README's pictures: the annotation page and the report, from the bundled example.

    .venv/bin/python docs/make_screenshots.py

Answers the example's questions from its gold file through a real ``Session`` (with the handoff
on, so models are trained and compared), serves the page with uvicorn on 127.0.0.1 and takes its
picture with Debian's Chromium through Playwright, then writes the report and takes its picture.
Writes ``docs/page.png``, ``docs/page-narrow.png`` (420 px wide, the whole page) and
``docs/report.png``; everything else goes to a temporary folder.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from bootstrap.gold import gold_answer, load_gold
from bootstrap.handoff import HandoffPolicy
from bootstrap.report import write_report
from bootstrap.server import create_app
from bootstrap.session import Session, SessionConfig

DOCS = Path(__file__).resolve().parent
EXAMPLE = DOCS.parent / "examples" / "diseases"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def answer_from_gold(session: Session, n: int) -> None:
    gold = load_gold(EXAMPLE / "gold.jsonl")
    for _ in range(n):
        task = session.next_question("alice")
        if task is None:
            return
        span = task["spans"][0]
        session.answer("alice", task["task_hash"], gold_answer(gold, task["input_hash"], span["start"], span["end"], task["label"]))
        session.wait_for_handoff()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy = HandoffPolicy(mode="auto", min_accepts=15, every=40, max_epochs=5, models_dir=f"{tmp}/models")
        files = ([EXAMPLE / "patterns.jsonl"], EXAMPLE / "texts.jsonl")
        session = Session.from_files(*files, db=f"{tmp}/bootstrap.db", dataset="diseases", lfs=EXAMPLE / "lfs.py",
                                     config=SessionConfig(handoff=policy, background_refit=False))
        answer_from_gold(session, 120)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(session), host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        report = Path(tmp) / "report.html"
        write_report(session.store, "diseases", *files, report, lfs=EXAMPLE / "lfs.py")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/?session=alice")
            page.wait_for_selector("mark")
            page.click("#suggest")
            page.wait_for_selector("#suggestions li")
            page.screenshot(path=str(DOCS / "page.png"))
            phone = browser.new_page(viewport={"width": 420, "height": 900})  # a narrow window or a phone
            phone.goto(f"http://127.0.0.1:{port}/?session=alice")
            phone.wait_for_selector("mark")
            phone.screenshot(path=str(DOCS / "page-narrow.png"), full_page=True)
            page = browser.new_page(viewport={"width": 1280, "height": 2000})
            page.goto(report.as_uri())
            page.screenshot(path=str(DOCS / "report.png"))
            browser.close()
        server.should_exit = True
        session.close()


if __name__ == "__main__":
    main()

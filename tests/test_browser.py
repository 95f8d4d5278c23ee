"""The annotation page in headless Chromium, used as a person uses it: with the keyboard.

Debian's ``/usr/bin/chromium``, driven by Playwright; Playwright never downloads a browser of
its own (``make browser`` installs the Debian package). Without it the test is skipped on a
developer's machine and fails in CI, where a missing browser is a broken set-up, not a pass.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing in CI: `make browser` installs Debian's chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (or `make browser`) to run the browser tests",
                allow_module_level=True)

import uvicorn  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from bootstrap.reading import start_session  # noqa: E402
from bootstrap.server import create_app  # noqa: E402
from bootstrap.config import HandoffPolicy  # noqa: E402
from bootstrap.session import Session, SessionConfig  # noqa: E402
from bootstrap.store import Store  # noqa: E402

DATASET = "browser"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
TEXTS = [
    "Women with breast cancer were followed for ten years.",
    "Type 2 diabetes doubles the risk of stroke in older adults.",
    f"Pasted from a web page: {SCRIPT} is no disease, nor is {IMG}, but breast cancer is.",
    "A cohort with diabetes and breast cancer was enrolled in 2019.",
    "Asthma in children was not linked to diabetes.",
]
PATTERNS = [
    {"label": "DISEASE", "pattern": "breast cancer"},
    {"label": "DISEASE", "pattern": [{"LOWER": {"IN": ["diabetes", "stroke", "asthma"]}}]},
    {"label": "DISEASE", "regex": r"<script>.*?</script>"},  # the HTML is the span of one question
    {"label": "DISEASE", "pattern": [{"LOWER": "cancer"}], "negative": True},
]


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "bootstrap.db"


class Recorder:
    """ASGI middleware that notes the method, path and status of every request: proof that a
    refused request did reach the server (a test of a refusal must not pass because nothing came)."""

    def __init__(self, app):
        self.app, self.seen = app, []

    async def __call__(self, scope, receive, send):
        async def noting(message):
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await (self.app(scope, receive, noting) if scope["type"] == "http" else self.app(scope, receive, send))


@pytest.fixture
def corpus() -> tuple[list[dict], list[str]]:
    """The rules and texts the server's session reads (a test may parametrize its own)."""
    return PATTERNS, TEXTS


@pytest.fixture
def session_config() -> SessionConfig:
    """The session's settings (a test may parametrize its own): no exploration, so the order is the ranking's."""
    return SessionConfig(background_refit=False, exploration=0.0)


@pytest.fixture
def server(write, db, corpus, session_config):
    """The app over a fresh session, served by uvicorn on 127.0.0.1 and a free port."""
    patterns, texts = corpus
    session = Session.from_files(
        [write("patterns.jsonl", patterns)], write("texts.jsonl", [{"text": text} for text in texts]),
        db=db, dataset=DATASET, config=session_config,
    )
    yield from served(session)


def served(session: Session):
    """Serve ``session``'s page on a free port of 127.0.0.1 until the generator is closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = Recorder(create_app(session))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield Served(f"http://127.0.0.1:{port}", app.seen)
    server.should_exit = True
    thread.join(timeout=10)
    session.close()


class Served(str):
    """The page's address, with every request the server answered (``seen``)."""

    def __new__(cls, url: str, seen: list):
        served = super().__new__(cls, url)
        served.seen = seen
        return served


@pytest.fixture
def page(server):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        # Playwright's own default: on a loaded CI machine a wait of 10 s once ran out before the page
        # had re-read the server after a refused answer (the test passes in well under a second here)
        page.set_default_timeout(30_000)
        page.dialogs = []  # any alert() would mean a text ran as code
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        yield page
        browser.close()


def shown_hash(page: Page) -> str:
    return page.get_attribute("#card", "data-task-hash")


def press(page: Page, key: str) -> str:
    """Press a key and wait until the page shows the question that follows it."""
    before = shown_hash(page)
    page.keyboard.press(key)
    page.wait_for_function(
        "before => document.body.dataset.state !== 'busy' && document.querySelector('#card').dataset.taskHash !== before",
        arg=before,
    )
    return shown_hash(page)


def stored(db: Path) -> list[tuple[str, str]]:
    with Store(db) as store:
        return [(str(a.task_hash), a.answer) for a in store.answers(DATASET)]


def current_task(page: Page, server: str, who: str = "alice") -> dict:
    """The question the API says is on this annotator's screen."""
    return page.request.get(f"{server}/api/next?session={who}").json()["task"]


def assert_shown_as_text(page: Page, task: dict) -> None:
    """The card shows the task's text verbatim, and its only elements are the page's own."""
    display = task["display"]
    assert page.text_content("#text mark") == display["span"] + task["label"]
    assert page.text_content("#text") == display["before"] + display["span"] + task["label"] + display["after"]
    tags = page.eval_on_selector_all("#text *", "nodes => nodes.map(n => n.tagName + '.' + n.className)")
    assert tags == ["MARK.span", "SPAN.span-label"]


def test_answer_with_the_keyboard_undo_change_reload_and_escaping(page, server, db):
    page.goto(f"{server}/?session=alice")
    page.wait_for_selector("body[data-state=ready]")
    assert page.text_content("#annotator") == "alice"
    seen_html = set()

    def shown(task: dict) -> dict:
        """Each text shown verbatim, the HTML ones included, nothing run; the HTML text's spans noted."""
        assert task["task_hash"] == shown_hash(page)
        assert_shown_as_text(page, task)
        if SCRIPT in task["text"]:
            seen_html.add(task["display"]["span"])
        return task

    first = shown(current_task(page, server))["task_hash"]
    second = press(page, "a")
    shown(current_task(page, server))
    third = press(page, "x")
    third_span = shown(current_task(page, server))["display"]["span"]
    fourth = press(page, " ")
    shown(current_task(page, server))
    assert len({first, second, third, fourth}) == 4
    assert stored(db) == [(first, "accept"), (second, "reject"), (third, "ignore")]

    assert press(page, "Backspace") == third  # the undone question is asked again
    assert page.text_content("#status") == f"Undid your ignore of “{third_span}” as DISEASE: it is the question again."
    assert stored(db) == [(first, "accept"), (second, "reject")]
    assert page.text_content("#answers") == "2"
    recent = page.locator("#recent li")
    assert recent.count() == 2 and recent.first.get_attribute("class") == "recent-item reject"

    # the side list changes an earlier decision in place
    page.locator("#recent li[data-answer-id] >> nth=1").locator("button[data-answer=ignore]").click()
    page.wait_for_selector("#recent li:nth-child(2).ignore")
    assert stored(db) == [(first, "ignore"), (second, "reject")]

    # a reload shows the question still open for alice, never an answered one
    page.reload()
    page.wait_for_selector("body[data-state=ready]")
    assert shown_hash(page) == third and third not in dict(stored(db))
    assert page.locator("#recent li").count() == 2

    # every question to the end (which occurrence of a string comes first is drawn at random:
    # the HTML text's questions may have come above)
    while page.get_attribute("body", "data-state") == "ready":
        shown(current_task(page, server))
        press(page, "a")
    assert SCRIPT in seen_html and "breast cancer" in seen_html  # the HTML as the span, and around one
    assert page.is_visible("#done") and current_task(page, server) is None
    assert page.locator(".action[data-answer]:disabled").count() == 3
    assert page.dialogs == [] and page.errors == []
    answered = dict(stored(db))
    assert len(answered) == int(page.text_content("#answers")) and answered[first] == "ignore"


def test_two_annotators_in_two_browser_pages_see_different_questions(page, server, db):
    other = page.context.browser.new_page()  # a separate browser session, as a second person
    page.goto(f"{server}/?session=alice")
    other.goto(f"{server}/?session=bob")
    page.wait_for_selector("body[data-state=ready]")
    other.wait_for_selector("body[data-state=ready]")
    assert shown_hash(page) != shown_hash(other)
    alice_answered, bob_answered = shown_hash(page), shown_hash(other)
    press(page, "a")
    press(other, "x")
    with Store(db) as store:
        assert {(str(a.task_hash), a.annotator, a.answer) for a in store.answers(DATASET)} == {
            (alice_answered, "alice", "accept"), (bob_answered, "bob", "reject"),
        }


def test_a_question_answered_in_another_tab_shows_the_conflict_and_moves_on(page, server, db):
    page.goto(f"{server}/?session=alice")
    page.wait_for_selector("body[data-state=ready]")
    shown = shown_hash(page)
    response = page.request.post(f"{server}/api/answer", data={"task_hash": shown, "answer": "reject", "session": "alice"})
    assert response.ok
    after = press(page, "a")  # the page still shows it: the server refuses, the page redraws
    assert "already answered" in page.text_content("#status")
    assert after != shown and after not in dict(stored(db))
    assert stored(db) == [(shown, "reject")]  # the second answer was not stored
    assert page.locator("#recent li").count() == 1


ATTACK = """<!doctype html><title>another site</title>
<iframe name="sink"></iframe>
<form id="form" method="post" action="{target}/api/undo" enctype="text/plain" target="sink">
  <input name='{{"session": "alice", "x": "' value='"}}'>
</form>
<script>
  const sink = document.querySelector("iframe");
  const submitted = new Promise((resolve) => sink.addEventListener("load", resolve, {{once: true}}));
  document.getElementById("form").submit();
  const tries = [
    submitted,
    fetch("{target}/api/undo", {{method: "POST", mode: "no-cors", body: ""}}),
    fetch("{target}/api/undo", {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                                body: JSON.stringify({{session: "alice"}})}}),
    fetch("{target}/api/undo", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                                body: JSON.stringify({{session: "alice"}})}}),  // preflighted, and refused
  ];
  Promise.allSettled(tries).then((results) => {{ window.done = results.map((r) => r.status); }});
</script>"""


@pytest.fixture
def other_site(server, tmp_path):
    """A page on another origin (localhost on another port) that tries to undo alice's answer."""
    import functools
    import http.server

    folder = tmp_path / "attacker"
    folder.mkdir()
    (folder / "index.html").write_text(ATTACK.format(target=server), encoding="utf8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_address[1]}/index.html"
    httpd.shutdown()


def test_a_page_on_another_origin_cannot_undo_an_answer(page, server, other_site, db):
    """Issue 15, 1: a form, a no-cors fetch and a JSON fetch from another site, none undoes."""
    page.goto(f"{server}/?session=alice")
    page.wait_for_selector("body[data-state=ready]")
    first = shown_hash(page)
    press(page, "a")
    assert stored(db) == [(first, "accept")]

    page.goto(other_site)
    page.wait_for_function("window.done !== undefined")
    undos = [status for method, path, status in server.seen if (method, path) == ("POST", "/api/undo")]
    assert len(undos) >= 3 and all(status in (403, 415) for status in undos), server.seen  # they came, and were refused
    assert stored(db) == [(first, "accept")]

    page.goto(f"{server}/?session=alice")  # the page's own undo still works
    page.wait_for_selector("body[data-state=ready]")
    assert press(page, "Backspace") == first
    assert stored(db) == []


# --- answering at speed, a narrow screen, boundary questions --------------------------------------

SLOW_ANSWERS = r"""
    // Every answer and undo takes 500 ms more to come back, so the keys below arrive while one is in flight.
    const realFetch = window.fetch;
    window.fetch = (url, options) => /\/api\/(answer|undo)/.test(String(url))
        ? new Promise((resolve) => setTimeout(resolve, 500)).then(() => realFetch(url, options))
        : realFetch(url, options);
"""


def settled(page: Page) -> None:
    """Wait until no request is in flight and no key is waiting."""
    page.wait_for_function("() => document.body.dataset.state !== 'busy' && (document.body.dataset.queued || '0') === '0'")


def test_keys_pressed_while_an_answer_is_in_flight_are_all_taken_in_order(page, server, db):
    page.add_init_script(SLOW_ANSWERS)
    page.goto(f"{server}/?session=alice")
    page.wait_for_selector("body[data-state=ready]")
    first = shown_hash(page)
    for _ in range(5):
        page.keyboard.press("x")
    assert page.get_attribute("body", "data-state") == "busy"
    assert page.is_visible("#queue") and "then x (reject)" in page.text_content("#queue")  # the waiting keys are shown
    settled(page)
    answers = stored(db)
    assert [answer for _, answer in answers] == ["reject"] * 5  # 5 presses, 5 answers: none dropped
    assert answers[0][0] == first and len({task for task, _ in answers}) == 5  # each on the question that followed
    assert page.text_content("#answers") == "5" and shown_hash(page) not in dict(answers)
    assert page.is_hidden("#queue") and page.text_content("#status") == ""
    # Beyond the queue's limit a key is refused, and said to be, not dropped without a word.
    for _ in range(13):
        page.keyboard.press("Backspace")
    settled(page)
    assert "Not taken, pressed while answers were saving: backspace (undo), backspace (undo)." in page.text_content("#status")
    assert stored(db) == []  # the 11 undos that were taken took all 5 answers back, one by one
    assert page.errors == []


@pytest.mark.parametrize("width", [420, 360])
def test_a_narrow_window_or_a_phone_shows_everything_without_sideways_scrolling(page, server, db, width):
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{server}/?session=alice")
    page.wait_for_selector("body[data-state=ready]")
    press(page, "a")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for selector in (".action.accept", ".action.reject", ".action.ignore", "#undo", "#remaining", "#answers", "#n-ignore",
                     "#recent li .recent-buttons"):
        box = page.locator(selector).first.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)
    page.locator("#undo").click()  # the undo button works there too, and says what it undid
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Undid your accept of')")
    assert stored(db) == []


LONG_NAME = "autosomal dominant polycystic kidney disease with very early onset in childhood"


@pytest.mark.parametrize("corpus", [([{"label": "DISEASE", "pattern": LONG_NAME}], [f"Families with {LONG_NAME}."])])
def test_recent_decisions_show_the_whole_span(page, server, corpus):
    """A long span in the side list wraps on a narrow screen; nothing of it is cut off."""
    page.set_viewport_size({"width": 420, "height": 800})
    page.goto(f"{server}/?session=alice")
    page.wait_for_selector("body[data-state=ready]")
    page.keyboard.press("a")
    page.wait_for_selector("#recent li")
    text = page.locator("#recent .recent-text")
    assert text.text_content() == LONG_NAME
    assert text.evaluate("node => node.scrollWidth <= node.clientWidth && getComputedStyle(node).textOverflow !== 'ellipsis'")


BOUNDARY_PATTERNS = [
    {"label": "DISEASE", "pattern": "dystrophy", "id": "dystrophy"},
    {"label": "DISEASE", "pattern": "Duchenne muscular dystrophy", "id": "duchenne"},
    {"label": "DISEASE", "pattern": "asthma", "id": "asthma"},
]
BOUNDARY_TEXTS = ["Boys with Duchenne muscular dystrophy (DMD) lose ambulation early.", "Children with asthma were followed."]


@pytest.mark.parametrize("corpus", [(BOUNDARY_PATTERNS, BOUNDARY_TEXTS)])
def test_a_boundary_question_says_what_accept_means_and_shows_the_other_span(page, server, db, corpus):
    page.goto(f"{server}/?session=alice")
    page.wait_for_selector("body[data-state=ready]")
    seen = {}
    while page.get_attribute("body", "data-state") == "ready":
        span = current_task(page, server)["display"]["span"]
        votes = page.locator("#votes tbody tr")
        seen[span] = {
            "boundary": page.is_visible("#boundary") and page.text_content("#boundary"),
            "votes": [(votes.nth(i).locator("td.lf").text_content(), votes.nth(i).locator("td.lf").get_attribute("title"),
                       votes.nth(i).locator(".chip").text_content()) for i in range(votes.count())],
        }
        press(page, "a")
    assert set(seen) == {"dystrophy", "Duchenne muscular dystrophy", "asthma"}
    assert seen["asthma"]["boundary"] is False  # no other candidate overlaps it: no boundary note
    inner, outer = seen["dystrophy"], seen["Duchenne muscular dystrophy"]
    assert "Accept means exactly “dystrophy” is a DISEASE, not more and not less." in inner["boundary"]
    assert "a longer span: “Duchenne muscular dystrophy”" in inner["boundary"]
    assert "a shorter span inside this one: “dystrophy”" in outer["boundary"]
    # A boundary vote in words, the column's id in the tooltip only.
    assert ("duchenne", "duchenne#boundary (boundary)", "matched a longer span: “Duchenne muscular dystrophy”") in inner["votes"]
    assert ("dystrophy", "dystrophy (rule)", "says DISEASE") in inner["votes"]
    assert ("dystrophy", "dystrophy#boundary (boundary)", "matched a shorter span inside this one: “dystrophy”") in outer["votes"]
    assert not any("other boundaries" in chip or "#boundary" in who for v in seen.values() for who, _, chip in v["votes"])


def test_an_answer_the_database_refused_is_said_on_the_page_and_the_question_stays(page, server, db):
    """Issue 15, 6: the API's 503 (tests/test_storage_failures.py makes a real one) is shown in the
    page's words, the question stays on screen, and answering it works once the disk has room."""
    detail = "the answer was not saved: disk full (bootstrap.db); try again once it is fixed"
    page.goto(f"{server}/?session=alice")
    page.wait_for_selector("body[data-state=ready]")
    shown = shown_hash(page)
    page.route("**/api/answer", lambda route: route.fulfill(status=503, json={"detail": detail}))
    page.keyboard.press("a")
    page.wait_for_function("() => document.body.dataset.state === 'ready' && document.querySelector('#status').textContent !== ''")
    assert page.text_content("#status") == detail and "error" in page.get_attribute("#status", "class")
    assert shown_hash(page) == shown and stored(db) == []
    page.unroute("**/api/answer")
    assert press(page, "a") != shown
    assert stored(db) == [(shown, "accept")] and page.errors == []


@pytest.mark.parametrize("session_config", [SessionConfig(background_refit=False, exploration=1.0)])
def test_the_page_shows_the_labels_estimated_quality_and_whether_to_go_on(page, server, db):
    """Precision and recall with intervals from exploration answers, and the stopping hint, as the API computes them."""
    page.goto(server)
    page.wait_for_selector("#card[data-task-hash]")
    assert page.text_content("#est-precision") == "–"
    assert "none yet" in page.text_content("#est-basis")
    for _ in range(4):  # every question is an exploration one here
        press(page, "a")
    progress = page.request.get(f"{server}/api/progress").json()
    quality, hint = progress["estimates"]["quality"], progress["estimates"]["hint"]
    assert quality["n"] == 4 and quality["accepted"] >= 1
    page.wait_for_function("() => document.querySelector('#est-basis').textContent.includes('last 4 exploration')")
    shown = page.text_content("#est-recall")
    low, high = quality["recall"][1], quality["recall"][2]
    assert shown == f"{quality['recall'][0]:.2f} [{low:.2f}–{high:.2f}]"
    assert 0 <= low < high <= 1
    assert f"of {hint['candidates']} candidate labels" in page.text_content("#stopping-hint")
    assert page.is_hidden("#model-questions")  # no model in the loop: nothing said of its questions

    def with_a_model(route):  # as a session with a model in the loop answers
        response = route.fetch()
        body = response.json()
        body["progress"]["estimates"]["model_questions"] = {
            "share": 0.1, "model_accepted": 2, "model_answered": 13, "rules_accepted": 40, "rules_answered": 100}
        route.fulfill(response=response, json=body)

    page.route("**/api/answer", with_a_model)
    press(page, "x")
    page.wait_for_selector("#model-questions:not([hidden])")
    assert page.text_content("#model-questions") == ("The model's own spans get 10% of the ranked questions: "
                                                     "theirs 15% of 13 accepted, the rules' 40% of 100 accepted.")
    assert not page.errors


@pytest.fixture
def streamed(shared_data, tmp_path, db):
    """A page over a session that started on 100 of 600 NCBI-disease texts and reads the rest."""
    with (shared_data / "ncbi-disease" / "train.jsonl").open(encoding="utf8") as file:
        (tmp_path / "texts.jsonl").write_text("".join(file.readline() for _ in range(600)), encoding="utf8")
    session = start_session([Path(__file__).resolve().parents[1] / "examples" / "diseases" / "patterns.jsonl"],
                            tmp_path / "texts.jsonl", db=str(db), dataset=DATASET, first_texts=100,
                            config=SessionConfig(background_refit=False, handoff=HandoffPolicy(mode="never")))
    yield from served(session)


def test_the_page_shows_how_much_of_the_corpus_is_read_and_its_questions_join(streamed):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{streamed}/?annotator=alice")
        page.wait_for_selector("#card[data-task-hash]:not([data-task-hash=''])")
        line = page.locator("#corpus")
        assert line.inner_text().startswith("Reading the corpus: ") and "from the first 100 " in line.inner_text()
        first_total = int(page.inner_text("#remaining").split(" of ")[1].replace(",", ""))
        expect(line).to_have_text(re.compile(r"^Corpus read: [\d,]+ texts\.$"), timeout=300_000)
        read = line.inner_text().removeprefix("Corpus read: ").removesuffix(" texts.")
        assert int(read.replace(",", "")) > 500  # (a few of the 600 lines repeat a text)
        expect(page.locator("#remaining")).not_to_have_text(re.compile(rf" of {first_total}$"), timeout=10_000)
        assert int(page.inner_text("#remaining").split(" of ")[1]) > first_total  # the rest's questions joined
        browser.close()

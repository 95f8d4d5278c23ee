"""The annotation page and its JSON API, over one :class:`~bootstrap.session.Session`.

The page (``GET /``, files in ``bootstrap/static/``) is static HTML, CSS and vanilla JS with no
build step; everything it shows comes from the API below, and scripts and tests drive the same
API. The annotator is named by ``?session=NAME`` (in the query for ``GET``, in the body for
``POST``; ``"default"`` when absent); the page passes on the ``?session=`` of its own URL, so
``/?session=alice`` and ``/?session=bob`` are two annotators on one dataset who never get the
same open question.

Endpoints (all JSON; a ``task`` is the session's question, see below):

==========================  ==================================================================
``GET  /``                  the page
``GET  /api/openapi.json``  this API as an OpenAPI schema
``GET  /api/next``          ``?session=NAME`` → ``{"task": task | null}``: this annotator's
                            current question (the same one until it is answered), ``null``
                            when nothing is left (always 200, so clients parse one shape)
``POST /api/answer``        ``{"task_hash", "answer": "accept"|"reject"|"ignore", "session"}``
                            → ``{"answer_id", "task", "progress", "recent"}``: the answer is
                            committed before the response, which carries the *next* question,
                            so the page needs one round trip per decision
``POST /api/undo``          ``{"session"}`` (or no body) → ``{"undone_task_hash": str | null,
                            "task", "progress", "recent"}``: the annotator's last answer is
                            undone and its question is ``task``, asked again
``POST /api/change``        ``{"answer_id", "answer", "session"}`` → ``{"changed", "progress",
                            "recent"}``: change one of the annotator's earlier answers
``GET  /api/recent``        ``?session=NAME[&n=10]`` → ``{"recent": [...]}``, newest first:
                            ``answer_id, task_hash, text, span_text, label, answer, created``
``GET  /api/progress``      the session's progress (answers so far, per answer and per label,
                            remaining questions, how close the handoff to a trained model is)
                            and the ``dataset`` name
``GET  /api/stats``         ``{"lfs": [...]}``: per rule / labeling function its coverage,
                            conflicts and precision (estimate and interval from decisions)
``GET  /api/suggestions``   ``{"suggestions": [...]}``: pattern lines learned back from the
                            decisions (as ``bootstrap suggest-patterns``), each with how many
                            accepts and rejects it would have matched
==========================  ==================================================================

A task is ``{"task_hash", "input_hash", "text", "label", "spans": [one span, token_end exclusive
as in spaCy], "probability",
"exploration", "score", "votes": [{"lf", "kind", "vote", "precision"}], "overlaps": [{"text",
"start", "end", "relation": "longer"|"shorter"|"crossing", "voters": [{"lf", "kind"}]}], "meta"}``
(``overlaps``: the text's other candidates overlapping the span, for a boundary question) plus
``"display": {"before", "span", "after"}``, the text cut at the span, so the page never
computes offsets (Python counts code points, JavaScript UTF-16 units: they differ on emoji).

**64-bit hashes are JSON strings** in every response (``"task_hash": "-5012…"``): a JavaScript
number holds integers exactly only up to 2^53, and a rounded hash names another task. Requests
accept a hash as a JSON number or a string of digits.

**Errors** are 4xx with ``{"detail": "a sentence"}``, never a 500 for bad input: an unknown
task or answer id is 404, answering a question twice is 409, a malformed body or query (not
JSON, a missing field, an answer other than accept/reject/ignore, a hash outside 64 bits) is
422 with the offending field named. A database that refuses the write (disk full, read-only)
is 503, ``"the answer was not saved: disk full (...)"``: nothing of the request is stored, and
the page shows the message with the question still on screen.

**Cross-site requests are refused.** Every ``POST`` must be ``Content-Type: application/json``
(415 otherwise) and must not come from another origin: a request whose ``Sec-Fetch-Site`` is not
``same-origin`` (or ``none``, typed by a person), or whose ``Origin`` is not this page's host, is
403. A web page elsewhere can send a form or a ``text/plain`` fetch without asking first, but not
a JSON one, so no other site can answer, undo or change for the annotator whose page is open.

Handlers are plain functions, which uvicorn runs in a thread pool; the session serialises its
own calls with its lock, so two annotators answering at once never interleave their updates.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from .session import DEFAULT_ANNOTATOR, AlreadyAnswered, Session, UnknownAnswer, UnknownTask
from .store import StorageError

STATIC = Path(__file__).parent / "static"
NAME_LENGTH = 200  # the store's annotator column
HASH_KEYS = frozenset({"task_hash", "input_hash", "undone_task_hash"})
INT64 = {"ge": -(2**63), "le": 2**63 - 1}  # hashes are signed 64-bit; a bigger number overflows SQL
RECENT = 10
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The page loads only its own files: even a text that escaped escaping could not run a script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_FETCHES = frozenset({"same-origin", "none"})  # Sec-Fetch-Site of the page itself, or of a typed URL

AnnotatorName = Annotated[str, Field(min_length=1, max_length=NAME_LENGTH)]
AnswerValue = Literal["accept", "reject", "ignore"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored

    session: AnnotatorName = DEFAULT_ANNOTATOR


class AnswerBody(_Body):
    task_hash: Annotated[int, Field(**INT64)]
    answer: AnswerValue


class UndoBody(_Body):
    pass


class ChangeBody(_Body):
    answer_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    answer: AnswerValue


AnnotatorQuery = Annotated[str, Query(alias="session", min_length=1, max_length=NAME_LENGTH)]


def create_app(session: Session) -> FastAPI:
    """The page and the API over ``session``; one app serves every annotator of its dataset."""
    app = FastAPI(
        title=f"bootstrap: {session.dataset}",
        description="Binary accept / reject / ignore decisions on spans proposed by rules.",
        # The schema, but no Swagger page: it loads its scripts from a CDN, which the page's
        # content policy (and a machine without internet) refuses.
        docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
    )

    def state(annotator: str, task: dict | None, progress: dict | None = None) -> dict[str, Any]:
        """What the page redraws after every action: its next question, progress, recent list."""
        progress = session.progress() if progress is None else progress
        return {"task": task, "progress": progress, "recent": session.recent(annotator, RECENT)}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        refused = cross_site_refusal(request)
        response = refused if refused is not None else await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_errors(error.errors())}, status_code=422)

    @app.exception_handler(UnknownTask)
    async def unknown_task(request: Request, error: UnknownTask) -> JSONResponse:
        return JSONResponse({"detail": message(error, "no such question in this dataset")}, status_code=404)

    @app.exception_handler(UnknownAnswer)
    async def unknown_answer(request: Request, error: UnknownAnswer) -> JSONResponse:
        return JSONResponse({"detail": message(error, "no such answer")}, status_code=404)

    @app.exception_handler(AlreadyAnswered)
    async def already_answered(request: Request, error: AlreadyAnswered) -> JSONResponse:
        return JSONResponse({"detail": message(error, "this question is already answered")}, status_code=409)

    @app.exception_handler(StorageError)
    async def storage_failed(request: Request, error: StorageError) -> JSONResponse:
        """The disk is full or the database read-only: nothing of the request was stored (its
        transaction rolled back), and the page shows this and keeps the question on screen."""
        done = "the answer was not saved" if request.url.path == "/api/answer" else "nothing was changed"
        where = error.problems[0].path
        return JSONResponse({"detail": f"{done}: {error.reason} ({where}); try again once it is fixed"}, status_code=503)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/next")
    def next_question(session_name: AnnotatorQuery = DEFAULT_ANNOTATOR):
        return to_json({"task": with_display(session.next_question(session_name))})

    @app.post("/api/answer")
    def answer(body: AnswerBody):
        result = session.answer(body.session, body.task_hash, body.answer)
        task = with_display(session.next_question(body.session))
        return to_json({"answer_id": result["answer_id"], **state(body.session, task, result.get("progress"))})

    @app.post("/api/undo")
    def undo(body: UndoBody | None = None):
        annotator = (body or UndoBody()).session
        undone = session.undo(annotator)  # its question is the annotator's next one
        task = undone if undone is not None else session.next_question(annotator)
        return to_json({"undone_task_hash": undone and undone["task_hash"], **state(annotator, with_display(task))})

    @app.post("/api/change")
    def change(body: ChangeBody):
        changed = session.change(body.session, body.answer_id, body.answer)
        return to_json({"changed": changed, "progress": session.progress(), "recent": session.recent(body.session, RECENT)})

    @app.get("/api/recent")
    def recent(
        session_name: AnnotatorQuery = DEFAULT_ANNOTATOR,
        n: Annotated[int, Query(ge=1, le=100)] = RECENT,
    ):
        return to_json({"recent": session.recent(session_name, n)})

    @app.get("/api/progress")
    def progress():
        return to_json({**session.progress(), "dataset": session.dataset})

    @app.get("/api/suggestions")
    def suggestions():
        return {"suggestions": session.suggestions()}

    @app.get("/api/stats")
    def stats():
        return to_json({"lfs": session.lf_stats()})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve(session: Session, host: str = "127.0.0.1", port: int = 8080, *, log_level: str = "info") -> None:
    """Run the page with uvicorn until interrupted (uvicorn prints its address at ``info``; one
    line per request would drown it, so the access log is off). Only this machine can reach the
    page unless ``host`` says otherwise (``0.0.0.0`` for every interface): it has no login."""
    import uvicorn
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    app = create_app(session)
    if host in LOOPBACK:  # a web page elsewhere cannot read this one through a rebound DNS name
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"])
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def cross_site_refusal(request: Request) -> JSONResponse | None:
    """A 403 or 415 for a state-changing request another site's page could have sent, else None.

    Forms and ``text/plain`` or ``multipart`` fetches reach a server from any page without a
    CORS preflight; a JSON body does not, and browsers name the requesting site in
    ``Sec-Fetch-Site`` and ``Origin``. Scripts and ``curl`` send neither header and are served.
    """
    if request.method in SAFE_METHODS:
        return None
    fetch_site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if fetch_site is not None and fetch_site not in SAME_ORIGIN_FETCHES:
        return JSONResponse({"detail": f"refused: a {fetch_site} request may not change answers"}, status_code=403)
    if origin is not None and _host_of(origin) != request.headers.get("host", "").lower():
        return JSONResponse({"detail": f"refused: a request from {origin} may not change answers here"}, status_code=403)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        return JSONResponse({"detail": "send the body as Content-Type: application/json"}, status_code=415)
    return None


def _host_of(origin: str) -> str:
    """``host[:port]`` of an ``Origin`` header (``null`` and garbage give ``""``, which never matches)."""
    scheme, _, rest = origin.lower().partition("://")
    return rest.rstrip("/") if scheme in ("http", "https") else ""


def with_display(task: dict | None) -> dict | None:
    """The task plus its text cut at the span, for the page (see the module docstring)."""
    if task is None:
        return None
    span = task["spans"][0]
    text = task["text"]
    display = {"before": text[: span["start"]], "span": text[span["start"]: span["end"]], "after": text[span["end"]:]}
    return {**task, "display": display}


def to_json(value: Any, key: str | None = None) -> Any:
    """Plain JSON: hashes as strings, numpy numbers as Python ones, NaN and infinity as null
    (JSON has neither, and Starlette refuses to send them: a 500 for a rule never decided on)."""
    if isinstance(value, dict):
        return {k: to_json(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return to_json(value.tolist(), key)
    if isinstance(value, bool) or value is None:
        return value
    if key in HASH_KEYS and isinstance(value, int):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_dict"):
        return to_json(value.to_dict(), key)
    return value


def describe_errors(errors: list[dict[str, Any]]) -> str:
    """Pydantic's errors as one sentence a person can act on: ``body.answer: Input should be ...``."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def message(error: Exception, default: str) -> str:
    text = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)
    return text or default

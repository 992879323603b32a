"""HTTP interface: /ask, /api/sources, /api/timeline, /health, /admin/reindex. Routers are thin; the work is in
QAService, and what it raises becomes a status in one place (STATUS_OF)."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import re
import sys
import threading
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from qa import __version__
from qa.config import Settings, load_settings, url_host
from qa.embed import ModelLoadError
from qa.index_rows import BuildBusyError, BuildError, IndexWriteError, StoreUnavailableError
from qa.links import event_url, original_link, source_view_url
from qa.middleware import BodyLimit, HeadAsGet, SafetyHeaders
from qa.request_body import fields_are_utf8, media_type
from qa.schemas import (AskRequest, AskResponse, EarlierTurnIn, ErrorOut, QueryInt, SourceOut, SourceSummary,
                        TimelineOut, answer_out)
from qa.service import QAService, ServiceUnavailable
from qa.timeline import TimelineFilterError, UnknownArticle
from qa.validation import InvalidQuestion, shortened, too_many_turns, visible_pattern


ERRORS = {
    400: {"model": ErrorOut, "description": "The request body is not valid JSON"},
    413: {"model": ErrorOut, "description": "The request body is too large"},
    422: {"model": ErrorOut, "description": "The request is well-formed but its values are not acceptable"},
    503: {"model": ErrorOut, "description": "No index is loaded yet"},
    504: {"model": ErrorOut, "description": "Answering took longer than the request timeout"},
}


def get_service(request: Request) -> QAService:
    return request.app.state.service


ServiceDep = Annotated[QAService, Depends(get_service)]


async def answer_within_timeout(service: QAService, question: str, top_k: int | None,
                                history: list[EarlierTurnIn] | None = None) -> AskResponse:
    turns = [turn.model_dump() for turn in history or []]
    try:
        answer = await asyncio.wait_for(run_in_threadpool(service.ask, question, top_k, turns),
                                        timeout=service.settings.request_timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"no answer within {service.settings.request_timeout_s:g} s; try again") from None
    return answer_out(answer)


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


router = APIRouter()


@router.post("/ask", response_model=AskResponse, responses=ERRORS, tags=["answers"])
async def ask_post(body: AskRequest, service: ServiceDep) -> AskResponse:
    """Answer a question with a verbatim span from the articles and its citations, or abstain."""
    return await answer_within_timeout(service, body.question, body.top_k, body.history)


@router.get("/ask", response_model=AskResponse, responses=ERRORS, tags=["answers"])
async def ask_get(request: Request, service: ServiceDep, q: Annotated[str, Query(description="The question")],
                  top_k: Annotated[QueryInt | None, Query(description="Passages cited at most, as in the POST body (unset: QA_TOP_K_DEFAULT)")] = None) -> AskResponse:
    """The same as POST /ask, for links and quick tries."""
    # Only the question's bytes: a link's tracking parameter with odd bytes does not stop an answer. Starlette would
    # put U+FFFD in place of them, and the question asked would not be the one sent.
    if not fields_are_utf8(request.scope.get("query_string", b""), only=b"q"):
        raise ApiError(422, "the query string is not UTF-8 text once percent-decoded: percent-encode the "
                            "question's UTF-8 bytes (é is %C3%A9)")
    return await answer_within_timeout(service, q, top_k)


def _summary(doc) -> dict:
    return {"doc_id": doc.doc_id, "title": doc.title, "url": source_view_url(doc.doc_id),
            "source_url": original_link(doc.meta), "meta": doc.meta}


@router.get("/api/sources", response_model=list[SourceSummary], responses={503: ERRORS[503]}, tags=["sources"])
def list_sources(service: ServiceDep) -> list[dict]:
    """Every indexed article."""
    return [_summary(d) for d in service.documents()]


@router.get("/api/sources/{doc_id:path}", response_model=SourceOut,
            responses={404: {"model": ErrorOut, "description": "No such article"}, 503: ERRORS[503]}, tags=["sources"])
def get_source(doc_id: str, service: ServiceDep) -> dict:
    """One article's cleaned text (the text every offset points into) and metadata."""
    doc = service.document(doc_id)
    if doc is None:
        raise ApiError(404, f"no article with id {shortened(doc_id)!r}")
    return {**_summary(doc), "text": doc.text}


def _date_out(date) -> dict:
    from qa.timeline_view import date_label

    return {**dataclasses.asdict(date), "label": date_label(date)}


# Documented in the schema but checked by parse_filter, whose message says what a year must look like.
YEAR = {"pattern": "^[0-9]{0,4}$"}


@router.get("/api/timeline", response_model=TimelineOut,
            responses={404: {"model": ErrorOut, "description": "No such article"}, 422: ERRORS[422], 503: ERRORS[503]},
            tags=["sources"])
def get_timeline(service: ServiceDep,
                 article: Annotated[str | None, Query(description="Only this article's events (its doc_id)")] = None,
                 from_year: Annotated[str | None, Query(alias="from", json_schema_extra=YEAR,
                                                        description="Events that reach this year or later")] = None,
                 to_year: Annotated[str | None, Query(alias="to", json_schema_extra=YEAR,
                                                      description="Events that start this year or earlier; not before "
                                                                  "`from` (422)")] = None,
                 ) -> dict:
    """Every sentence of the articles that states a date, earliest first, with the date normalised."""
    return timeline_out(service.select_timeline(article, from_year, to_year))


def timeline_out(selection) -> dict:
    """The timeline as /api/timeline gives it."""
    chosen = selection.chosen
    return {"generation": selection.generation, "total": selection.total, "count": len(selection.events),
            "filters": {"article": chosen.doc_id, "from": chosen.first_year, "to": chosen.last_year},
            "events": [{"id": e.id, "doc_id": e.doc_id, "title": e.title, "sentence": e.sentence,
                        "sentence_start": e.sentence_start, "sentence_end": e.sentence_end, "url": event_url(e),
                        "date": _date_out(e.date), "other_dates": [_date_out(d) for d in e.other_dates]}
                       for e in selection.events]}


@router.get("/health", tags=["service"], responses={503: {"description": "No index can be used: status "
                                                                       "'unavailable' and `detail` (why); also "
                                                                       "`generation` when the loaded index's "
                                                                       "database cannot be used"}})
def health(service: ServiceDep) -> JSONResponse:
    """Whether an index is loaded, and which. 503 while none is, so a load balancer sends no questions here."""
    report = service.health()
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)


@router.post("/admin/reindex", tags=["service"],
             responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
                        422: {"model": ErrorOut},
                        503: {"model": ErrorOut, "description": "The embedding model cannot be loaded, or the "
                                                                "index database cannot be reached"}})
async def admin_reindex(service: ServiceDep, authorization: Annotated[str | None, Header()] = None,
                        x_admin_token: Annotated[str | None, Header()] = None) -> dict:
    """Rebuild the index from the corpus folder and swap it in. Needs the admin token (QA_ADMIN_TOKEN)."""
    expected = service.settings.admin_token
    if not expected:
        raise ApiError(404, "reindexing over HTTP is off: set QA_ADMIN_TOKEN to turn it on")
    if not admin_token_matches(expected, authorization, x_admin_token):
        raise ApiError(401, "missing or wrong admin token")
    return (await run_in_threadpool(service.reindex)).as_dict()


def admin_token_matches(expected: str, authorization: str | None, x_admin_token: str | None) -> bool:
    """Whether a request carries the admin token, as `Authorization: Bearer …` (any case) or `X-Admin-Token`."""
    scheme, _, credentials = (authorization or "").partition(" ")
    given = x_admin_token or (credentials.strip() if scheme.lower() == "bearer" else "")
    # Latin-1, as the server decoded the header: a token sent with other characters cannot match an ASCII one.
    return hmac.compare_digest(given.encode("latin-1"), expected.encode())


STATUS_OF = {InvalidQuestion: 422, ServiceUnavailable: 503, TimelineFilterError: 422, UnknownArticle: 404,
             BuildError: 422, BuildBusyError: 409, IndexWriteError: 500, StoreUnavailableError: 503,
             ModelLoadError: 503}

JSON_BODY_HINT = 'send a JSON object such as {"question": "…"} with the header Content-Type: application/json'
# FastAPI's words when a JSON body cannot be parsed at all (not UTF-8, or nested beyond the parser's depth): said
# here as the other bad bodies are.
UNPARSABLE_BODY = "There was an error parsing the body"


MESSAGES_SHOWN = 10  # of the things wrong with one body, the first this many are named


def _validation_message(exc: RequestValidationError, history_limit: int, content_type: str = "") -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    whole_body = [e for e in errors if tuple(e.get("loc", ())) == ("body",)]
    if whole_body and whole_body[0].get("type") == "missing":
        return 422, f"request body is empty: {JSON_BODY_HINT}"
    sent_as = media_type(content_type)
    if whole_body and sent_as and sent_as != "application/json" and not sent_as.endswith("+json"):
        # curl -d without a Content-Type header sends a form, whatever the body holds.
        return 422, (f"request body was sent as {sent_as[:100]}, which is not read as JSON: send the header "
                     "Content-Type: application/json")
    if whole_body:  # a list or a string
        return 422, f"request body is not a JSON object: {JSON_BODY_HINT}"
    too_many = [e for e in errors if tuple(e.get("loc", ())) == ("body", "history") and e.get("type") == "too_long"]
    if too_many:
        return 422, too_many_turns(too_many[0]["ctx"]["actual_length"], history_limit)
    parts = []
    for error in errors[:MESSAGES_SHOWN]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        message = error.get("msg", "invalid value").removeprefix("Value error, ")  # a validator's own words
        if tuple(error.get("loc", ())) == ("query", "q") and error.get("type") == "missing":
            message += " (the question goes in q: /ask?q=Kapan+Putin+tiba+di+Pyongyang%3F)"
        parts.append(f"{where or 'body'}: {message}")
    if len(errors) > MESSAGES_SHOWN:
        parts.append(f"and {len(errors) - MESSAGES_SHOWN} more")
    return 422, "; ".join(parts)


def _unparsable_why(body: bytes) -> str:
    """Why a body FastAPI could not parse as JSON was refused: not UTF-8, a number too long to read, or (what is
    left, as the parser says no more) nesting beyond its depth."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    if re.search(r"\d{%d}" % (sys.get_int_max_str_digits() + 1), text):
        return f"it holds a number of more than {sys.get_int_max_str_digits()} digits"
    return "it is nested too deeply"


def _document_limits(app: FastAPI, settings: Settings) -> None:
    """Put the question and top_k limits, which are settings, into the OpenAPI schema.

    QAService.validate enforces them (with messages that say what is wrong); the schema states the same
    limits so that a client, or a fuzzer, knows what will be accepted.
    """
    # Not empty: some character that QAService.validate does not count as invisible.
    question = {"minLength": 1, "maxLength": settings.max_question_chars, "pattern": visible_pattern()}
    top_k = {"minimum": 1, "maximum": settings.top_k_max, "default": settings.top_k_default}
    build_schema = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build_schema()
            schemas = schema.get("components", {}).get("schemas", {})
            body = schemas.get("AskRequest", {}).get("properties", {})
            body.get("question", {}).update(question)
            body.get("top_k", {}).update(top_k)
            history = body.get("history", {})  # a list or null: the limit belongs to the list
            for branch in history.get("anyOf", [history]):
                if branch.get("type") == "array":
                    branch["maxItems"] = settings.max_history_turns
            turn = schemas.get("EarlierTurnIn", {}).get("properties", {})
            turn.get("question", {}).update(question)
            for parameter in schema.get("paths", {}).get("/ask", {}).get("get", {}).get("parameters", []):
                limits = {"q": question, "top_k": top_k}.get(parameter.get("name"))
                if limits:
                    parameter.setdefault("schema", {}).update(limits)
        return app.openapi_schema

    app.openapi = openapi


def create_app(settings: Settings | None = None, service: QAService | None = None) -> FastAPI:
    settings = settings or load_settings()
    service = service or QAService(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await run_in_threadpool(service.warm)  # load index and model before the first request, not during it
        stop = threading.Event()
        service.follow_index(stop)
        yield
        stop.set()

    # No /redoc: its script fetches a logo from the internet at run time; /docs needs nothing from elsewhere.
    app = FastAPIOffline(title="News QA", version=__version__, lifespan=lifespan, favicon_url="/static/favicon.svg",
                         redoc_url=None,
                         description="Extractive answers, quoted verbatim from a folder of news articles, with "
                                     "citations.")
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    def said_as(status: int):
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)
        return handler

    # What the service raises, as the API says it (the most specific class wins: UnknownArticle is a 404).
    for raised, status in STATUS_OF.items():
        app.add_exception_handler(raised, said_as(status))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404 and "text/html" in request.headers.get("accept", ""):
            return request.app.state.page_not_found(request)  # a browser on a wrong link gets a page (qa.web)
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; /ask has a GET and a POST route.
            methods = {method for method in ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
                       if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
                              for route in request.app.router.routes)}
            if "GET" in methods:
                methods.add("HEAD")  # answered as GET without its body (qa.middleware.HeadAsGet)
            headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))} if methods else exc.headers
            exc = StarletteHTTPException(405, exc.detail, headers)
        if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:
            try:
                body = await request.body()
            except ClientDisconnect:  # nobody is left to tell
                return Response(status_code=400)
            why = _unparsable_why(body)
            exc = StarletteHTTPException(400, f"request body is not valid JSON: {why}")
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc, settings.max_history_turns, request.headers.get("content-type", ""))
        return JSONResponse({"detail": message}, status_code=status)

    app.include_router(router)
    _document_limits(app, settings)
    from qa import web

    web.mount(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if is_loopback(settings.host):
        # Served to this machine only: a request must be addressed to it by name, so that a web page elsewhere
        # cannot rebind its own domain to 127.0.0.1 and read the service (DNS rebinding).
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=[*LOOPBACK_NAMES, url_host(settings.host)],
                           www_redirect=False)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SafetyHeaders)
    return app


LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

"""Web pages (the chat, the source viewer, the list of sources and the timeline), rendered with Jinja2 from web/.

The pages read only through QAService: offsets from the answer and its citations cut the texts, never a search
for the answer string. What a page draws is built by qa.chat_view (the chat and the source viewer) and
qa.timeline_view (the timeline); this module holds the routes, the templates and the error pages.
"""

from __future__ import annotations

import asyncio

import jinja2
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from qa.answer import NO_WORDS
from qa.chat_view import HISTORY_TURNS, Turn, converse, recent, sent_turns, shown_name, source_view
from qa.config import WEB_DIR, web_pages_missing
from qa.followup import EarlierTurn, earlier_turn
from qa.language import has_words
from qa.links import source_view_url
from qa.records import Document
from qa.request_body import FORM, fields_are_utf8, media_type
from qa.service import QAService, ServiceUnavailable
from qa.timeline import TimelineFilterError, UnknownArticle
from qa.timeline_view import timeline_page
from qa.validation import InvalidQuestion, shortened


# A tour of what a reply can be: an English and an Indonesian question answered, an answer given with low
# confidence, and a question the articles do not answer. (Two earlier examples were answered wrong, which is no
# way to show a newcomer what the chat does; README, "Known limits", keeps one of them.)
EXAMPLES = (
    "When did Putin arrive in Pyongyang?",
    "Siapa Duta Besar Rusia untuk Korea Utara?",
    "Berapa lama pembicaraan empat mata antara Putin dan Kim?",
    "Who won the 2022 FIFA World Cup?",
)
# No inline script or style anywhere, so the pages can forbid both; nothing is loaded from elsewhere.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def as_sentence(message: str) -> str:
    """An error message as the pages show it: capitalised, with a full stop."""
    return f"{message[:1].upper()}{message[1:]}."


def _valid(service: QAService, question: str) -> bool:
    try:
        service.validate(question, 1)
    except InvalidQuestion:
        return False
    return True


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(WEB_DIR / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["shown_name"] = shown_name
    return Jinja2Templates(env=env)


def mount(app: FastAPI) -> None:
    """Add the page routes and static files to the app."""
    if missing := web_pages_missing():
        raise RuntimeError(missing)
    templates = _templates()
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")

    def page(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status,
                                          headers={"Content-Security-Policy": CSP})

    def page_not_found(request: Request) -> HTMLResponse:
        return page(request, "error.html", {"title": "No such page",
                                            "message": f"There is no page at {request.url.path}."}, 404)

    app.state.page_not_found = page_not_found  # for a browser that follows a wrong link (qa.api, http_error)

    def unavailable(request: Request, exc: Exception) -> HTMLResponse:
        return page(request, "error.html", {"title": "Not ready yet", "message": str(exc)}, 503)

    def history_turns(request: Request) -> int:
        """Earlier turns a question is asked with: the page's own bound, or the service's if that is lower."""
        return min(HISTORY_TURNS, request.app.state.service.settings.max_history_turns)

    def chat(request: Request, turns: list[Turn], error: str | None = None, question: str = "",
             status: int = 200, earlier: list[EarlierTurn] | None = None) -> HTMLResponse:
        bound = history_turns(request)
        earlier = [earlier_turn(t.answer) for t in turns] if earlier is None else earlier
        cut = request.app.state.service.settings.max_history_answer_chars  # all of an answer a follow-up reads
        carried = recent([EarlierTurn(t.question, t.answer[:cut] if t.answer else t.answer) for t in earlier], bound)
        return page(request, "chat.html", {"turns": turns, "error": error, "question": question, "history": carried,
                                           "not_shown": len(earlier) > len(turns),
                                           "next_turn": min(len(carried), bound) + 1, "history_turns": bound,
                                           "examples": EXAMPLES}, status)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """The icon a browser asks for by itself on a page without one of its own (the JSON of /health)."""
        return FileResponse(WEB_DIR / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def chat_page(request: Request) -> HTMLResponse:
        return chat(request, [])

    def form_too_large(request: Request, limit: str) -> HTMLResponse:
        most = request.app.state.service.settings.max_question_chars
        return chat(request, [], f"The question is too long to send (the form is over {limit}); a question has at "
                                 f"most {most} characters.", "", 413)

    app.state.form_too_large = form_too_large  # for qa.middleware.BodyLimit, which refuses a body before any route

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_post(request: Request) -> HTMLResponse:
        """The no-JavaScript path: the earlier questions ride along as hidden fields and are answered again."""
        service: QAService = request.app.state.service
        sent_as = media_type(request.headers.get("content-type"))
        if sent_as not in ("", FORM):  # a program's JSON, or a multipart form (whose odd bytes become Latin-1)
            return chat(request, [], f"The chat page reads its own form ({FORM}), not {sent_as[:100]}: to ask from "
                                     "a program, send JSON to /ask.", "", 415)
        try:
            if not fields_are_utf8(await request.body()):
                return chat(request, [], "The form is not UTF-8 text: the browser or program that sent it must "
                                         "percent-encode UTF-8 bytes.", "", 400)
            form = await request.form()
        except ClientDisconnect:  # nobody is left to show a page to
            return HTMLResponse(status_code=400)
        except StarletteHTTPException as exc:  # a form Starlette will not parse (over 1,000 fields)
            return chat(request, [], as_sentence(f"the form could not be read ({exc.detail.rstrip('.')})"), "", 400)
        question = form.get("example") or form.get("question") or ""
        bound = history_turns(request)
        earlier = recent([turn for turn in sent_turns(form.getlist("history"), form.getlist("history_answer"),
                                                      service.settings.max_history_answer_chars)
                          if _valid(service, turn.question)], bound)
        error = None
        try:
            service.validate(question, 1)
        except InvalidQuestion as exc:
            error = as_sentence(str(exc)) if question.strip() else "Please type a question first."
        else:
            if not has_words(question):  # "?!" or "🙂": the API abstains; a person is told why
                error = NO_WORDS
        asked = min(len(earlier), bound) + (0 if error else 1)
        try:
            turns, said = await asyncio.wait_for(
                run_in_threadpool(converse, service, earlier, None if error else question, bound),
                timeout=service.settings.request_timeout_s * max(1, asked))
        except ServiceUnavailable as exc:
            return unavailable(request, exc)
        except InvalidQuestion as exc:  # the questions were checked one by one; this is a limit of the whole
            return chat(request, [], as_sentence(str(exc)), question, 422, earlier)
        except asyncio.TimeoutError:
            return chat(request, [], "No answer in time; please try again.", question, 504, earlier)
        return chat(request, turns, error, question if error else "", 422 if error else 200, said)

    @app.get("/timeline", response_class=HTMLResponse, include_in_schema=False)
    def timeline(request: Request) -> HTMLResponse:
        params = request.query_params
        service = request.app.state.service
        entered = {name: params.get(name, "") for name in ("article", "from", "to")}
        try:
            view = timeline_page(service, entered["article"], entered["from"], entered["to"])
        except ServiceUnavailable as exc:
            return unavailable(request, exc)
        except TimelineFilterError as exc:
            # The whole timeline under the form as it was filled in, and what to change in it. 404 for an unknown
            # article, as the API says it; any other bad filter is a 422.
            try:
                view = timeline_page(service, None, None, None)
            except ServiceUnavailable as unavailable_now:
                return unavailable(request, unavailable_now)
            return page(request, "timeline.html", {"view": view, "entered": entered, "problem": as_sentence(str(exc)),
                                                   "invalid": exc.fields},
                        404 if isinstance(exc, UnknownArticle) else 422)
        return page(request, "timeline.html", {"view": view, "entered": entered, "problem": None, "invalid": ()})

    @app.get("/sources", response_class=HTMLResponse, include_in_schema=False)
    def sources_page(request: Request) -> HTMLResponse:
        try:
            documents = request.app.state.service.documents()
        except ServiceUnavailable as exc:
            return unavailable(request, exc)
        rows = [{"href": source_view_url(d.doc_id), "title": d.title, "meta": d.meta} for d in documents]
        return page(request, "sources.html", {"documents": rows})

    @app.get("/sources/{doc_id:path}", response_class=HTMLResponse, include_in_schema=False)
    def source_page(doc_id: str, request: Request) -> Response:
        if not doc_id:  # "/sources/": the list, as "/timeline/" is the timeline
            return RedirectResponse(request.url_for("sources_page"), status_code=307)
        try:
            doc: Document | None = request.app.state.service.document(doc_id)
        except ServiceUnavailable as exc:
            return unavailable(request, exc)
        if doc is None:
            return page(request, "error.html", {"title": "No such article",
                                                "message": f"There is no article with the id “{shortened(doc_id)}”: it may have been "
                                                           "removed or renamed since the link was made. Every "
                                                           "article served now is listed under All sources."}, 404)
        view = source_view(doc, request.query_params)
        return page(request, "source.html", {"doc": doc, "parts": view.parts, "paragraphs": view.paragraphs,
                                             "meta": view.meta, "lost": view.lost, "original": view.original,
                                             "original_text": view.original_text})

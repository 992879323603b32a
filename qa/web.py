"""Web pages (the chat, the source viewer, the list of sources and the timeline), rendered with Jinja2 from web/.

The pages read only through QAService: offsets from the answer and its citations cut the texts, never a search
for the answer string.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from dataclasses import dataclass

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from qa.answer import NO_WORDS, has_words
from qa.confidence import confidence_note, confidence_words
from qa.config import WEB_DIR, web_pages_missing
from qa.followup import EarlierTurn, earlier_turn, in_turn
from qa.links import event_url, original_link, passage_check, source_view_url
from qa.records import Answer, Citation, Document
from qa.request_body import FORM, fields_are_utf8, media_type
from qa.service import QAService, ServiceUnavailable
from qa.timeline import TimelineEvent, TimelineFilter, TimelineFilterError, UnknownArticle
from qa.timeline_view import AxisLayout, date_in_words, date_label, layout_axis, machine_date
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
# A no-JS conversation carries its earlier questions in hidden fields and asks them again: keep that bounded,
# and well inside the request body limit even for questions that grow sixfold when form-encoded.
HISTORY_TURNS = 5
HISTORY_CHARS = 4000  # questions and answers a chat form carries: at most ~36 kB URL-encoded
EXCERPT_CHARS = 240
# Front-matter keys a reader of the article has no use for: the address is shown as a link of its own, and the
# source id is the corpus's key for matching question files to articles.
HIDDEN_META = {"source_url", "source_id"}
CONTEXT_CHARS = 110

# No inline script or style anywhere, so the pages can forbid both; nothing is loaded from elsewhere.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


@dataclass(frozen=True)
class Parts:
    """A text cut around a span and an answer inside it: before + head + answer + tail + after == text."""

    before: str
    head: str
    answer: str
    tail: str
    after: str


def split_highlight(text: str, start: int | None, end: int | None,
                    answer_start: int | None = None, answer_end: int | None = None) -> Parts | None:
    """None unless 0 <= start < end <= len(text); the answer is left out unless it lies inside the span."""
    if start is None or end is None or not 0 <= start < end <= len(text):
        return None
    if answer_start is None or answer_end is None or not start <= answer_start < answer_end <= end:
        answer_start = answer_end = end
    return Parts(text[:start], text[start:answer_start], text[answer_start:answer_end], text[answer_end:end],
                 text[end:])


@dataclass(frozen=True)
class Paragraph:
    """One paragraph of an article as the source page draws it: its text, and its share of the highlight."""

    text: str
    parts: Parts | None  # the paragraph cut around its share of the passage; None when the passage misses it
    cited: bool  # the passage starts here: where the link's #cited lands


PARAGRAPH_BREAK = re.compile(r"\n{2,}")


def paragraphs_of(text: str, highlight: Parts | None) -> list[Paragraph]:
    """The text's paragraphs (split at blank lines, which a screen reader then announces as breaks), each with the
    share of the highlight that falls inside it; a passage over several paragraphs is marked in each."""
    if highlight is None:
        start = answer_start = answer_end = end = -1
    else:
        start = len(highlight.before)
        answer_start = start + len(highlight.head)
        answer_end = answer_start + len(highlight.answer)
        end = answer_end + len(highlight.tail)
    bounds, at = [], 0
    for gap in PARAGRAPH_BREAK.finditer(text):
        bounds.append((at, gap.start()))
        at = gap.end()
    bounds.append((at, len(text)))
    paragraphs, cited = [], False
    for first, last in bounds:
        shared = (max(start, first), min(end, last))
        if shared[0] >= shared[1]:
            paragraphs.append(Paragraph(text[first:last], None, False))
            continue
        answer = (max(answer_start, first) - first, min(answer_end, last) - first)
        parts = split_highlight(text[first:last], shared[0] - first, shared[1] - first,
                                *(answer if answer[0] < answer[1] else (None, None)))
        paragraphs.append(Paragraph(text[first:last], parts, not cited))
        cited = True
    return paragraphs


def date_words(normalized: dict | None) -> tuple[str, str | None] | None:
    """(readable date, machine value for <time datetime> or None); None when the answer is not a date. Mirrored in
    web/static/app.js."""
    if not normalized or not normalized.get("value"):
        return None
    kind, value = normalized.get("type"), str(normalized["value"])
    if kind == "date":
        precision = {3: "day", 2: "month"}.get(len(value.split("-")), "year")
    elif kind in ("date_range", "decade"):
        precision = "range" if kind == "date_range" else "decade"
    else:
        return None  # a number: the answer already says it
    try:
        words = date_in_words(precision, value, normalized.get("qualifier"))
    except (ValueError, IndexError):
        return value, None
    return words, value if kind == "date" else None


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a passage, cut at a word. Mirrored in web/static/app.js."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[:cut if cut > limit // 2 else limit].rstrip(",;:") + "…"


@dataclass
class Source:
    number: int
    title: str
    href: str
    excerpt: str


@dataclass
class CitedPassage:
    href: str
    before: str  # the passage around the answer, cut to about CONTEXT_CHARS on each side
    answer: str
    after: str


@dataclass
class ArticleSources:
    """One article's citations of an answer: one chip that opens to each of its passages."""

    number: int
    title: str
    passages: list[CitedPassage]


def around_answer(citation: Citation, context: int = CONTEXT_CHARS) -> CitedPassage:
    """The cited passage cut to the answer and some words either side. Mirrored in web/static/app.js."""
    text = citation.passage
    if citation.answer_start is None or citation.answer_end is None:
        return CitedPassage(citation.url, excerpt(text), "", "")
    a, b = citation.answer_start - citation.start, citation.answer_end - citation.start
    if not 0 <= a < b <= len(text):
        return CitedPassage(citation.url, excerpt(text), "", "")
    before, after = text[:a], text[b:]
    if len(before) > context:
        cut = before.find(" ", len(before) - context)
        before = "…" + before[cut + 1 if cut >= 0 else len(before) - context:]
    if len(after) > context:
        cut = after.rfind(" ", 0, context)
        after = after[:cut if cut > 0 else context] + "…"
    return CitedPassage(citation.url, *(re.sub(r"\s+", " ", part) for part in (before, text[a:b], after)))


def group_by_article(citations: list[Citation]) -> list[ArticleSources]:
    """Citations grouped by article, articles in the order of their best passage, passages in citation order.
    Mirrored in web/static/app.js."""
    groups: dict[str, ArticleSources] = {}
    for citation in citations:
        if citation.doc_id not in groups:
            groups[citation.doc_id] = ArticleSources(len(groups) + 1, citation.title, [])
        groups[citation.doc_id].passages.append(around_answer(citation))
    return list(groups.values())


@dataclass
class Turn:
    question: str
    answer: Answer
    confidence: tuple[str, str]  # (words, css level)
    when: tuple[str, str | None] | None  # the normalised date, in words and for <time datetime>
    sources: list[Source]  # an abstention's closest passages
    articles: list[ArticleSources]  # an answer's citations, by article
    sentence: Parts | None = None  # the answer's sentence cut around the answer
    caution: str | None = None  # a warning under an unsure answer


def apart(citations: list[Citation]) -> list[Citation]:
    """Citations without one that overlaps an earlier one of its article: passages overlap by a sentence or two,
    and two excerpts of nearly the same text say nothing more (app.js lists them alike)."""
    kept: list[Citation] = []
    for citation in citations:
        if not any(k.doc_id == citation.doc_id and k.start < citation.end and citation.start < k.end for k in kept):
            kept.append(citation)
    return kept


def turn_view(answer: Answer) -> Turn:
    turn = Turn(answer.question, answer, confidence_words(answer.confidence), date_words(answer.normalized),
                [Source(i, c.title, c.url, excerpt(c.passage))
                 for i, c in enumerate(apart(answer.citations), 1)] if answer.abstained else [],
                [] if answer.abstained else group_by_article(answer.citations))
    if not answer.abstained:
        turn.caution = confidence_note(answer.confidence)
    if not answer.abstained and answer.citations and answer.sentence and answer.sentence_start is not None:
        # Cut from the answer itself, not from the article looked up again: a rebuild in between may have moved it.
        first, origin = answer.citations[0], answer.sentence_start
        turn.sentence = split_highlight(answer.sentence, 0, len(answer.sentence),
                                        None if first.answer_start is None else first.answer_start - origin,
                                        None if first.answer_end is None else first.answer_end - origin)
    return turn


@dataclass
class EventView:
    id: str
    label: str  # the date the event is placed by, in words
    datetime: str | None
    also: str  # the other dates the sentence states, in words ("" for none)
    parts: list[tuple[str, bool]]  # the sentence in pieces, True for a date it states: every date is marked
    title: str
    href: str  # the sentence in the source viewer, its first date highlighted


def event_view(event: TimelineEvent) -> EventView:
    parts, at = [], event.sentence_start
    for date in (event.date, *event.other_dates):  # in reading order, none overlapping (qa.dates.find_dates)
        parts += [(event.document_text(at, date.start), False), (event.document_text(date.start, date.end), True)]
        at = date.end
    parts.append((event.document_text(at, event.sentence_end), False))
    label = date_label(event.date)
    also = " · ".join(dict.fromkeys(w for w in map(date_label, event.other_dates) if w != label))
    return EventView(event.id, label, machine_date(event.date), also, [p for p in parts if p[0]], event.title,
                     event_url(event))


@dataclass
class TimelinePage:
    events: list[EventView]
    axis: AxisLayout | None
    total: int  # events before filtering
    chosen: TimelineFilter
    articles: list[tuple[str, str]]  # (doc_id, title) for the article filter


def timeline_page(service: QAService, doc_id: str | None, first_year: str | None, last_year: str | None) -> TimelinePage:
    """The timeline, filtered; TimelineFilterError when a filter is not acceptable."""
    selection = service.select_timeline(doc_id, first_year, last_year)
    return TimelinePage([event_view(e) for e in selection.events], layout_axis(selection.events), selection.total,
                        selection.chosen, [(d.doc_id, d.title) for d in selection.documents])


def converse(service: QAService, earlier: list[EarlierTurn], question: str | None,
             shown: int) -> tuple[list[Turn], list[EarlierTurn]]:
    """The no-JavaScript chat: the last `shown` earlier turns drawn again and the new question answered, each
    asked with the `shown` turns before it as the page recorded them, so an earlier turn gets the answer it got
    then (answering it again with fewer turns before it could change it). Returns the turns to draw and the
    whole conversation as it now stands."""
    start = max(0, len(earlier) - shown)
    asked = [turn.question for turn in earlier[start:]] + ([question] if question is not None else [])
    answers = list(in_turn(lambda q, history: service.ask(q, history=history), asked, shown, earlier[:start]))
    return [turn_view(a) for a in answers], list(earlier[:start]) + [earlier_turn(a) for a in answers]


def recent(earlier: list[EarlierTurn], turns: int = HISTORY_TURNS) -> list[EarlierTurn]:
    """The conversation's turns the page carries: the latest `turns` to draw again and as many before them that
    they were asked with, within HISTORY_CHARS (a form's body is bounded)."""
    kept, total = [], 0
    for turn in reversed(earlier[-2 * turns:] if turns > 0 else []):
        total += len(turn.question) + len(turn.answer or "")
        if total > HISTORY_CHARS:
            break
        kept.append(turn)
    return kept[::-1]


def sent_turns(questions: list[str], answers: list[str], answer_chars: int) -> list[EarlierTurn]:
    """The earlier turns a chat form carries, as hidden fields: each question with the answer it got ("" where it
    abstained; a page from before answers rode along has none), cut to what a follow-up reads of it."""
    return [EarlierTurn(question, (answers[n] if n < len(answers) else "")[:answer_chars] or None)
            for n, question in enumerate(questions)]


def as_sentence(message: str) -> str:
    """An error message as the pages show it: capitalised, with a full stop."""
    return f"{message[:1].upper()}{message[1:]}."


def _valid(service: QAService, question: str) -> bool:
    try:
        service.validate(question, 1)
    except InvalidQuestion:
        return False
    return True


def _int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    # Twelve digits are more than any article's length; a longer number is no offset (nor worth converting).
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None


def shown_name(name: str) -> str:
    """A file name with its invisible format characters spelt out: a right-to-left override in a name would
    otherwise show "report\u202etxt.gpj" as "reportjpg.txt"."""
    return "".join(f"<U+{ord(c):04X}>" if unicodedata.category(c) == "Cf" else c for c in name)


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
    def source_page(doc_id: str, request: Request) -> HTMLResponse:
        try:
            doc: Document | None = request.app.state.service.document(doc_id)
        except ServiceUnavailable as exc:
            return unavailable(request, exc)
        if doc is None:
            return page(request, "error.html", {"title": "No such article",
                                                "message": f"There is no article with the id “{shortened(doc_id)}”: it may have been "
                                                           "removed or renamed since the link was made. Every "
                                                           "article served now is listed under All sources."}, 404)
        start, end = _int_param(request, "start"), _int_param(request, "end")
        parts = split_highlight(doc.text, start, end, _int_param(request, "astart"), _int_param(request, "aend"))
        meta = [(k.replace("_", " ").capitalize(), v) for k, v in doc.meta.items() if k not in HIDDEN_META]
        asked = request.query_params
        check = asked.get("check")
        if parts is not None and check and passage_check(doc.text[start:end]) != check:
            parts = None  # the article changed since the link was made: those characters now hold other words
        # A link that names characters this version of the article does not have (a rebuild changed it), or a range
        # that is no range (the link was cut or edited): said, not silently dropped or highlighted in the wrong place.
        asked_range = "start" in asked or "end" in asked
        lost = ("malformed" if asked_range and (start is None or end is None or start >= end) else
                "passage" if asked_range and parts is None else
                "answer" if parts and not parts.answer and ("astart" in asked or "aend" in asked) else None)
        return page(request, "source.html", {"doc": doc, "parts": parts, "paragraphs": paragraphs_of(doc.text, parts),
                                             "meta": meta, "lost": lost,
                                             "original": original_link(doc.meta),
                                             "original_text": doc.meta.get("source_url")})

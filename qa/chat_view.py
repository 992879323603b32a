"""The chat and the source viewer as the pages draw them: an answer made into a turn (its confidence and date in
words, its sentence cut around the answer, its citations grouped by article), an article cut into paragraphs around
a linked passage, and the no-JavaScript conversation's turns.

Offsets from the answer and its citations cut the texts, never a search for the answer string. Nothing here
reads a request or renders a template: qa.web does that.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from qa.confidence import confidence_note, confidence_words
from qa.followup import EarlierTurn, earlier_turn, in_turn
from qa.links import original_link, passage_check
from qa.records import Answer, Citation, Document
from qa.service import QAService
from qa.timeline_view import date_in_words


# A no-JS conversation carries its earlier questions in hidden fields and asks them again: keep that bounded,
# and well inside the request body limit even for questions that grow sixfold when form-encoded.
HISTORY_TURNS = 5
HISTORY_CHARS = 4000  # questions and answers a chat form carries: at most ~36 kB URL-encoded
EXCERPT_CHARS = 240
# Front-matter keys a reader of the article has no use for: the address is shown as a link of its own, and the
# source id is the corpus's key for matching question files to articles.
HIDDEN_META = {"source_url", "source_id"}
CONTEXT_CHARS = 110


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


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name, "")
    # Twelve digits are more than any article's length; a longer number is no offset (nor worth converting).
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None


@dataclass(frozen=True)
class SourceView:
    """An article as the source page draws it for a link's query parameters."""

    parts: Parts | None  # the text cut around the linked passage and answer; None when nothing is highlighted
    paragraphs: list[Paragraph]
    meta: list[tuple[str, object]]  # (label, value) of the front matter a reader has use for
    lost: str | None  # why a link's highlight is not drawn: "malformed", "passage", "answer", or None
    original: str | None  # the article's own address, when it is one to link to (qa.links.original_link)
    original_text: object  # the address as the front matter spells it, shown when it is no link


def source_view(doc: Document, params: Mapping[str, str]) -> SourceView:
    """The source page of `doc` for a link's query parameters (start, end, astart, aend, check)."""
    start, end = _int_param(params, "start"), _int_param(params, "end")
    parts = split_highlight(doc.text, start, end, _int_param(params, "astart"), _int_param(params, "aend"))
    meta = [(k.replace("_", " ").capitalize(), v) for k, v in doc.meta.items() if k not in HIDDEN_META]
    check = params.get("check")
    if parts is not None and check and passage_check(doc.text[start:end]) != check:
        parts = None  # the article changed since the link was made: those characters now hold other words
    # A link that names characters this version of the article does not have (a rebuild changed it), or a range
    # that is no range (the link was cut or edited): said, not silently dropped or highlighted in the wrong place.
    asked_range = "start" in params or "end" in params
    lost = ("malformed" if asked_range and (start is None or end is None or start >= end) else
            "passage" if asked_range and parts is None else
            "answer" if parts and not parts.answer and ("astart" in params or "aend" in params) else None)
    return SourceView(parts, paragraphs_of(doc.text, parts), meta, lost, original_link(doc.meta),
                      doc.meta.get("source_url"))


def shown_name(name: str) -> str:
    """A file name with its invisible format characters spelt out: a right-to-left override in a name would
    otherwise show "report\u202etxt.gpj" as "reportjpg.txt"."""
    return "".join(f"<U+{ord(c):04X}>" if unicodedata.category(c) == "Cf" else c for c in name)

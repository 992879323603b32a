"""What the HTTP interface reads and writes: the request and response models of /ask, /api/sources and
/api/timeline (pydantic), apart from the app so that `qa ask --json` writes the same JSON without loading the web
framework."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

from qa.config import HISTORY_TURNS_CAP
from qa.records import Answer


def _integral_number(value: object) -> object:
    """JSON Schema counts 5.0 as an integer; strings and booleans stay wrong types."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[StrictInt, BeforeValidator(_integral_number)]


def _digits_only(value: object) -> object:
    """A query string's number as written in a link, in digits ("5", or "5.0", which the schema's integer
    allows; "-1" too, to be told the range): Python would read "1_2" as 12, " 5" and "+5" as 5, "٥" as 5."""
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]+(\.0+)?", value):
        raise ValueError("must be a whole number written in digits, such as 5")
    return value


QueryInt = Annotated[int, BeforeValidator(_digits_only)]


class EarlierTurnIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: StrictStr = Field(description="An earlier question of the conversation")
    answer: StrictStr | None = Field(default=None, description="The answer it got; null where it abstained")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: StrictStr = Field(description="The question, in English or Indonesian", examples=["When did Putin arrive in Pyongyang?"])
    # Left out: the service's QA_TOP_K_DEFAULT (the schema says which); an explicit null is refused like any non-integer.
    top_k: JsonInt = Field(default=None, description="Passages cited at most: the reader reads the most promising of the first 3 retrieved; the answer cites those of the first 20 (or top_k, if more) that quote its words near the question, a refusal the first top_k retrieved (unset: QA_TOP_K_DEFAULT)")
    history: list[EarlierTurnIn] | None = Field(  # null: no earlier turns, as an empty list
        default_factory=list, max_length=HISTORY_TURNS_CAP, description="The conversation's earlier turns, oldest first, for a follow-up question "
                                          "(\"Who did he meet there?\"); the server keeps no conversation")


OFFSETS = "into the article's cleaned text, as GET /api/sources/{doc_id} gives it (text[start:end])"


class CitationOut(BaseModel):
    doc_id: str = Field(description="The article: its path in the corpus folder")
    title: str
    url: str = Field(description="The passage in the source viewer, highlighted; it carries a fingerprint of the "
                                 "passage, so a link opened after a rebuild changed the article says so")
    source_url: str | None = Field(description="Where the article was published, when its file says")
    passage: str = Field(description="The passage's text")
    start: int = Field(description=f"Offsets of the passage {OFFSETS}")
    end: int
    answer_start: int | None = Field(description=f"Offsets of the answer's words in this passage {OFFSETS}; null "
                                                 "in a refusal's citations")
    answer_end: int | None
    score: float = Field(description="Retrieval's score of the passage (higher is closer to the question)")


class AskResponse(BaseModel):
    question: str = Field(description="The question as asked")
    answer: str | None = Field(description="A span quoted verbatim from the first citation's article; null when "
                                           "the service abstains")
    abstained: bool = Field(description="True when the articles do not hold an answer the reader is confident of")
    confidence: float = Field(description="The reader's estimate, 0-1, that the answer is right, calibrated on "
                                          "held-out Wikipedia-style questions (on news it runs low); the "
                                          "service abstains below its threshold")
    normalized: dict | None = Field(description="A date or number answer read as a value: {\"type\": \"date\", "
                                                "\"value\": \"2024-03-28\"}, \"decade\" or \"date_range\" (each with "
                                                "\"qualifier\" where the article says early, mid or late), or "
                                                "{\"type\": \"number\", \"value\": 1000, \"unit\": "
                                                "\"orang\"} (with \"currency\" for money); else null")
    sentence: str | None = Field(description="The sentence around the answer")
    sentence_start: int | None = Field(description=f"Offsets of the sentence {OFFSETS}")
    sentence_end: int | None
    citations: list[CitationOut] = Field(description="The answer's own passage first (answer_start/answer_end mark "
                                                     "the answer in it), then other retrieved passages that quote "
                                                     "its words near the question; for a refusal, the closest "
                                                     "passages")
    timings_ms: dict[str, float] = Field(description="Time spent per stage (embed, search, read, total), in ms")
    cached: bool = Field(default=False, description="Answered before from the same index; timings_ms is this lookup's")
    context_used: list[str] = Field(default_factory=list,
                                    description="Words from earlier turns that the question was read with")
    timeline_url: str | None = Field(default=None, description="A date answer's sentence on the /timeline page")


class SourceSummary(BaseModel):
    doc_id: str
    title: str
    url: str
    source_url: str | None
    meta: dict[str, str]


class SourceOut(SourceSummary):
    text: str


class DateOut(BaseModel):
    text: str = Field(description="The date as the article writes it")
    start: int = Field(description="Offsets of the date in the article's cleaned text")
    end: int
    precision: str = Field(description="day, month, year, decade or range")
    value: str = Field(description="2024-03-28, 2024-03, 2024, 1990s or 1950/1953")
    earliest: str = Field(description="First day it covers (ISO)")
    latest: str = Field(description="Last day it covers (ISO)")
    qualifier: str | None = Field(description="early, mid or late, where the article says so; for a range over "
                                              "parts of one decade, mid-to-late or early-to-mid")
    label: str = Field(description="The date in English words")


class TimelineEventOut(BaseModel):
    id: str = Field(description="The event's anchor on /timeline")
    doc_id: str
    title: str
    sentence: str
    sentence_start: int
    sentence_end: int
    url: str = Field(description="The sentence in the source viewer, its date highlighted")
    date: DateOut = Field(description="The first date the sentence states: where the event is placed")
    other_dates: list[DateOut]


class TimelineOut(BaseModel):
    generation: str
    total: int = Field(description="Events before filtering")
    count: int
    filters: dict[str, str | int | None]
    events: list[TimelineEventOut]


class ErrorOut(BaseModel):
    detail: str


def answer_out(answer: Answer) -> AskResponse:
    return AskResponse.model_validate(answer, from_attributes=True)

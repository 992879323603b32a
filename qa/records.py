"""Plain data passed between the stages. Offsets always point into a document's cleaned text."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    doc_id: str  # path relative to the corpus folder, with forward slashes
    title: str
    text: str  # cleaned text; every offset in the index points into it
    meta: dict = field(default_factory=dict)  # source_url, publisher, published, ...
    sha256: str = ""  # of the raw file bytes


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    doc_id: str
    ordinal: int  # position of the passage inside its document
    start: int
    end: int
    text: str  # == document.text[start:end]
    sentences: tuple[Span, ...]  # sentence boundaries inside the passage, document offsets


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class Hit:
    """One retrieved passage with its fused and per-retriever scores."""

    passage_row: int  # the passage's row in this index generation (rows change from one build to the next)
    score: float
    dense: float = 0.0
    lexical: float = 0.0


@dataclass
class Citation:
    doc_id: str
    title: str
    url: str
    source_url: str | None
    passage: str
    start: int
    end: int
    answer_start: int | None
    answer_end: int | None
    score: float


@dataclass
class Answer:
    question: str
    answer: str | None
    abstained: bool
    confidence: float
    normalized: dict | None
    citations: list[Citation]
    sentence: str | None = None
    sentence_start: int | None = None
    sentence_end: int | None = None
    timings_ms: dict = field(default_factory=dict)
    cached: bool = False  # served from the answer cache: the same question was answered from the same index
    context_used: list[str] = field(default_factory=list)  # words from earlier turns the question was read with
    timeline_url: str | None = None  # a date answer's place on /timeline

"""The corpus as a chronology: every sentence that states a date, placed on a time axis.

Dates are found in the cleaned article text by qa/dates.py (Indonesian and English forms: a day, a month, a year,
a decade, a range of years or of decades; a day and month without a year is not placed, its year is not stated).
Each dated sentence is one event, placed at the first date it states; its other dates are kept with it. An
article's headline (a sentence in the same words as its title, "Festival Layang-layang Sanur 2025") is no event:
every event shows its article's title already, and a headline names the article, not something that happened.

The timeline is computed from the loaded index, so it changes with every rebuild.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from qa.dates import DateMention, find_dates
from qa.files.reader import LoadedIndex
from qa.validation import shortened


@dataclass(frozen=True)
class TimelineEvent:
    id: str  # stable while the sentence stays where it is: the anchor of the event on /timeline
    doc_id: str
    title: str
    sentence: str
    sentence_start: int  # offsets in the document's cleaned text
    sentence_end: int
    date: DateMention  # the first date the sentence states (document offsets)
    other_dates: tuple[DateMention, ...] = field(default_factory=tuple)

    def document_text(self, start: int, end: int) -> str:
        """The sentence's text between two document offsets."""
        return self.sentence[start - self.sentence_start:end - self.sentence_start]


def event_id(doc_id: str, sentence_start: int) -> str:
    return f"e{zlib.crc32(doc_id.encode()):08x}-{sentence_start}"


def build_timeline(index: LoadedIndex) -> list[TimelineEvent]:
    """Every dated sentence of the index, earliest first (ties: by article title and place in the article)."""
    events = []
    for doc_id, span in index.sentence_spans:
        document = index.documents[doc_id]
        sentence = document.text[span.start:span.end]
        dates = find_dates(sentence, span.start)
        if dates and not _same_words(sentence, document.title):
            events.append(TimelineEvent(event_id(doc_id, span.start), doc_id, document.title, sentence, span.start,
                                        span.end, dates[0], tuple(dates[1:])))
    events.sort(key=lambda e: (e.date.position, e.title.lower(), e.sentence_start))
    return events


def _same_words(sentence: str, title: str) -> bool:
    def words(text: str) -> str:
        return " ".join(text.split()).rstrip(".!?").casefold()

    return words(sentence) == words(title)


@dataclass(frozen=True)
class TimelineFilter:
    doc_id: str | None = None
    first_year: int | None = None
    last_year: int | None = None


class TimelineFilterError(ValueError):
    """What is wrong with a filter, and which of its fields ("article", "from", "to") to change."""

    def __init__(self, message: str, fields: tuple[str, ...]) -> None:
        super().__init__(message)
        self.fields = fields


class UnknownArticle(TimelineFilterError):
    def __init__(self, message: str) -> None:
        super().__init__(message, ("article",))


def parse_filter(doc_id: str | None, first_year: str | None, last_year: str | None,
                 known_docs: set[str]) -> TimelineFilter:
    """Filters as they come from a query string (blank = no filter); TimelineFilterError says what is wrong."""
    def year(value: str | None, name: str) -> int | None:
        if not value:
            return None
        if not (value.isascii() and value.isdigit()) or len(value) > 4:
            raise TimelineFilterError(f"{name} must be a year such as 1950, not {value[:20]!r}", (name,))
        return int(value)

    first, last = year(first_year, "from"), year(last_year, "to")
    if first is not None and last is not None and first > last:
        raise TimelineFilterError(f"from ({first}) is after to ({last})", ("from", "to"))
    article = doc_id or None
    if article is not None and article not in known_docs:
        raise UnknownArticle(f"no article with id {shortened(article)!r}")
    return TimelineFilter(article, first, last)


def filter_events(events: list[TimelineEvent], chosen: TimelineFilter) -> list[TimelineEvent]:
    """Events of the chosen article with a date (the one they are placed at, or another they state) that overlaps
    the chosen years."""
    def overlaps(date: DateMention) -> bool:
        return ((chosen.first_year is None or int(date.latest[:4]) >= chosen.first_year)
                and (chosen.last_year is None or int(date.earliest[:4]) <= chosen.last_year))

    return [event for event in events
            if (chosen.doc_id is None or event.doc_id == chosen.doc_id)
            and any(overlaps(date) for date in (event.date, *event.other_dates))]

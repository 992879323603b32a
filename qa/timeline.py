"""The corpus as a chronology: every sentence that states a date, placed on a time axis.

Dates are found in the cleaned article text (Indonesian and English forms): a day ("28 Maret 2024", "March 28,
2024", "3/2/2025" day first as Indonesian writes it, "2025-02-03"), a month
("Juni 1950"), a year ("pada tahun 1991"), a decade ("1990-an", "Awal tahun 2000an"), a range of years
("1950-1953", "1950 hingga 1953") and a range of decades ("Pertengahan tahun 1950-an hingga 1960-an",
"Pertengahan hingga akhir tahun 2000an"). A day and month without a year ("Rabu (19/6)") is not placed: its
year is not stated. Each dated sentence is one event, placed at the first date it states; its other dates are kept with it.

The timeline is computed from the loaded index, so it changes with every rebuild.
"""

from __future__ import annotations

import re
import zlib
from calendar import monthrange
from dataclasses import dataclass, field

from qa.files.reader import LoadedIndex
from qa.validation import shortened

MONTHS = {
    "januari": 1, "january": 1, "jan": 1, "februari": 2, "february": 2, "feb": 2, "pebruari": 2, "maret": 3,
    "march": 3, "mar": 3, "april": 4, "apr": 4, "mei": 5, "may": 5, "juni": 6, "june": 6, "jun": 6, "juli": 7,
    "july": 7, "jul": 7, "agustus": 8, "august": 8, "agu": 8, "agt": 8, "aug": 8, "september": 9, "sept": 9,
    "sep": 9, "oktober": 10, "october": 10, "okt": 10, "oct": 10, "november": 11, "nov": 11, "desember": 12,
    "december": 12, "des": 12, "dec": 12,
}
QUALIFIERS = {"awal": "early", "early": "early", "pertengahan": "mid", "mid": "mid", "akhir": "late", "late": "late"}
_QUALIFIER_SHARE = {"early": (0, 3), "mid": (3, 7), "late": (7, 10)}  # years of the decade each one covers

_YEAR = r"(1[89]\d\d|20\d\d)"
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_PART = "(" + "|".join(QUALIFIERS) + ")"  # awal, pertengahan, akhir (early, mid, late): a part of a decade
_QUALIFIER = r"(?:" + _PART + r"\s+(?:tahun\s+|the\s+)?)?"
_DECADE = r"(?:tahun\s+|the\s+)?(1[89]\d0|20\d0)(?:-?an\b|['’]?s\b)"
_UNTIL = r"(?:\s*[-–—]\s*|\s+(?:hingga|sampai dengan|sampai|s\.d\.|to|until)\s+)"
_NOT_A_DECADE = r"(?!-?an\b|['’]?s\b)"  # "1998 hingga 2000-an" is a year and a decade, not 1998-2000
_NOT_NUMBER_BEFORE = r"(?<![\d.,/])"
_NOT_NUMBER_AFTER = r"(?![\d]|[.,]\d)"
PATTERNS = (  # most specific first; a match hides any later one it overlaps
    ("iso", re.compile(_NOT_NUMBER_BEFORE + r"\b" + _YEAR + r"-(\d\d)-(\d\d)" + _NOT_NUMBER_AFTER)),
    ("numeric", re.compile(_NOT_NUMBER_BEFORE + r"\b(\d{1,2})([/.-])(\d{1,2})\2" + _YEAR + _NOT_NUMBER_AFTER)),
    ("range", re.compile(_NOT_NUMBER_BEFORE + _YEAR + _UNTIL + _YEAR + _NOT_NUMBER_AFTER + _NOT_A_DECADE, re.I)),
    # "Pertengahan tahun 1950-an hingga 1960-an": from the first decade (or its part) to the end of the second.
    ("decade-range", re.compile(r"\b" + _QUALIFIER + _DECADE + _UNTIL + _QUALIFIER + _DECADE, re.I)),
    # "Pertengahan hingga akhir tahun 2000an": from one part of a decade to the end of another.
    ("decade-parts", re.compile(r"\b" + _PART + _UNTIL + _PART + r"\s+" + _DECADE, re.I)),
    ("decade", re.compile(r"\b" + _QUALIFIER + _DECADE, re.I)),
    ("day", re.compile(r"\b(\d{1,2})\s+" + _MONTH + r"\s+" + _YEAR + _NOT_NUMBER_AFTER, re.I)),
    ("month-day", re.compile(r"\b" + _MONTH + r"\s+(\d{1,2}),?\s+" + _YEAR + _NOT_NUMBER_AFTER, re.I)),  # March 28, 2024
    ("month", re.compile(r"\b" + _MONTH + r"\s+" + _YEAR + _NOT_NUMBER_AFTER, re.I)),
    ("year", re.compile(_NOT_NUMBER_BEFORE + r"\b" + _QUALIFIER + r"(?:tahun\s+)?" + _YEAR + _NOT_NUMBER_AFTER, re.I)),
)


@dataclass(frozen=True)
class DateMention:
    start: int  # offsets in the text it was found in
    end: int
    text: str
    precision: str  # day, month, year, decade or range
    value: str  # 2024-03-28, 2024-03, 2024, 1990s, 1950/1953
    earliest: str  # ISO dates bounding what it covers
    latest: str
    qualifier: str | None = None  # early, mid or late (a decade or year); mid-to-late and such (parts of a decade)

    @property
    def position(self) -> float:
        """Where it sits on the axis, in years (its earliest day)."""
        year, month, day = (int(part) for part in self.earliest.split("-"))
        return year + (month - 1) / 12 + (day - 1) / 365


def _decade_years(part: str | None, decade: str) -> tuple[int, int]:
    """The first and last year of a decade ("1990"), or of the part of it `part` names ("awal": 1990-1992)."""
    low, high = _QUALIFIER_SHARE.get(QUALIFIERS.get((part or "").lower()), (0, 10))
    return int(decade) + low, int(decade) + high - 1


def _mention(kind: str, match: re.Match, offset: int) -> DateMention | None:
    groups = match.groups()
    text = match.group()
    start, end = offset + match.start(), offset + match.end()
    if kind == "range":
        first, last = int(groups[0]), int(groups[1])
        if last <= first:
            return None
        return DateMention(start, end, text, "range", f"{first}/{last}", f"{first}-01-01", f"{last}-12-31")
    if kind == "decade":
        qualifier = QUALIFIERS.get((groups[0] or "").lower())
        first, last = _decade_years(groups[0], groups[1])
        return DateMention(start, end, text, "decade", f"{int(groups[1])}s", f"{first}-01-01", f"{last}-12-31",
                           qualifier)
    if kind in ("decade-range", "decade-parts"):
        if kind == "decade-range":
            (first_part, first_decade), (last_part, last_decade) = groups[:2], groups[2:]
        else:
            first_part, last_part, first_decade = groups
            last_decade = first_decade
        first, last = _decade_years(first_part, first_decade)[0], _decade_years(last_part, last_decade)[1]
        if last <= first:
            return None
        if kind == "decade-parts":
            # Parts of one decade ("pertengahan hingga akhir tahun 2000an"): the years are an estimate, so the
            # words say which parts ("mid-to-late"); from its start to its end it is the decade itself.
            from_part, to_part = QUALIFIERS[first_part.lower()], QUALIFIERS[last_part.lower()]
            if (from_part, to_part) == ("early", "late") or from_part == to_part:  # the decade, or one part of it
                return DateMention(start, end, text, "decade", f"{int(first_decade)}s", f"{first}-01-01",
                                   f"{last}-12-31", None if from_part != to_part else from_part)
            parts = f"{from_part}-to-{to_part}"
        else:  # a range of decades is worded by its years
            parts = None
        return DateMention(start, end, text, "range", f"{first}/{last}", f"{first}-01-01", f"{last}-12-31", parts)
    if kind in ("day", "month-day", "numeric", "iso"):
        if kind == "iso":
            year, month, day = int(groups[0]), int(groups[1]), int(groups[2])
        elif kind == "numeric":
            day, month, year = int(groups[0]), int(groups[2]), int(groups[3])
        elif kind == "month-day":
            day, month, year = int(groups[1]), MONTHS[groups[0].lower()], int(groups[2])
        else:
            day, month, year = int(groups[0]), MONTHS[groups[1].lower()], int(groups[2])
        if not 1 <= month <= 12 or not 1 <= day <= monthrange(year, month)[1]:
            return None
        iso = f"{year:04d}-{month:02d}-{day:02d}"
        return DateMention(start, end, text, "day", iso, iso, iso)
    if kind == "month":
        month, year = MONTHS[groups[0].lower()], int(groups[1])
        last = monthrange(year, month)[1]
        return DateMention(start, end, text, "month", f"{year:04d}-{month:02d}", f"{year:04d}-{month:02d}-01",
                           f"{year:04d}-{month:02d}-{last:02d}")
    qualifier, year = QUALIFIERS.get((groups[0] or "").lower()), int(groups[1])
    return DateMention(start, end, text, "year", str(year), f"{year}-01-01", f"{year}-12-31", qualifier)


def find_dates(text: str, offset: int = 0) -> list[DateMention]:
    """Every date stated in `text`, in reading order; offsets are `offset` + the position in `text`."""
    taken: list[tuple[int, int]] = []
    found = []
    for kind, pattern in PATTERNS:
        for match in pattern.finditer(text):
            if any(match.start() < b and a < match.end() for a, b in taken):
                continue
            mention = _mention(kind, match, offset)
            if mention is not None:
                taken.append((match.start(), match.end()))
                found.append(mention)
    return sorted(found, key=lambda m: m.start)


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
        if dates:
            events.append(TimelineEvent(event_id(doc_id, span.start), doc_id, document.title, sentence, span.start,
                                        span.end, dates[0], tuple(dates[1:])))
    events.sort(key=lambda e: (e.date.position, e.title.lower(), e.sentence_start))
    return events


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

"""Dates stated in text, in Indonesian and English forms: a day ("28 Maret 2024", "March 28, 2024", "3/2/2025"
day first as Indonesian writes it, "2025-02-03"), a month ("Juni 1950"), a year ("pada tahun 1991"), a decade
("1990-an", "Awal tahun 2000an"), a range of years ("1950-1953", "1950 hingga 1953") and a range of decades
("Pertengahan tahun 1950-an hingga 1960-an", "Pertengahan hingga akhir tahun 2000an"). A day and month without a
year ("Rabu (19/6)") is not a date here: its year is not stated.

Each date found has its precision, a normalised value and the days it covers. The timeline (qa/timeline.py)
places sentences by them and an answer's normalised value (qa/normalize.py) is read by them, so the two agree.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass

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

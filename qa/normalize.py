"""Machine-readable values of an answer span: a date with the precision the text gives (dateparser, Indonesian
and English), or a number ("1.000" -> 1000, "3,5 juta" -> 3500000)."""

from __future__ import annotations

import re
from functools import lru_cache

_PERIOD = re.compile(r"^(?:awal|pertengahan|akhir|early|mid|late)\s+(?:tahun\s+)?|^(?:tahun|pada|sejak|since|in)\s+",
                     re.I)
_YEARS = re.compile(r"(\d{4})(?:\s*[-–]\s*(\d{4}))?(?:-?an|s)?", re.I)
_SCALES = {"ribu": 1e3, "thousand": 1e3, "juta": 1e6, "million": 1e6, "miliar": 1e9, "billion": 1e9,
           "triliun": 1e12, "trillion": 1e12}
_NUMBER = re.compile(r"(?:sekitar|hampir|lebih dari|about|around|nearly|more than|over)?\s*"
                     r"(\d{1,3}(?:\.\d{3})+|\d+(?:,\d+)?|\d{1,3}(?:,\d{3})+(?:\.\d+)?)"
                     r"(?:\s+(ribu|thousand|juta|million|miliar|billion|triliun|trillion))?\b(.*)$", re.I)
_MONTH = re.compile(r"^(?:jan|feb|mar|apr|mei|may|jun|jul|agu|aug|sep|okt|oct|nov|des|dec)", re.I)


@lru_cache(maxsize=1)
def _date_parser():
    from dateparser.date import DateDataParser

    # Day first, as Indonesian writes numeric dates: "3/2/2025" is 3 February.
    return DateDataParser(languages=["id", "en"], settings={"PREFER_DAY_OF_MONTH": "first", "DATE_ORDER": "DMY"})


def date_normalized(text: str) -> dict | None:
    """{'type': 'date', 'value': '2024-03-28' | '1950-06' | '1994'}, a decade or a range of years; None when
    the span is not a date with a year."""
    cleaned = _PERIOD.sub("", text.strip().strip(".,;()"))
    years = _YEARS.fullmatch(cleaned)
    if years:
        if years.group(2):
            return {"type": "date_range", "value": f"{years.group(1)}/{years.group(2)}"}
        value = years.group(1)
        if re.search(r"(?:-?an|s)$", cleaned, re.I):
            return {"type": "decade", "value": f"{value[:3]}0s"}
        return {"type": "date", "value": value}
    if not re.search(r"\d{4}", cleaned) or len(cleaned) > 40:
        return None  # a day and month without a year cannot be pinned down
    data = _date_parser().get_date_data(cleaned)
    if data is None or data.date_obj is None:
        return None
    when = data.date_obj
    if data.period == "year":
        value = f"{when.year:04d}"
    elif data.period == "month":
        value = f"{when.year:04d}-{when.month:02d}"
    else:
        value = when.strftime("%Y-%m-%d")
    return {"type": "date", "value": value}


def number_normalized(text: str) -> dict | None:
    """{'type': 'number', 'value': 1000, 'unit': 'orang'} for a span that is a number (Indonesian "1.000" and
    "3,5"; English "1,000" and "3.5"), with what it counts when a word follows; None otherwise."""
    match = _NUMBER.fullmatch(text.strip().strip(".;()"))
    if not match:
        return None
    digits, scale, rest = match.group(1), match.group(2), match.group(3).strip()
    if len(rest.split()) > 3 or _MONTH.match(rest):
        return None  # "19 Juni" is a day without its year, not a count
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", digits):
        value = float(digits.replace(".", ""))
    elif re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", digits):
        value = float(digits.replace(",", ""))
    else:
        value = float(digits.replace(",", "."))
    value *= _SCALES.get((scale or "").lower(), 1)
    result = {"type": "number", "value": int(value) if value.is_integer() else value}
    if rest:
        result["unit"] = rest
    return result


def normalized(text: str) -> dict | None:
    return date_normalized(text) or number_normalized(text)

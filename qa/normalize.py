"""Machine-readable values of an answer span: a date with the precision the text gives (the recogniser the
timeline uses too, qa/dates.py: Indonesian and English forms), or a number ("1.000" -> 1000, "3,5 juta" ->
3500000)."""

from __future__ import annotations

import re
import unicodedata

from qa.dates import MONTHS, QUALIFIERS, find_dates

# Words a date answer may carry besides its date: "pada 19 Juni 2024", "Rabu, 19 Juni 2024", "sejak 1991",
# "awal Maret 2020". ("sekitar 2000" is a count: the number words of _NUMBER are not among them.)
_DATE_COMPANIONS = frozenset(
    "pada sejak hingga sampai tanggal hari bulan tahun in on since until the of "
    "senin selasa rabu kamis jumat jum'at sabtu minggu ahad monday tuesday wednesday thursday friday saturday "
    "sunday".split()) | frozenset(QUALIFIERS)
_SCALES = {"ribu": 1e3, "thousand": 1e3, "juta": 1e6, "million": 1e6, "miliar": 1e9, "billion": 1e9,
           "triliun": 1e12, "trillion": 1e12}
_CURRENCIES = {"rp": "IDR", "us$": "USD", "$": "USD", "€": "EUR", "£": "GBP"}
_NUMBER = re.compile(r"(?:sekitar|hampir|lebih dari|about|around|nearly|more than|over)?\s*"
                     r"(rp\.?|us\$|\$|€|£)?\s*"
                     r"(\d{1,3}(?:\.\d{3})+|\d+(?:,\d+)?|\d{1,3}(?:,\d{3})+(?:\.\d+)?)"
                     r"(?:\s+(ribu|thousand|juta|million|miliar|billion|triliun|trillion))?((?:\s*%|\s.*)?)$", re.I)
_TYPES = {"day": "date", "month": "date", "year": "date", "decade": "decade", "range": "date_range"}


def date_normalized(text: str) -> dict | None:
    """{'type': 'date', 'value': '2024-03-28' | '1950-06' | '1994'}, {'type': 'decade', 'value': '1990s'} or
    {'type': 'date_range', 'value': '1950/1953'}, with 'qualifier' early / mid / late when the span says so (a
    range over parts of one decade: mid-to-late, early-to-mid), for
    a span that is one date with a year (and perhaps a weekday or a preposition); None for anything else, a day and
    month without a year among them."""
    dates = find_dates(text)
    if len(dates) != 1:
        return None
    date = dates[0]
    rest = (text[:date.start] + " " + text[date.end:]).lower()
    if any(word not in _DATE_COMPANIONS for word in re.findall(r"[^\W_]+(?:'[^\W_]+)?", rest)):
        return None
    normalized = {"type": _TYPES[date.precision], "value": date.value}
    if date.qualifier:  # "awal tahun 2000an": early
        normalized["qualifier"] = date.qualifier
    return normalized


def number_normalized(text: str) -> dict | None:
    """{'type': 'number', 'value': 1000, 'unit': 'orang'} for a span that is a number (Indonesian "1.000" and
    "3,5"; English "1,000" and "3.5"), with what it counts when a word follows and its currency when a sign leads
    ("Rp75 juta": IDR, "$11 miliar": USD); None otherwise."""
    match = _NUMBER.fullmatch(text.strip().strip(".;()"))
    if not match:
        return None
    currency, digits, scale, rest = match.group(1), match.group(2), match.group(3), match.group(4).strip()
    if len(rest.split()) > 3 or rest.lower().startswith(tuple(MONTHS)):
        return None  # "19 Juni" is a day without its year, not a count
    if any(c.isdigit() for c in rest) or rest[:1].isupper():
        return None  # "20.000 hingga 50.000", "2001 dan 2002": more than one number; "38 North": a name
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", digits):
        value = float(digits.replace(".", ""))
    elif re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", digits):
        value = float(digits.replace(",", ""))
    else:
        value = float(digits.replace(",", "."))
    value *= _SCALES.get((scale or "").lower(), 1)
    result = {"type": "number", "value": int(value) if value.is_integer() else value}
    if currency:
        result["currency"] = _CURRENCIES[currency.lower().rstrip(".")]
    if rest:
        result["unit"] = rest
    return result


def normalized(text: str) -> dict | None:
    # Digits of other scripts as ASCII ones: fullwidth "２０１０" is the year 2010 (only decimal digits: "10²" is not
    # 102).
    text = "".join(str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" and not c.isascii() else c
                   for c in text)
    return date_normalized(text) or number_normalized(text)

"""Normalised values of answer spans: dates with the precision the text gives, and numbers."""

import pytest

from qa.normalize import normalized


@pytest.mark.parametrize("span, value", [
    ("28 Maret 2024", {"type": "date", "value": "2024-03-28"}),
    ("March 28, 2024", {"type": "date", "value": "2024-03-28"}),
    ("Juni 1950", {"type": "date", "value": "1950-06"}),
    ("3/2/2025", {"type": "date", "value": "2025-02-03"}),  # day first, as Indonesian writes it
    ("19/6/2024", {"type": "date", "value": "2024-06-19"}),
    ("tahun 1994", {"type": "date", "value": "1994"}),
    ("awal tahun 2000-an", {"type": "decade", "value": "2000s", "qualifier": "early"}),
    ("1950-1953", {"type": "date_range", "value": "1950/1953"}),
    ("1.000 orang", {"type": "number", "value": 1000, "unit": "orang"}),
    ("3,5 juta", {"type": "number", "value": 3500000}),
    ("1,000 workers", {"type": "number", "value": 1000, "unit": "workers"}),
    ("24 tahun", {"type": "number", "value": 24, "unit": "tahun"}),
    ("Rabu, 19 Juni 2024", {"type": "date", "value": "2024-06-19"}),
    ("pertengahan 1990-an", {"type": "decade", "value": "1990s", "qualifier": "mid"}),
    ("akhir tahun 1990", {"type": "date", "value": "1990", "qualifier": "late"}),
    ("2025-02-03", {"type": "date", "value": "2025-02-03"}),
    ("awal Maret 2020", {"type": "date", "value": "2020-03"}),
    ("50%", {"type": "number", "value": 50, "unit": "%"}),
    ("5,2 %", {"type": "number", "value": 5.2, "unit": "%"}),
    ("sekitar 2000", {"type": "number", "value": 2000}),  # a count, not a year
    ("Rp75 juta", {"type": "number", "value": 75_000_000, "currency": "IDR"}),
    ("$11 miliar", {"type": "number", "value": 11_000_000_000, "currency": "USD"}),
    ("Rp 15.000 per kilogram", {"type": "number", "value": 15_000, "currency": "IDR", "unit": "per kilogram"}),
    ("\uff12\uff10\uff11\uff10", {"type": "date", "value": "2010"}),  # fullwidth digits, as some sources type a year
])
def test_dates_and_numbers_get_a_value(span, value):
    assert normalized(span) == value


@pytest.mark.parametrize("span", ["10\u00b2", "2\u2075", "19 Juni", "Vladivostok", "dua jam", "Kim Jong Un", "perjanjian kemitraan strategis",
                                  "Perang Korea 1950-1953", "19 Juni 2024 dan 20 Juni 2024", "31/2/2024",
                                  "1953-1950", "20.000 hingga 50.000", "38 North"])
def test_other_spans_and_dates_without_a_year_get_none(span):
    assert normalized(span) is None

"""Candidate answer spans inside a sentence: dates, numbers, durations, names and clauses.

Month names come from dateparser's Indonesian and English locale data; dates are normalised with
dateparser, keeping only the precision the text gives (a year, a month or a day).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from qa.question import CLAUSE, DATE, DEFINITION, DURATION, NAME, NUMBER, PERSON, PLACE


@dataclass(frozen=True)
class Candidate:
    start: int  # offsets inside the sentence text
    end: int
    kind: str
    normalized: dict | None = None


@lru_cache(maxsize=1)
def _month_names() -> list[str]:
    from dateparser.languages.loader import default_loader

    names: set[str] = set()
    months = ("january february march april may june july august september october november december").split()
    for language in ("id", "en"):
        info = default_loader.get_locale(language).info
        for month in months:
            names.update(n for n in info.get(month, []) if len(n) >= 3 and n.isalpha())
    return sorted(names, key=len, reverse=True)


@lru_cache(maxsize=1)
def _calendar_words() -> frozenset[str]:
    """Month and weekday names (Indonesian and English): capitalised, but never a name."""
    from dateparser.languages.loader import default_loader

    days = "monday tuesday wednesday thursday friday saturday sunday".split()
    names = {m.lower() for m in _month_names()}
    for language in ("id", "en"):
        info = default_loader.get_locale(language).info
        names.update(n.lower() for day in days for n in info.get(day, []) if len(n) >= 4)
    return frozenset(names)


@lru_cache(maxsize=1)
def _date_pattern() -> re.Pattern:
    month = "(?:" + "|".join(re.escape(m) for m in _month_names()) + r")\.?"
    year = r"(?:1[0-9]{3}|20[0-9]{2})"
    period = r"(?:(?:awal|pertengahan|akhir|early|mid|late)(?:\s+tahun)?\s+)"
    return re.compile(
        rf"""(?<![\w/])(?:
            {period}?(?:\d{{1,2}}\s+)?{month}\s+{year}            # 28 Maret 2024, Juni 1950, akhir Juli 2023
          | {month}\s+\d{{1,2}},?\s+{year}                        # March 28, 2024
          | {period}?(?:tahun\s+)?{year}(?:\s*[-–]\s*{year})?(?:-?an|s)?   # 1994, 1950-1953, tahun 1950-an, 2000an
          | \d{{1,2}}\s+{month}                                     # 19 Juni
          | \(\d{{1,2}}/\d{{1,2}}\)                                # (19/6)
        )(?![\w/])""",
        re.I | re.X,
    )


_NUMBER_WORDS = ("satu dua tiga empat lima enam tujuh delapan sembilan sepuluh sebelas seratus seribu sejuta "
                 "belasan puluhan ratusan ribuan jutaan miliaran beberapa setengah "
                 "one two three four five six seven eight nine ten eleven twelve hundred thousand dozens hundreds "
                 "thousands millions half").split()
_SCALE = r"(?:\s+(?:puluh|belas|ratus|ribu|juta|miliar|triliun|thousand|million|billion|trillion))*"
_AMOUNT = (r"(?:(?:US)?\$\s?|Rp\.?\s?|€|£)?(?:\d+(?:[.,]\d+)*|(?:" + "|".join(_NUMBER_WORDS) + r"))" + _SCALE
           + r"(?:\s*(?:%|persen|percent|per cent))?")
_TIME_UNITS = (r"(?:detik|menit|jam|hari|pekan|minggu|bulan|tahun|dekade|abad|"
               r"seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centuries)")
_UNIT = r"(?:km²|km2|m²|m2|m³|km|cm|mm|m|kg|g|ha|mi|ft|°C|°F|°)"
_COUNTED = r"(?!(?:dan|and|di|ke|dari|yang|to|of|in|pada|on|at)\b)[a-z][\w²³-]*"
_NUMBER = re.compile(
    rf"(?<![\w.,]){_AMOUNT}(?:\s*(?:hingga|sampai|to|-|–|and|dan)\s*{_AMOUNT})?"
    rf"(?:\s?{_UNIT}(?![\w])|\s+(?!{_TIME_UNITS}\b){_COUNTED}(?:\s+(?:persegi|kubik|kilomet\w*|met(?:er|re)s?|mil(?:e|es)?|per\s+\w+))?)?(?![\w])",
    re.I,
)
_DURATION = re.compile(rf"(?<![\w.,]){_AMOUNT}\s+{_TIME_UNITS}\b", re.I)

_CAP = r"(?:[A-Z][\w'’.-]*[\w]|[A-Z])"
_CONNECT = r"(?:\s+(?:bin|binti|van|von|de|del|da|al|el|la|of)(?=\s+[A-Z]))?"
_NAME = re.compile(rf"{_CAP}(?:{_CONNECT}\s+{_CAP})*")
# A comma followed by "termasuk", "seperti", "yaitu" ("including", "such as", "namely") does not end a clause: what
# follows spells out the noun before it ("senjata, termasuk peluru artileri"), so both belong to one answer.
_CLAUSE_BREAK = re.compile(r"\s*(?:[;:()“”\"]|,(?!\s*(?:termasuk|seperti|yaitu|yakni|antara lain|khususnya|terutama|"
                           r"including|such as|namely|especially)\b)|\s[-–—]\s|\b(?:dan|tetapi|namun|sementara|yang|"
                           r"bahwa|karena|and|but|while|which|that|because)\b)\s*")

# Capitalised words that are titles or roles, not part of a person's name.
_TITLE_WORDS = frozenset(
    ("presiden menteri pertahanan luar dalam negeri duta besar pemimpin ketua profesor prof dr jenderal perdana "
     "raja ratu wakil sekretaris kepala direktur juru bicara gubernur walikota senator anggota mantan pejabat "
     "president minister defense defence foreign secretary ambassador leader chairman professor general prime "
     "king queen vice head director spokesman governor mayor senator former official mr mrs ms").split()
)
_PLACE_CUES = frozenset("di ke dari kota negara pelabuhan wilayah in to from at city of port near".split())
_PERSON_CUES = frozenset("kata ujar tulis menurut oleh said says wrote according by".split())


def date_normalized(text: str) -> dict | None:
    """{'type': 'date', 'value': '2024-03-28' | '1950-06' | '1994'} with the precision the text gives."""
    from dateparser.date import DateDataParser

    cleaned = re.sub(r"^(?:awal|pertengahan|akhir|early|mid|late)\s+(?:tahun\s+)?|^tahun\s+", "", text.strip(), flags=re.I)
    year_only = re.fullmatch(r"(\d{4})(?:\s*[-–]\s*(\d{4}))?(?:-?an|s)?", cleaned, re.I)
    if year_only:
        if year_only.group(2):
            return {"type": "date_range", "value": f"{year_only.group(1)}/{year_only.group(2)}"}
        value = year_only.group(1)
        if re.search(r"(?:-?an|s)$", cleaned, re.I):
            return {"type": "decade", "value": f"{value[:3]}0s"}
        return {"type": "date", "value": value}
    if not re.search(r"\d{4}", cleaned):
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


@lru_cache(maxsize=1)
def _date_parser():
    from dateparser.date import DateDataParser

    return DateDataParser(languages=["id", "en"], settings={"PREFER_DAY_OF_MONTH": "first"})


def find_dates(sentence: str) -> list[Candidate]:
    return [Candidate(m.start(), m.end(), DATE, date_normalized(m.group())) for m in _date_pattern().finditer(sentence)]


def find_numbers(sentence: str) -> list[Candidate]:
    dates = find_dates(sentence)
    out = []
    for m in _NUMBER.finditer(sentence):
        if any(d.start <= m.start() < d.end for d in dates):
            continue
        out.append(Candidate(m.start(), m.end(), NUMBER))
    return out


def find_durations(sentence: str) -> list[Candidate]:
    return [Candidate(m.start(), m.end(), DURATION) for m in _DURATION.finditer(sentence)]


def _name_kind(sentence: str, start: int, end: int, places: frozenset[str]) -> str:
    before = sentence[:start].split()
    prev = before[-1].lower().strip(",") if before else ""
    words = sentence[start:end].split()
    if prev in _PLACE_CUES or " ".join(words) in places:
        return PLACE
    titled = any(w.lower().strip(",") in _TITLE_WORDS for w in before[-6:]) and (
        before[-1].lower() in _TITLE_WORDS or before[-1].endswith(","))  # "Menteri Luar Negeri X, Choe Son-hui"
    if prev in _PERSON_CUES or titled or len(words) >= 2:
        return PERSON
    return NAME


def find_names(sentence: str, places: frozenset[str] = frozenset(),
               common_words: frozenset[str] = frozenset()) -> list[Candidate]:
    """Runs of capitalised words. Leading title words and leading known place names are cut off when a name
    follows, so "Menteri Pertahanan Rusia Sergei Shoigu" gives "Sergei Shoigu". Month names are not names, and
    a lone first word of the sentence counts only if it is never written in lower case (Namun, Dalam)."""
    if _is_title_case(sentence):
        return []  # a headline capitalises every word: its capitalised runs are not names
    calendar_words = _calendar_words()
    out = []
    for m in _NAME.finditer(sentence):
        end = m.end()
        words = [w for w in re.finditer(r"\S+", m.group()) if w.group().lower().strip(".,") not in calendar_words]
        if not words:
            continue
        while len(words) > 1 and words[0].group().lower().strip(".") in _TITLE_WORDS:
            words.pop(0)
        if words[0].group().lower().strip(".") in _TITLE_WORDS:
            continue
        for cut in range(len(words) - 2, 0, -1):  # a known place in front of a name of two or more words
            if " ".join(w.group() for w in words[:cut]) in places:
                words = words[cut:]
                break
        start = m.start() + words[0].start()
        end = m.start() + words[-1].end()
        if start == 0 and len(words) > 1 and words[0].group().lower() in common_words:
            words = words[1:]  # "Menurut Interfax": a sentence's first word is capitalised because it comes first
            start = m.start() + words[0].start()
        if start == 0 and len(words) == 1 and (words[0].group().lower() in common_words or not common_words):
            continue
        out.append(Candidate(start, end, _name_kind(sentence, start, end, places)))
    return out


_LIST_GAP = re.compile(r"\s*,\s*|,?\s+(?:dan|serta|and|&)\s+", re.I)
_LIST_AND = re.compile(r"\b(?:dan|serta|and)\b|&", re.I)


def coordinated_people(sentence: str, names: list[Candidate]) -> list[Candidate]:
    """Names joined into one list of people ("Helmut dan Erica Simon", "A, B, dan C"), as one candidate each.
    A run of names separated by commas alone ("Surabaya, Jawa Timur") is not a list: it needs a final "dan";
    and a list holding a place is not a list of people."""
    lists = []
    run: list[Candidate] = []
    for name in sorted(names, key=lambda c: c.start) + [None]:
        if name is not None and run and _LIST_GAP.fullmatch(sentence[run[-1].end:name.start]):
            run.append(name)
            continue
        # close the run at its last "dan": "A dan B, C" lists A and B
        last_and = max((i for i in range(1, len(run)) if _LIST_AND.search(sentence[run[i - 1].end:run[i].start])),
                       default=0)
        members = run[:last_and + 1]
        if len(members) > 1 and any(m.kind == PERSON for m in members) and all(m.kind != PLACE for m in members):
            lists.append(Candidate(members[0].start, members[-1].end, PERSON))
        run = [name] if name is not None else []
    return lists


def _is_title_case(sentence: str) -> bool:
    words = [w for w in re.findall(r"[^\W\d_][\w'’-]*", sentence) if len(w) > 3]
    return len(words) >= 4 and sum(w[0].isupper() for w in words) / len(words) >= 0.85


def known_places(texts: list[str]) -> frozenset[str]:
    """Runs of capitalised words (and their leading parts) that follow a place preposition somewhere in the
    corpus: di Pyongyang, ke Korea Utara."""
    found = set()
    for text in texts:
        for m in re.finditer(r"\b(?:di|ke|dari|in|to|from)\s+(" + _NAME.pattern + ")", text):
            words = m.group(1).split()
            found.update(" ".join(words[:n]) for n in range(1, len(words) + 1))
    return frozenset(found)


def find_clauses(sentence: str) -> list[Candidate]:
    out, cursor = [], 0
    for m in _CLAUSE_BREAK.finditer(sentence):
        if m.start() > cursor:
            out.append(Candidate(cursor, m.start(), CLAUSE))
        cursor = m.end()
    if cursor < len(sentence):
        end = len(sentence.rstrip(" .!?"))
        if end > cursor:
            out.append(Candidate(cursor, end, CLAUSE))
    return [c for c in out if sentence[c.start:c.end].strip()]


# "X adalah ...", "X merupakan ...", "X is ...": what follows the copula defines X.
_COPULA = re.compile(r"\b(?:adalah|merupakan|ialah|yaitu|yakni|berarti|artinya|is|are|was|were|means)\s+", re.I)
DEFINITION_MAX_WORDS = 30


def find_definitions(sentence: str) -> list[Candidate]:
    out = []
    for m in _COPULA.finditer(sentence):
        end = len(sentence.rstrip(" .!?"))
        words = list(re.finditer(r"\S+", sentence[m.end():end]))
        if len(words) > DEFINITION_MAX_WORDS:
            cut = next((w for w in words[8:] if w.group().endswith((",", ";"))), words[DEFINITION_MAX_WORDS - 1])
            end = m.end() + cut.end() - (1 if cut.group().endswith((",", ";")) else 0)
        if end > m.end():
            out.append(Candidate(m.end(), end, DEFINITION))
    return out


def candidates_for(kind: str, sentence: str, places: frozenset[str] = frozenset(),
                   common_words: frozenset[str] = frozenset()) -> list[Candidate]:
    """Spans of the kind the question asks for; a name question also accepts places and persons."""
    if kind == DEFINITION:
        return find_definitions(sentence)
    if kind == DATE:
        return find_dates(sentence)
    if kind == DURATION:
        return find_durations(sentence)
    if kind == NUMBER:
        return find_numbers(sentence)
    if kind in (PERSON, PLACE, NAME):
        names = find_names(sentence, places, common_words)
        if kind == NAME:
            return names
        if kind == PERSON:
            names += coordinated_people(sentence, names)
        preferred = [c for c in names if c.kind == kind]
        others = [Candidate(c.start, c.end, NAME) for c in names if c.kind != kind]
        return preferred + others
    return find_clauses(sentence)

"""What a question asks for: the expected answer type, read from its wording (English or Indonesian)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DATE, PERSON, PLACE, NUMBER, DURATION, NAME, CLAUSE = "date", "person", "place", "number", "duration", "name", "clause"
DEFINITION = "definition"  # "what is X", "apa yang dimaksud dengan X": the predicate that defines X

# Head nouns after "which/what" (or "X apa") that fix the type.
_HEAD_TYPES = {
    DATE: "year years date day month decade century tahun tanggal hari bulan dekade abad",
    PERSON: ("person people man woman professor official leader president minister ambassador analyst expert "
             "author writer spokesman spokesperson diplomat general envoy king chairman head director scholar "
             "orang tokoh profesor pejabat pemimpin presiden menteri duta analis pakar penulis juru bicara jenderal "
             "utusan ketua direktur"),
    PLACE: ("city country place port region town capital state province island location where "
            "kota negara tempat pelabuhan wilayah daerah ibu provinsi pulau lokasi"),
    NUMBER: ("share percentage percent proportion portion number amount count sum total fraction "
             "persen persentase jumlah bagian angka total"),
}
_HEAD_LOOKUP = {word: kind for kind, words in _HEAD_TYPES.items() for word in words.split()}

_PATTERNS: list[tuple[str, re.Pattern]] = [
    (DEFINITION, re.compile(r"\b(apa(?:kah)?\s+(?:yang\s+)?(?:di\s?maksud|maksud|pengertian|arti|definisi)|apa(?:kah)?\s+itu|"
                            r"what\s+(?:is|are)\s+meant\s+by|what\s+does\s+[\w\s-]+\s+mean|what\s+is\s+the\s+meaning\s+of)\b",
                            re.I)),
    (DURATION, re.compile(r"\b(how long|berapa(?:kah)? lama|berapa(?:kah)? jam|berapa(?:kah)? hari)\b", re.I)),
    (DATE, re.compile(r"\b(when|what time|kapan(?:kah)?|bilamana|(?:tahun|tanggal|bulan) (?:berapa|apa)(?:kah)?|"
                      r"sejak kapan|hingga kapan|sampai kapan)\b", re.I)),
    (NUMBER, re.compile(r"\b(how (?:many|much|tall|high|far|big|large|old|heavy|wide|deep|fast)|"
                        r"berapa(?:kah)? (?:banyak|jumlah|besar|persen|tinggi|jauh|luas|berat|usia|umur)|"
                        r"berapa(?:kah)?)\b", re.I)),
    (PERSON, re.compile(r"\b(who|whom|whose|siapa(?:kah)?)\b", re.I)),
    (PLACE, re.compile(r"\b(where|di ?mana(?:kah)?|ke ?mana|dari ?mana)\b", re.I)),
]
# "What did/was/is ..." and "apa yang ...": the answer is what the verb acts on, not a name.
_WHAT_ACTION = re.compile(r"\b(?:what\s+(?:did|does|do|was|were|is|are|has|have|had|will|would|can|could)\b|"
                          r"apa(?:kah)?\s+yang\b)", re.I)
# "Who is X?", "Siapakah X?", "What is X?" with nothing after the name: a description of X is asked for.
_DESCRIBE = re.compile(r"^\s*(?i:siapa(?:kah)?|who\s+(?:is|was)|what\s+(?:is|was))\s+(?i:the\s+|an?\s+)?"
                       r"[A-Z][\w.'’\"-]*(?:\s+(?:[A-Z0-9\"(][\w.'’\")-]*|bin|van|de|of))*\s*\??\s*$")
_WHAT_IS = re.compile(r"^\s*what\s+(?:is|are)\s+(?:an?\s+)?(?!the\b)[\w\s-]{1,40}\?\s*$", re.I)
_WHICH_HEAD = re.compile(r"\b(?:which|what)\s+(?:\w+\s+){0,2}?(\w+)", re.I)
_ID_HEAD = re.compile(r"\b(\w+)\s+(?:apa|mana|berapa)(?:kah)?\b", re.I)


@dataclass(frozen=True)
class QuestionType:
    kind: str  # one of the constants above
    cue: str  # the words that decided it, for explanations and tests
    focus: tuple[str, ...] = ()  # the words naming what is asked for: "railway line" in "which railway line ..."


_AUXILIARY = frozenset("did does do is was were are has have had will would can could".split())
_FOCUS = re.compile(r"\b(?:which|what)\s+((?:[\w-]+\s+){0,3})", re.I)
_ID_FOCUS = re.compile(r"\b((?:[\w-]+\s+){1,2})(?:apa|mana|manakah)\b", re.I)


def question_focus(question: str) -> tuple[str, ...]:
    match = _FOCUS.search(question)
    if match:
        words = []
        for word in match.group(1).lower().split():
            if word in _AUXILIARY:
                break
            words.append(word)
        return tuple(words)
    match = _ID_FOCUS.search(question)
    return tuple(match.group(1).lower().split()) if match else ()


def _head_type(question: str) -> tuple[str, str] | None:
    for pattern in (_WHICH_HEAD, _ID_HEAD):
        for match in pattern.finditer(question):
            words = match.group(0).lower().split()
            for word in words[1:] if pattern is _WHICH_HEAD else words[:1]:
                kind = _HEAD_LOOKUP.get(word.rstrip("s")) or _HEAD_LOOKUP.get(word)
                if kind:
                    return kind, match.group(0)
    return None


def question_type(question: str) -> QuestionType:
    focus = question_focus(question)
    if _DESCRIBE.match(question) or (_WHAT_IS.match(question) and " of " not in question):
        return QuestionType(DEFINITION, question.split()[0], focus)
    head = _head_type(question)
    if head:
        return QuestionType(*head, focus)
    for kind, pattern in _PATTERNS:
        match = pattern.search(question)
        if match:
            return QuestionType(kind, match.group(0), focus)
    action = _WHAT_ACTION.search(question)
    if action:
        return QuestionType(CLAUSE, action.group(0), focus)
    if re.search(r"\b(which|what|apa(?:kah)?|mana)\b", question, re.I):
        return QuestionType(NAME, "which/what", focus)
    return QuestionType(CLAUSE, "", focus)

"""Which language a question is asked in: English or Indonesian, the two the product is used in.

Counted from function words (the stop-words package's lists for both languages): a question has several and
they rarely belong to both lists. An Indonesian question word counts twice, since English names bring English
function words into Indonesian questions ("Dimana kantor pusat Bank of America?"). A tie, as in a bare name
("Rajin-Khasan?"), counts as Indonesian, the articles' own language."""

from __future__ import annotations

import re
from functools import lru_cache

WORD = re.compile(r"[^\W\d_]+", re.UNICODE)  # a run of letters
INDONESIAN_QUESTION_WORDS = frozenset(
    "apa apakah kapan kapankah siapa siapakah mana manakah dimana dimanakah berapa berapakah bagaimana "
    "bagaimanakah mengapa kenapa".split())
ENGLISH_QUESTION_WORDS = frozenset("what when where who whom whose which why how".split())
QUESTION_WORDS = INDONESIAN_QUESTION_WORDS | ENGLISH_QUESTION_WORDS


def has_words(question: str) -> bool:
    """Whether a question has anything to look for: a letter or a digit of any script ("?!" and "🙂" have none)."""
    return any(c.isalnum() for c in question)


@lru_cache(maxsize=1)
def _function_words() -> tuple[frozenset[str], frozenset[str]]:
    from stop_words import get_stop_words

    english = frozenset(w.lower() for w in get_stop_words("en"))
    indonesian = frozenset(w.lower() for w in get_stop_words("id")) | INDONESIAN_QUESTION_WORDS
    return english - indonesian, indonesian - english


def question_language(question: str) -> str:
    """"en" or "id"."""
    english, indonesian = _function_words()
    words = [w.lower() for w in WORD.findall(question)]
    en = sum(w in english for w in words)
    id_ = sum(2 if w in INDONESIAN_QUESTION_WORDS else w in indonesian for w in words)
    return "en" if en > id_ else "id"

"""What the service accepts: a question, top_k and a conversation's earlier turns, checked against the limits in
the settings (pure functions); and what the API's schema states of a question."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from qa.config import Settings
from qa.followup import EarlierTurn
from qa.load import is_utf8


class InvalidQuestion(ValueError):
    pass


@lru_cache(maxsize=1)
def invisible_characters() -> frozenset[str]:
    """What a question made only of is empty: controls, format characters (zero-width, direction marks) and
    spaces of the Basic Multilingual Plane (the set a JSON Schema pattern can name, see visible_pattern)."""
    return frozenset(c for c in map(chr, range(0xD800)) if unicodedata.category(c) in {"Cc", "Cf", "Zs", "Zl", "Zp"}) \
        | frozenset(c for c in map(chr, range(0xE000, 0x10000)) if unicodedata.category(c) == "Cf")


def visible_pattern() -> str:
    """A regular expression (ECMA-262 and Python alike) that a question matches when it is not empty."""
    codes = sorted(map(ord, invisible_characters()))
    ranges, first = [], codes[0]
    for previous, code in zip(codes, codes[1:] + [None]):
        if code != previous + 1:
            ranges.append(f"\\u{first:04x}" + (f"-\\u{previous:04x}" if previous > first else ""))
            first = code
    return "[^" + "".join(ranges) + "]"


def shortened(text: str, most: int = 200) -> str:
    """A name from a request (an article's id), as an error message echoes it: at most `most` characters."""
    return text if len(text) <= most else text[:most] + "…"


def too_many_turns(turns: int, limit: int) -> str:
    if limit == 0:
        return f"history has {turns} turn{'s' * (turns != 1)}; none are accepted (QA_MAX_HISTORY_TURNS is 0)"
    return f"history has {turns} turn{'s' * (turns != 1)}; at most {limit} are accepted (send the latest ones)"


def validate_question(question: object, top_k: object, settings: Settings) -> tuple[str, int]:
    """The question as it is read (white space folded) and top_k; InvalidQuestion says what is wrong."""
    if not isinstance(question, str):
        raise InvalidQuestion("question must be a string")
    if not is_utf8(question):
        raise InvalidQuestion("question is not valid Unicode text (it holds a lone surrogate)")
    if len(question) > settings.max_question_chars:  # as typed, the limit the API schema states
        raise InvalidQuestion(f"question is too long ({len(question)} characters; "
                              f"the limit is {settings.max_question_chars})")
    question = " ".join(question.replace("\ufeff", " ").split())  # a stray BOM is white space too
    if all(c in invisible_characters() for c in question):  # "\u200b", "\u202e", "\x00"
        raise InvalidQuestion("question is empty")
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise InvalidQuestion("top_k must be an integer")
    if problem := top_k_out_of_range(top_k, settings):
        raise InvalidQuestion(problem)
    return question, top_k


def top_k_out_of_range(top_k: int, settings: Settings, name: str = "top_k") -> str | None:
    """What is wrong with top_k, named as the user gave it ("--top-k" on the command line), or None."""
    return None if 1 <= top_k <= settings.top_k_max else f"{name} must be between 1 and {settings.top_k_max}"


def validate_history(history: object, settings: Settings) -> list[EarlierTurn]:
    """The earlier turns of a conversation, oldest first, checked; messages name the turn that is wrong."""
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise InvalidQuestion("history must be a list of earlier turns")
    limit = settings.max_history_turns
    if len(history) > limit:
        raise InvalidQuestion(too_many_turns(len(history), limit))
    turns = []
    for number, turn in enumerate(history):
        where = f"history.{number}"
        if isinstance(turn, EarlierTurn):
            question, answer = turn.question, turn.answer
        elif isinstance(turn, dict):
            question, answer = turn.get("question"), turn.get("answer")
        else:
            raise InvalidQuestion(f"{where} must be an object with a question and an answer")
        try:
            question, _ = validate_question(question, 1, settings)
        except InvalidQuestion as exc:
            raise InvalidQuestion(f"{where}.{exc}") from None
        if answer is not None and not isinstance(answer, str):
            raise InvalidQuestion(f"{where}.answer must be a string or null")
        if answer is not None:
            if not is_utf8(answer):
                raise InvalidQuestion(f"{where}.answer is not valid Unicode text (it holds a lone surrogate)")
            # Only a short answer is carried (a name, or a date for "then": qa/followup.py); a long one (the
            # reader's own answers can be) is cut, never refused, so that a client that sends back what it
            # was told always gets an answer.
            answer = " ".join(answer[:settings.max_history_answer_chars].split()) or None
        turns.append(EarlierTurn(question, answer))
    return turns

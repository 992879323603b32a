"""Follow-up questions: a question that leans on earlier turns of its conversation is asked together with the
words it leans on, carried over from those turns.

Two ways a question leans: a reference word ("he", "there", "dia", "di sana", "itu") that points at something
named earlier, whose names are then added to what is searched and read; or an elliptical fragment ("And in
2023?", "Bagaimana dengan Shoigu?") that repeats the previous question with the fragment's new part. A
question that does neither is asked as it is, so a change of topic is not dragged back to the old one.

The server keeps no conversation: clients send the earlier turns, oldest first, and every turn is resolved
again from them (pure string work, microseconds).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from qa.language import QUESTION_WORDS, has_words

TURNS_USED = 3  # earlier turns whose names a reference may point at
NAMES_CARRIED = 4
NAME_CHARS_CARRIED = 80
ANSWER_WORDS_CARRIED = 8  # a longer earlier answer is a description, not a name to carry

# Words that point back at something named before. English "that/this" and Indonesian "-nya" are left out:
# they mostly occur in self-contained questions ("the treaty that ...", "selanjutnya").
REFERENCES = frozenset("""
he she him his her hers they them their theirs it its there then
dia ia beliau mereka sana situ tersebut itu
""".split())
TIME_REFERENCES = (" then ", " that time ", " that year ", " saat itu ", " waktu itu ", " ketika itu ", " tahun itu ",
                   " kala itu ")
# Words that open an elliptical follow-up ("And in 2023?").
CONNECTIVES = ("what about", "how about", "and", "also", "bagaimana dengan", "kalau", "lalu", "terus", "dan")
# Without a connective, a fragment is at most this many words, with no question word or auxiliary of its own, a
# year or a name to ask the last question about, ...
FRAGMENT_WORDS = 3
LATIN_END = 0x250  # ... and in the Latin script (Basic Latin to Latin Extended-B)
# Replies that are no question, capitalised as typed ("Thanks!", "OK", "Terima kasih"): never a fragment's name.
REPLIES = frozenset("""
ok okay oke thanks thank thx yes yeah yep no nope hello hi hey bye good great nice cool sure right
halo hai ya iya tidak nggak gak baik sip mantap terima kasih makasih oh wah hari ini sekarang
""".split())
# A fragment opening with one of these names a place or time ("In Moscow?"): it takes the place of the last
# question's name that follows one, not of its subject.
PREPOSITIONS = frozenset("in at on to from into di ke dari pada".split())
# Words that open a question of its own ("And who did he meet?" is a question, "And in 2023?" a fragment).
# ("What about Will Smith?" is therefore not taken for a fragment: "will" is an auxiliary.)
QUESTION_OPENERS = QUESTION_WORDS | frozenset("""
did does do is are was were can could will would should has have had tell list name give sebutkan jelaskan
""".split())
# ... and words capitalised at the start of a question that are never a name.
OPENING_WORDS = QUESTION_OPENERS | frozenset("""
in on at and but also then di yang sejak sampai dan lalu terus kalau
""".split())
Answered = TypeVar("Answered")  # a qa.records.Answer, or what a caller's `ask` gives in its place
_WORD = re.compile(r"[^\W_][\w'’\-.]*", re.UNICODE)
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)(an)?\b")


@dataclass(frozen=True)
class EarlierTurn:
    question: str
    answer: str | None  # None where the turn abstained


def earlier_turn(answer) -> EarlierTurn:
    """The turn an answer (qa.records.Answer) makes in its conversation: its question, and its answer unless it
    abstained."""
    return EarlierTurn(answer.question, None if answer.abstained else answer.answer)


@dataclass(frozen=True)
class Resolved:
    question: str  # as asked
    query: str  # what is searched and read: the question with the words it leans on
    context_used: list[str] = field(default_factory=list)  # those words, as they were written earlier
    # A fragment's question written out ("In 2019?" → "When did Putin arrive in Pyongyang in 2019?"), which a
    # fragment after it rewrites in turn; any other question as asked.
    spelled_out: str = ""

    def __post_init__(self) -> None:
        if not self.spelled_out:
            object.__setattr__(self, "spelled_out", self.question)


def _words(text: str) -> list[re.Match]:
    return list(_WORD.finditer(text))


def names(text: str) -> list[str]:
    """Runs of capitalised words ("Kim Jong Un", "Dewan Keamanan PBB", "Pyongyang"), in order, without a
    question word that is capitalised only because it opens the sentence."""
    found, run, last_end = [], [], None
    for position, match in enumerate(_words(text)):
        word = re.sub(r"['’]s$", "", match.group().rstrip("."))
        capitalised = word[:1].isupper() and not (position == 0 and word.lower() in OPENING_WORDS)
        adjacent = last_end is not None and text[last_end:match.start()].strip() == ""
        if capitalised and run and adjacent:
            run.append(word)
        else:
            if run:
                found.append(" ".join(run))
            run = [word] if capitalised else []
        last_end = match.end()
    if run:
        found.append(" ".join(run))
    return found


def _has_reference(question: str) -> bool:
    lowered = question.lower()
    return any(m.group().lower().strip(".") in REFERENCES for m in _words(lowered)) or "di sana" in lowered


def _after_connectives(text: str) -> tuple[str, bool]:
    """The question without the connectives that open it ("what about 2023" → "2023"), and whether it had any."""
    stripped, found = text, True
    while found:
        lowered = stripped.lower()
        found = next((c for c in CONNECTIVES if lowered.startswith(c + " ") or lowered == c), None)
        if found:
            stripped = stripped[len(found):].strip(" ,")
    return stripped, stripped != text


def _fragment(question: str) -> str | None:
    """The new part of an elliptical follow-up ("in 2023" from "And in 2023?"), or None. A question word or an
    auxiliary makes it a question of its own, with or without a connective before it ("And who did he meet?")."""
    text, opened = _after_connectives(question.strip().rstrip("?!. ").strip())
    words = [m.group().lower() for m in _words(text)]
    if not words or any(w in QUESTION_OPENERS for w in words):
        return None
    if opened:
        return text
    # Without a connective, a fragment brings a year or a name to ask the last question about ("In 2000?",
    # "Lavrov?"): "ok thanks" or "asdfghjkl" is not one. And it is in the Latin script of the articles: a
    # question in another ("普京什么时候访问平壤？", one "word" without spaces) is a question of its own.
    if (len(words) <= FRAGMENT_WORDS and (_YEAR.search(text) or _new_names(text))
            and all(ord(c) < LATIN_END for w in words for c in w)):
        return text
    return None


def _new_names(fragment: str) -> list[str]:
    """The fragment's names, without replies capitalised because they were typed first ("Thanks", "OK")."""
    return [n for n in names(fragment) if not all(w.lower().strip(".,!") in REPLIES for w in n.split())]


def _carried_names(question: str, earlier: list[Resolved], answers: list[str | None]) -> list[str]:
    """Names from the latest turns, newest first: each earlier answer when that is a short name (or a date or
    number, when the question points at a time: "then", "saat itu"), then the names in its question."""
    asked = question.lower()
    wants_time = any(phrase in f" {asked.strip('?!. ')} " for phrase in TIME_REFERENCES)
    carried: list[str] = []
    for turn, answer in list(zip(earlier, answers))[::-1][:TURNS_USED]:
        candidates = names(turn.question)
        if answer and len(answer.split()) <= ANSWER_WORDS_CARRIED:
            numeric = any(c.isdigit() for c in answer)
            if (wants_time if numeric else bool(names(answer))):
                candidates.insert(0, answer)  # "he" after "Who led ...?" is most often the answer
        for name in candidates:
            if len(name) > NAME_CHARS_CARRIED:  # a run of capitalised words this long is no name ("AAAA…")
                continue
            if name.lower() not in asked and all(name.lower() != c.lower() for c in carried):
                carried.append(name)
    return carried[:NAMES_CARRIED]


def _ellipsis(question: str, fragment: str, previous: Resolved) -> Resolved:
    """`question`, whose new part is `fragment`: the previous question (as it was spelled out) asked again about
    the fragment's new year or name."""
    base = previous.spelled_out
    year = _YEAR.search(fragment)
    new_names, old_names = _new_names(fragment), names(base)
    if fragment.split()[0].lower() in PREPOSITIONS and not year:  # "In Moscow?": the place, not the subject
        after_preposition = rf"\b(?:{'|'.join(PREPOSITIONS)})\s+"
        old_names = [n for n in old_names if re.search(after_preposition + re.escape(n) + r"\b", base, re.I)]
    replaced = None
    if year and len(_YEAR.findall(base)) == 1:  # of two years ("between 2019 and 2023") neither is "the" year
        spelled_out = _YEAR.sub(year.group(), base)
    elif new_names and old_names:
        replaced = old_names[0]
        spelled_out = base.replace(replaced, new_names[0], 1)
    else:
        spelled_out = f"{base} {fragment}"
    carried = [n for n in previous.context_used if n.lower() not in spelled_out.lower() and n != replaced]
    query = " ".join([spelled_out] + carried)
    # Every earlier word the query now holds, those the previous turn leaned on included: what the user is shown.
    kept = [n for n in names(base) + previous.context_used if n.lower() in query.lower()
            and n.lower() not in fragment.lower()]
    return Resolved(question, query, list(dict.fromkeys(kept)) or [base], spelled_out)


def latest(history: list[EarlierTurn], turns: int) -> list[EarlierTurn]:
    """The turns a question is asked with: the latest `turns` of its conversation (none for 0), as every client
    sends them."""
    return history[-turns:] if turns > 0 else []


def in_turn(ask: Callable[[str, list[EarlierTurn]], Answered], questions: Iterable[str], turns: int,
            earlier: Iterable[EarlierTurn] = ()) -> Iterator[Answered]:
    """The answers to `questions`, asked one after another as one conversation: `ask(question, history)` is given
    the latest `turns` of the turns before it (`earlier` first, then those asked here)."""
    said = list(earlier)
    for question in questions:
        answer = ask(question, latest(said, turns))
        said.append(earlier_turn(answer))
        yield answer


def resolve(question: str, history: list[EarlierTurn]) -> Resolved:
    """What to search and read for `question`, given the earlier turns of its conversation (oldest first). A turn
    without a word ("?!", "🙂") is none to lean on: the service did not search it."""
    history = [turn for turn in history if has_words(turn.question)]
    earlier: list[Resolved] = []
    for turn in history:
        earlier.append(_resolve_one(turn.question, earlier, [t.answer for t in history[:len(earlier)]]))
    return _resolve_one(question, earlier, [t.answer for t in history])


def _resolve_one(question: str, earlier: list[Resolved], answers: list[str | None]) -> Resolved:
    if not earlier:
        return Resolved(question, question)
    fragment = _fragment(question)
    if fragment is not None:
        return _ellipsis(question, fragment, earlier[-1])
    if _has_reference(question):
        carried = _carried_names(question, earlier, answers)
        if carried:
            return Resolved(question, " ".join([question, *carried]), carried)
    return Resolved(question, question)

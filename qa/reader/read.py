"""Read stage: the trained reader reads the best retrieved passages and the best span among them becomes the
answer, mapped back to its sentence and document.

The best passage is read whole (in windows if it is long), as the reader was trained on whole paragraphs. Measured
on the held-out split of the training data through the whole pipeline (docs/evaluation.md): reading the best
sentences of several passages packed into one context did worse than reading the top passage whole, and
reading two or three passages (choosing by the reader's margin plus retrieval's score) was no better than one,
at twice or three times the cost; a bonus for the sentence's similarity to the question did not help either.
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.reader.runtime import ReaderRuntime
from qa.records import Hit
from qa.sentences import ScoredSentence
from qa.store import LoadedIndex

PASSAGES_READ = 1
RETRIEVAL_WEIGHT = 2.0  # reading several: choice = margin + 2 x (the passage's retrieval score - the best one's)
_TRAILING = ",;:–—-"
_PAIRS = {"(": ")", "“": "”", '"': '"', "‘": "’", "[": "]"}


@dataclass(frozen=True)
class Reading:
    sentence: ScoredSentence  # the sentence that holds the answer
    passage_row: int  # the passage it was read in
    start: int  # document offsets of the answer
    end: int
    margin: float  # the reader's best span score over its "no answer" score
    confidence: float


def _full_stop(span: str) -> bool:
    if not span.endswith("."):
        return False
    word = span[:-1].rsplit(None, 1)[-1] if span[:-1].strip() else ""
    return word.isdigit() or (len(word) >= 4 and "." not in word)


def tidy_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim white space, a trailing comma or dash, a sentence's full stop (not an abbreviation's: "Dr.",
    "U.S."), and a bracket or quote left without its partner."""
    changed = True
    while changed and start < end:
        changed = False
        span = text[start:end]
        if span[0].isspace() or (span[0] in _PAIRS and _PAIRS[span[0]] not in span[1:]):
            start, changed = start + 1, True
        elif span[-1].isspace() or span[-1] in _TRAILING or _full_stop(span) or (
                span[-1] in _PAIRS.values() and not any(o in span[:-1] for o, c in _PAIRS.items() if c == span[-1])):
            end, changed = end - 1, True
    return start, end


def read_answer(reader: ReaderRuntime, question: str, index: LoadedIndex, hits: list[Hit],
                ranked: list[ScoredSentence], passages: int = PASSAGES_READ, threads: int = 1) -> Reading | None:
    """The reader's answer from the best `passages` hits, or None when there is nothing to read. Each sentence
    of a passage offers its best span (an answer never crosses sentences); the best margin wins, plus, when
    several passages are read, retrieval's preference among them."""
    by_row = {s.row: s for s in ranked}
    candidates = []  # (choice, span, passage row, sentence)
    for hit in hits[:passages]:
        passage = index.passages[hit.passage_id]
        sentences = [by_row[row] for row in index.passage_sentence_rows[hit.passage_id] if row in by_row]
        parts = [(s.start - passage.start, s.end - passage.start) for s in sentences]
        for sentence, span in zip(sentences, reader.read(question, passage.text, threads, parts)):
            if span is not None:
                candidates.append((span.margin + RETRIEVAL_WEIGHT * (hit.score - hits[0].score), span,
                                   hit.passage_id, sentence))
    if not candidates:
        return None
    _, span, passage_row, sentence = max(candidates, key=lambda c: c[0])
    passage = index.passages[passage_row]
    start, end = (passage.start + offset - sentence.start for offset in (span.start, span.end))
    start, end = tidy_span(sentence.text, start, end)
    if start >= end:
        return None
    return Reading(sentence, passage_row, sentence.start + start, sentence.start + end, span.margin,
                   reader.calibration.confidence(span.margin, sentence.dense))

"""Read stage: the trained reader reads the most promising of the best retrieved passages and the best span in
it becomes the answer, mapped back to its sentence and document.

Which passage: of the `PASSAGES_CONSIDERED` best retrieved, the one whose best sentence is most similar to the
question, with the passage's retrieval score (relative to the best one's) weighing half as much
(`PASSAGE_CHOICE_WEIGHT`). On the bundled articles retrieval's best passage holds the answer ~70% of the time
and the right one is often second or third, a few hundredths of a point behind; the sentence vectors, which
the index already holds, tell them apart at no reading cost. The passage is read whole (in windows if it is
long), as the reader was trained on whole paragraphs.

Measured through the whole pipeline on the held-out split of the training data and on eval/tuning_qa.jsonl
(docs/evaluation.md, "Choosing the passage to read"): reading the chosen passage instead of retrieval's first
raised held-out F1 0.545 -> 0.556 and the tuning hit rate 0.63 -> 0.71. Reading the two most promising
passages (or retrieval's top three) and choosing by margin + 100 x retrieval score did a little better again
(0.571 / 0.75) but costs two or three readings (~17 ms each: over the 40 ms budget of a question); packing
the best sentences of several passages into one context did worse on held-out Indonesian questions (TyDi QA
F1 0.663 -> 0.629).
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.files.reader import LoadedIndex
from qa.reader.runtime import ReaderRuntime
from qa.records import Hit
from qa.sentences import ScoredSentence
from qa.split import ABBREVIATIONS

PASSAGES_CONSIDERED = 3  # of the retrieved passages, the best this many are candidates for reading
PASSAGE_CHOICE_WEIGHT = 0.5  # passage choice = its best sentence's cosine + 0.5 x (its retrieval score - the best)
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
    initial = len(word) == 1 and word.isupper()  # "George W."
    return bool(word) and "." not in word and word not in ABBREVIATIONS and not initial


def tidy_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim white space, a trailing comma or dash, a sentence's full stop (not an abbreviation's: "Dr.",
    "U.S."), and a bracket or quote left without its partner. A span without a letter or digit ("." or "—")
    is trimmed to nothing."""
    changed = True
    while changed and start < end:
        changed = False
        span = text[start:end]
        if span[0].isspace() or (span[0] in _PAIRS and _PAIRS[span[0]] not in span[1:]):
            start, changed = start + 1, True
        elif span[-1].isspace() or span[-1] in _TRAILING or _full_stop(span) or (
                span[-1] in _PAIRS.values() and not any(o in span[:-1] for o, c in _PAIRS.items() if c == span[-1])):
            end, changed = end - 1, True
    if not any(c.isalnum() for c in text[start:end]):
        return start, start
    return start, end


def passages_to_read(index: LoadedIndex, hits: list[Hit], ranked: list[ScoredSentence],
                     considered: int = PASSAGES_CONSIDERED) -> list[Hit]:
    """The first `considered` hits, most promising first: by the cosine of their best sentence with the question
    plus PASSAGE_CHOICE_WEIGHT times how far their retrieval score is from the best hit's."""
    if not hits:
        return []
    dense = {s.row: s.dense for s in ranked}
    top = hits[0].score

    def promise(hit: Hit) -> float:
        best = max((dense[row] for row in index.passage_sentence_rows[hit.passage_row] if row in dense),
                   default=-1.0)
        return best + PASSAGE_CHOICE_WEIGHT * (hit.score - top)

    return sorted(hits[:considered], key=promise, reverse=True)


def read_answer(reader: ReaderRuntime, question: str, index: LoadedIndex, hits: list[Hit],
                ranked: list[ScoredSentence], threads: int = 1) -> Reading | None:
    """The reader's answer from the most promising hit (passages_to_read), or None when there is nothing to
    read. Each sentence of the passage offers its best span (an answer never crosses sentences); the best
    margin wins."""
    chosen = passages_to_read(index, hits, ranked)
    if not chosen:
        return None
    passage_row = chosen[0].passage_row
    passage = index.passages[passage_row]
    by_row = {s.row: s for s in ranked}
    sentences = [by_row[row] for row in index.passage_sentence_rows[passage_row] if row in by_row]
    parts = [(s.start - passage.start, s.end - passage.start) for s in sentences]
    spans = reader.read(question, passage.text, threads, parts)
    candidates = [(span, sentence) for sentence, span in zip(sentences, spans) if span is not None]
    # The best span that is still an answer once tidied: a sentence whose best span is only punctuation gives way.
    for span, sentence in sorted(candidates, key=lambda c: c[0].margin, reverse=True):
        start, end = (passage.start + offset - sentence.start for offset in (span.start, span.end))
        start, end = tidy_span(sentence.text, start, end)
        if start < end:
            return Reading(sentence, passage_row, sentence.start + start, sentence.start + end, span.margin,
                           reader.calibration.confidence(span.margin, sentence.dense))
    return None

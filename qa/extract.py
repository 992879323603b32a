"""Extract stage: from retrieved passages to one verbatim answer span inside its best sentence.

Sentences of the top passages are scored against the question (dense cosine of the sentence vector,
question-word coverage, and the passage's retrieval score). Inside the best sentences the span is
chosen by what the question asks for (question.py): a date, a person, a place, a number, a duration,
a name, or otherwise the clause that answers. Nothing is generated: every span is a slice of the text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from qa.lexical import tokenize
from qa.question import CLAUSE, DATE, DURATION, NAME, NUMBER, PERSON, PLACE, QuestionType
from qa.records import Hit
from qa.spans import Candidate, candidates_for, find_clauses
from qa.store import LoadedIndex

SENTENCES_FOR_SPANS = 6  # how many of the best sentences are searched for a typed span
WEIGHT_DENSE, WEIGHT_COVERAGE, WEIGHT_PASSAGE = 1.0, 0.25, 0.3
TYPED_BONUS = 0.04
PROXIMITY_BONUS = 0.03


@dataclass
class ScoredSentence:
    row: int
    doc_id: str
    start: int
    end: int
    text: str
    passage_row: int
    dense: float
    coverage: float
    passage_score: float
    score: float
    matched: list[tuple[int, int]]  # sentence-relative spans of words that match question words


@dataclass
class Extraction:
    sentence: ScoredSentence
    start: int  # document offsets of the answer
    end: int
    kind: str
    typed: bool  # the span is of the kind the question asked for
    normalized: dict | None
    score: float


def _fold(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", word)


def words_match(question_word: str, text_word: str) -> bool:
    """Same word, or one inside the other (veto/memveto), or a shared 5-letter stem (russia/rusia, military/militer)."""
    if question_word == text_word:
        return True
    a, b = _fold(question_word), _fold(text_word)
    if a == b:
        return True
    if min(len(a), len(b)) >= 4 and (a in b or b in a):
        return True
    return len(a) >= 5 and len(b) >= 5 and a[:5] == b[:5]


_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:-[^\W_]+)*", re.UNICODE)


def matched_words(question_words: list[str], sentence: str) -> tuple[float, list[tuple[int, int]]]:
    """Share of question words found in the sentence, and where they are."""
    if not question_words:
        return 0.0, []
    found, spans = set(), []
    for m in _WORD.finditer(sentence):
        word = m.group().lower()
        for q in question_words:
            if words_match(q, word) or any(words_match(q, part) for part in word.split("-") if len(part) > 2):
                found.add(q)
                spans.append((m.start(), m.end()))
                break
    return len(found) / len(set(question_words)), spans


def rank_sentences(index: LoadedIndex, hits: list[Hit], query_vector: np.ndarray, question: str) -> list[ScoredSentence]:
    question_words = tokenize(question)
    best_passage: dict[int, tuple[int, float]] = {}
    for hit in hits:
        for row in index.passage_sentence_rows[hit.passage_id]:
            if row not in best_passage or hit.score > best_passage[row][1]:
                best_passage[row] = (hit.passage_id, hit.score)
    if not best_passage:
        return []
    rows = np.fromiter(best_passage.keys(), dtype=np.int64)
    dense = index.sentence_vectors[rows] @ query_vector.reshape(-1)
    top_passage = max(score for _, score in best_passage.values())
    ranked = []
    for row, sim in zip(rows.tolist(), dense.tolist()):
        doc_id, span = index.sentence_spans[row]
        text = index.documents[doc_id].text[span.start:span.end]
        coverage, spans = matched_words(question_words, text)
        passage_row, passage_score = best_passage[row]
        score = (WEIGHT_DENSE * sim + WEIGHT_COVERAGE * coverage
                 + WEIGHT_PASSAGE * (passage_score - top_passage))
        ranked.append(ScoredSentence(row, doc_id, span.start, span.end, text, passage_row, sim, coverage,
                                     passage_score, score, spans))
    ranked.sort(key=lambda s: s.score, reverse=True)
    return ranked


def _overlaps_question(candidate_text: str, question_words: list[str]) -> float:
    words = [w.lower() for w in _WORD.findall(candidate_text)]
    if not words:
        return 1.0
    hits = sum(1 for w in words if any(words_match(q, w) for q in question_words))
    return hits / len(words)


def _proximity(candidate: Candidate, matched: list[tuple[int, int]]) -> float:
    if not matched:
        return 0.0
    gap = min(max(0, s - candidate.end, candidate.start - e) for s, e in matched)
    return math.exp(-gap / 80)


def _trim_clause(sentence: ScoredSentence, clause: Candidate) -> Candidate:
    """Cut the question's own words off the front of a clause: what follows them is the answer."""
    inside = [(s, e) for s, e in sentence.matched if clause.start <= s and e <= clause.end]
    if not inside:
        return clause
    cut = max(e for _, e in inside)
    rest = sentence.text[cut:clause.end]
    if len(rest.split()) >= 2:
        lead = len(rest) - len(rest.lstrip(" ,"))
        return Candidate(cut + lead, clause.end, CLAUSE)
    return clause


def _best_clause(sentence: ScoredSentence) -> Candidate | None:
    clauses = find_clauses(sentence.text)
    if not clauses:
        return None

    def matches(c: Candidate) -> int:
        return sum(1 for s, e in sentence.matched if c.start <= s and e <= c.end)

    best = max(clauses, key=lambda c: (matches(c), len(c_text := sentence.text[c.start:c.end].split()) >= 3, -abs(len(c_text) - 8)))
    return _trim_clause(sentence, best)


def extract_answer(ranked: list[ScoredSentence], qtype: QuestionType, question: str,
                   places: frozenset[str]) -> Extraction | None:
    """The best span of the asked kind in the best sentences, or the best clause of the best sentence."""
    if not ranked:
        return None
    question_words = tokenize(question)
    best: Extraction | None = None
    if qtype.kind != CLAUSE:
        for sentence in ranked[:SENTENCES_FOR_SPANS]:
            for cand in candidates_for(qtype.kind, sentence.text, places):
                text = sentence.text[cand.start:cand.end]
                overlap = _overlaps_question(text, question_words)
                if overlap >= 1.0:
                    continue  # the question's own words are not its answer
                preferred = cand.kind == qtype.kind or qtype.kind == NAME and cand.kind != PLACE
                score = (sentence.score + TYPED_BONUS * (1.0 if preferred else 0.5)
                         + PROXIMITY_BONUS * _proximity(cand, sentence.matched) - 0.05 * overlap)
                if best is None or score > best.score:
                    best = Extraction(sentence, sentence.start + cand.start, sentence.start + cand.end,
                                      cand.kind, True, cand.normalized, score)
    top = ranked[0]
    if best is not None and (qtype.kind not in (NAME,) or best.sentence is top or best.score >= top.score):
        return best
    clause = _best_clause(top)
    if clause is None:
        return best
    fallback = Extraction(top, top.start + clause.start, top.start + clause.end, CLAUSE,
                          qtype.kind == CLAUSE, None, top.score)
    if best is not None and best.score >= fallback.score:
        return best
    return fallback


__all__ = ["DATE", "DURATION", "NUMBER", "PERSON", "PLACE", "Extraction", "ScoredSentence", "extract_answer",
           "rank_sentences", "words_match"]

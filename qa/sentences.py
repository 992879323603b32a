"""Score the sentences of the retrieved passages against the question, best first. The reader chooses the
passage to read by its sentences' cosines (qa/reader/read.py), and the supporting citations of an answer are
taken in this order (qa/answer.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.files.reader import LoadedIndex
from qa.records import Hit


@dataclass
class ScoredSentence:
    row: int  # sentence row in the index
    doc_id: str
    start: int  # document offsets
    end: int
    text: str
    passage_row: int
    dense: float  # cosine of the sentence's vector with the question's
    score: float  # the cosine less how far its passage's retrieval score is below the best hit's


def rank_sentences(index: LoadedIndex, hits: list[Hit], query_vector: np.ndarray) -> list[ScoredSentence]:
    """Every sentence of the retrieved passages, best first."""
    best_passage: dict[int, tuple[int, float]] = {}
    for hit in hits:
        for row in index.passage_sentence_rows[hit.passage_row]:
            if row not in best_passage or hit.score > best_passage[row][1]:
                best_passage[row] = (hit.passage_row, hit.score)
    if not best_passage:
        return []
    rows = np.fromiter(best_passage.keys(), dtype=np.int64)
    dense = index.sentence_vectors[rows] @ query_vector.reshape(-1)
    top_passage = max(score for _, score in best_passage.values())
    ranked = []
    for row, sim in zip(rows.tolist(), dense.tolist()):
        doc_id, span = index.sentence_spans[row]
        text = index.documents[doc_id].text[span.start:span.end]
        passage_row, passage_score = best_passage[row]
        score = sim + passage_score - top_passage
        ranked.append(ScoredSentence(row, doc_id, span.start, span.end, text, passage_row, sim, score))
    ranked.sort(key=lambda s: s.score, reverse=True)
    return ranked

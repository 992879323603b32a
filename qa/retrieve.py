"""Retrieve stage: dense and lexical passage hits, fused by weighted scores.

Plain reciprocal-rank fusion was measured worse than dense retrieval alone (docs/design.md), so the lexical
score is a bounded bonus on top of the dense cosine: it separates passages that share a question's
names and numbers without letting a keyword-only match outrank a passage that means the same.

Both stores (the embedded files and PostgreSQL) answer the same two questions: the `depth` passages nearest
to a vector (`dense_candidates`), and normalised lexical scores of the lexical top `depth` plus of given rows
(`lexical_scores`).
"""

from __future__ import annotations

import numpy as np

from qa.records import Hit

LEXICAL_WEIGHT = 0.05
CANDIDATES_PER_RETRIEVER = 50


def retrieve(index, query_vector: np.ndarray, question: str, k: int) -> list[Hit]:
    n = len(index.passages)
    if n == 0:
        return []
    depth = min(n, max(CANDIDATES_PER_RETRIEVER, k))
    dense_rows = index.dense_candidates(query_vector, depth)
    lexical = index.lexical_scores(question, depth, dense_rows)
    candidates = set(dense_rows)
    candidates.update(lexical.top)
    rows = np.fromiter(candidates, dtype=np.int64)
    dense = index.passage_vectors[rows] @ query_vector.reshape(-1)
    lexical_norm = np.array([lexical.scores.get(int(r), 0.0) for r in rows], dtype=np.float32)
    fused = dense + LEXICAL_WEIGHT * lexical_norm
    order = np.argsort(-fused)[:k]
    index.passages.prefetch([int(rows[i]) for i in order])  # the pipeline reads the hits' passages next
    return [Hit(int(rows[i]), float(fused[i]), float(dense[i]), float(lexical_norm[i])) for i in order]

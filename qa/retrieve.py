"""Retrieve stage: dense (FAISS) and lexical (BM25) passage hits, fused by weighted scores.

Plain reciprocal-rank fusion was measured worse than dense retrieval alone (README), so the lexical
score is a bounded bonus on top of the dense cosine: it separates passages that share a question's
names and numbers without letting a keyword-only match outrank a passage that means the same.
"""

from __future__ import annotations

import numpy as np

from qa.records import Hit
from qa.store import LoadedIndex

LEXICAL_WEIGHT = 0.05
CANDIDATES_PER_RETRIEVER = 50


def retrieve(index: LoadedIndex, query_vector: np.ndarray, question: str, k: int,
             lexical_weight: float = LEXICAL_WEIGHT) -> list[Hit]:
    n = len(index.passages)
    if n == 0:
        return []
    depth = min(n, max(CANDIDATES_PER_RETRIEVER, k))
    _, dense_rows = index.vectors.search(query_vector.reshape(1, -1).astype(np.float32), depth)
    lexical = index.lexical.scores(question)
    top_lexical = lexical.max() if lexical.size else 0.0
    lexical_norm = lexical / top_lexical * index.lexical.known_share(question) if top_lexical > 0 else lexical
    candidates = {int(r) for r in dense_rows[0] if r >= 0}
    if top_lexical > 0:
        top = np.argpartition(-lexical, depth - 1)[:depth] if depth < n else np.arange(n)
        candidates.update(int(r) for r in top if lexical[r] > 0)
    rows = np.fromiter(candidates, dtype=np.int64)
    dense = index.passage_vectors[rows] @ query_vector.reshape(-1)
    fused = dense + lexical_weight * lexical_norm[rows]
    order = np.argsort(-fused)[:k]
    return [Hit(int(rows[i]), float(fused[i]), float(dense[i]), float(lexical_norm[rows[i]])) for i in order]

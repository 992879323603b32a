"""The figures of an evaluation, per question: SQuAD's exact match and token F1, whether an answer holds a gold
string as whole words, and the ranks retrieval gives the gold."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np


MRR_CUTOFF = 10


def _strip_punctuation(text: str) -> str:
    return "".join(ch for ch in text if ch not in string.punctuation and not unicodedata.category(ch).startswith("P"))


def normalize_answer(text: str) -> str:
    """SQuAD-style: lower case, punctuation removed, whitespace collapsed."""
    return " ".join(_strip_punctuation(text.lower()).split())


def _fold(text: str) -> str:
    """For containment: case and whitespace do not matter (cleaning collapses whitespace)."""
    return " ".join(text.replace("\u00a0", " ").casefold().split())


def _whole_words(gold: str) -> re.Pattern:
    """The folded gold, not as part of a longer word: "dua" is not in "kedua", "70" is not in "1970"."""
    left = r"(?<!\w)" if gold[0].isalnum() or gold[0] == "_" else ""
    right = r"(?!\w)" if gold[-1].isalnum() or gold[-1] == "_" else ""
    return re.compile(left + re.escape(gold) + right)


def contains_gold(text: str | None, golds: Iterable[str]) -> bool:
    """Does text contain one of the gold strings as whole words (case-insensitive, whitespace collapsed)?"""
    if not text:
        return False
    folded = _fold(text)
    return any(_whole_words(gold).search(folded) for gold in map(_fold, golds) if gold)


def token_f1(prediction: str | None, gold: str) -> float:
    if prediction is None:
        return 0.0
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common: dict[str, int] = {}
    for token in gold_tokens:
        common[token] = common.get(token, 0) + 1
    overlap = 0
    for token in pred_tokens:
        if common.get(token, 0) > 0:
            overlap += 1
            common[token] -= 1
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def max_token_f1(prediction: str | None, golds: Sequence[str]) -> float:
    """Best token F1 over the gold answers; 0 for no prediction (an abstention)."""
    return max((token_f1(prediction, gold) for gold in golds), default=0.0)


def exact_match(prediction: str | None, golds: Sequence[str]) -> bool:
    return prediction is not None and any(normalize_answer(prediction) == normalize_answer(g) for g in golds)


def first_gold_rank(ranked: Sequence[str], gold: set[str] | frozenset[str]) -> int | None:
    """1-based rank of the first item of `ranked` that is in `gold`, or None."""
    for rank, item in enumerate(ranked, 1):
        if item in gold:
            return rank
    return None


def recall_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None, cutoff: int = MRR_CUTOFF) -> float:
    return 1.0 / rank if rank is not None and rank <= cutoff else 0.0


def answer_passage_rank(index, hits, golds: Sequence[str], gold_docs: set[str]) -> int | None:
    """1-based rank of the first retrieved passage that holds a gold answer string (in a gold document, when the
    question names its documents), or None. Finer than the document rank where a document has many passages."""
    for rank, hit in enumerate(hits, 1):
        passage = index.passages[hit.passage_row]
        if (not gold_docs or passage.doc_id in gold_docs) and contains_gold(passage.text, golds):
            return rank
    return None


def ranked_documents(doc_ids: Iterable[str]) -> list[str]:
    """Documents in the order of their best passage (first appearance)."""
    return list(dict.fromkeys(doc_ids))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, interpolated linearly between the closest ranks (numpy's default); nan of no values."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def percentiles(values: Sequence[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {
        "p50": round(percentile(array, 50), 2),
        "p95": round(percentile(array, 95), 2),
        "p99": round(percentile(array, 99), 2),
        "mean": round(float(array.mean()), 2),
        "max": round(float(array.max()), 2),
    }

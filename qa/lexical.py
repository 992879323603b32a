"""Lexical index: BM25 (bm25s) over word tokens, for exact names, numbers and same-language questions."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from collections.abc import Iterable, Mapping
from pathlib import Path

import bm25s
import numpy as np
from bm25s.tokenization import Tokenized

from qa.language import QUESTION_WORDS

# Question words carry the question's type, not its topic.
TYPE_WORDS = QUESTION_WORDS | frozenset("did does do much many".split())
EMPTY = "\u2205"  # bm25s needs a token in every document
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """Indonesian (the stop-words package's list) and English (bm25s's short list) stop words."""
    from bm25s.stopwords import STOPWORDS_EN
    from stop_words import get_stop_words

    return frozenset(w.lower() for w in get_stop_words("id")) | frozenset(STOPWORDS_EN) | TYPE_WORDS


def tokenize(text: str) -> list[str]:
    """Lower-cased word and number tokens without stop words; hyphenated words also yield their parts."""
    stop = stopwords()
    tokens = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group()
        if token in stop or len(token) < 2:
            continue
        tokens.append(token)
        if "-" in token:
            tokens.extend(part for part in token.split("-") if part not in stop and len(part) > 1)
    return tokens


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25 | None, size: int) -> None:
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: Iterable[str], count: int | None = None) -> LexicalIndex:
        """BM25 over the texts, in order. Tokens become integer ids as they come, so a large collection is never
        held as lists of strings."""
        vocab: dict[str, int] = {}
        ids = []
        for text in texts:
            ids.append([vocab.setdefault(token, len(vocab)) for token in tokenize(text) or [EMPTY]])
        if not ids:
            return cls(None, 0)
        retriever = bm25s.BM25()
        retriever.index(Tokenized(ids=ids, vocab=vocab), show_progress=False)
        return cls(retriever, len(ids))

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "size").write_text(str(self.size))
        if self._retriever is not None:
            self._retriever.save(str(path))

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        size = int((path / "size").read_text())
        retriever = bm25s.BM25.load(str(path), mmap=True, show_progress=False) if size else None
        return cls(retriever, size)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for the query (zeros when no query word is indexed)."""
        if self._retriever is None:
            return np.zeros(self.size, dtype=np.float32)
        vocab = self._retriever.vocab_dict
        tokens = [t for t in tokenize(query) if t in vocab]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)

    def known_share(self, query: str) -> float:
        """How much of the query this index's passages can match at all (the function below, on this index)."""
        tokens = tokenize(query)
        if self._retriever is None or not tokens:
            return 0.0
        vocab, indptr = self._retriever.vocab_dict, self._retriever.scores["indptr"]
        frequency = {token: int(indptr[column + 1] - indptr[column])
                     for token in set(tokens) if (column := vocab.get(token)) is not None}
        return known_share(tokens, frequency, self.size)


def known_share(tokens: list[str], passages_with: Mapping[str, int], size: int) -> float:
    """How much of a query the index can match at all: the idf-weighted share of its words that occur in some
    passage (`passages_with`: how many of the `size` passages hold each word; a word no passage has weighs as
    much as the rarest). An English question over Indonesian passages shares few words, so its lexical evidence
    counts for little."""
    rarest = math.log(1 + size)
    known = total = 0.0
    for token in tokens:
        count = passages_with.get(token)
        if count is None:
            total += rarest
            continue
        weight = math.log(1 + size / max(1, count))
        known += weight
        total += weight
    return known / total if total else 0.0

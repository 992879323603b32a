"""From the reader's logits to spans: the best span of a window and its margin over "no answer". numpy only,
shared by training (held-out scoring) and the runtime."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True)
class WindowSpan:
    score: float  # start + end logit of the best span
    null: float  # start + end logit of the first token: "no answer here"
    first: int  # context token indexes (into the window's context tokens), inclusive
    last: int

    @property
    def margin(self) -> float:
        return self.score - self.null


def best_span(start: np.ndarray, end: np.ndarray, offset: int, count: int,
              max_tokens: int = MAX_ANSWER_TOKENS) -> WindowSpan:
    """The best span of at most `max_tokens` among the `count` context tokens at `offset`."""
    s = start[offset:offset + count].astype(np.float64)
    e = end[offset:offset + count].astype(np.float64)
    scores = s[:, None] + e[None, :]
    i, j = np.indices(scores.shape)
    scores[(j < i) | (j - i >= max_tokens)] = -np.inf
    first, last = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return WindowSpan(float(scores[first, last]), float(start[0] + end[0]), int(first), int(last))

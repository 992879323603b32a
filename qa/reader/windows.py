"""Question and context as the reader's input: `<s> question </s></s> context </s>`, context split into
overlapping windows, every context token carrying the character offsets it covers in the context.

Each whitespace word is tokenized alone, so a token never straddles two words and a span of tokens maps to a
slice of the original text. Inside a word, pieces are matched to the word's characters; where the tokenizer's
normalization changed a character (so a piece no longer matches), the word's characters are shared among its
pieces by length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from qa.e5.tokenizer import METASPACE, E5Tokenizer

MAX_QUESTION_TOKENS = 48
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ContextTokens:
    ids: tuple[int, ...]
    starts: tuple[int, ...]  # character offsets into the context
    ends: tuple[int, ...]


@dataclass(frozen=True)
class Window:
    """One model input. Context token i of the window sits at sequence position `offset + i`."""

    ids: tuple[int, ...]
    offset: int  # position of the first context token
    first: int  # index of the window's first token in the context's token list
    count: int  # context tokens in the window


class WordTokenizer:
    """Tokenizes text word by word with character offsets; words are cached (news text repeats its words)."""

    def __init__(self, tokenizer: E5Tokenizer, pieces: list[str], bos: int, eos: int):
        self.tokenizer = tokenizer
        self.pieces = pieces
        self.bos, self.eos = bos, eos
        self._word = lru_cache(maxsize=200_000)(self._word_uncached)

    def _word_uncached(self, word: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        ids = self.tokenizer.content_ids(word)
        texts = [self.pieces[i].lstrip(METASPACE) for i in ids]
        spans, cursor = [], 0
        for text in texts:
            if text and word.startswith(text, cursor):
                spans.append((cursor, cursor + len(text)))
                cursor += len(text)
            else:
                break
        if len(spans) < len(ids) or cursor != len(word):
            spans = _by_length(len(word), [max(1, len(t)) for t in texts])
        return tuple(ids), tuple(spans)

    def question_ids(self, question: str) -> list[int]:
        return self.tokenizer.content_ids(question)[:MAX_QUESTION_TOKENS]

    def context(self, text: str) -> ContextTokens:
        ids, starts, ends = [], [], []
        for match in _WORD.finditer(text):
            word_ids, spans = self._word(match.group())
            ids.extend(word_ids)
            starts.extend(match.start() + s for s, _ in spans)
            ends.extend(match.start() + e for _, e in spans)
        return ContextTokens(tuple(ids), tuple(starts), tuple(ends))

    def windows(self, question_ids: list[int], context: ContextTokens, max_tokens: int,
                stride: int) -> list[Window]:
        """Windows of at most `max_tokens`, each new one starting `stride` context tokens after the last."""
        head = [self.bos, *question_ids, self.eos, self.eos]
        budget = max(8, max_tokens - len(head) - 1)
        total = len(context.ids)
        windows, first = [], 0
        while True:
            count = min(budget, total - first)
            windows.append(Window(tuple(head) + context.ids[first:first + count] + (self.eos,), len(head),
                                  first, count))
            if first + count >= total:
                return windows
            first += min(stride, budget)


def _by_length(n_chars: int, lengths: list[int]) -> tuple[tuple[int, int], ...]:
    """`n_chars` characters shared among pieces in proportion to their lengths (each piece at least one
    character while characters last)."""
    total = sum(lengths)
    spans, start, acc = [], 0, 0
    for i, length in enumerate(lengths):
        acc += length
        end = n_chars if i == len(lengths) - 1 else min(n_chars, max(start + 1, round(n_chars * acc / total)))
        spans.append((start, end))
        start = end
    return tuple(spans)


def token_span(context: ContextTokens, window: Window, char_start: int, char_end: int) -> tuple[int, int] | None:
    """Sequence positions of the first and last token of the answer at [char_start, char_end) inside the
    window, or None where the window does not hold the whole answer."""
    first = last = None
    for i in range(window.first, window.first + window.count):
        if first is None and context.ends[i] > char_start:
            first = i
        if context.starts[i] < char_end:
            last = i
    if first is None or last is None or last < first:
        return None
    if context.starts[first] > char_start + 2 or context.ends[last] < char_end - 2:
        return None  # the answer begins or ends outside this window
    return window.offset + first - window.first, window.offset + last - window.first

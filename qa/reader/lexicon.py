"""A word lexicon from Indonesian to English induced from the bundled encoder, and code-switched questions made
with it: training pairs of the shape most people ask in (English words over an Indonesian passage), which the
training data does not have.

No bilingual dictionary can be downloaded here, but multilingual-e5 puts a word and its translation close
together: each Indonesian question word of the training data is paired with the English word of the training
data nearest to it, kept only when the two are each other's nearest (mutual nearest neighbours, the usual
precision filter of lexicon induction) and close enough. A code-switched question replaces a share of an
Indonesian question's lower-case words with their English words ("kapan rusia memveto resolusi itu?" ->
"when russia veto resolution itu?"): names, numbers and word order stay, as in dictionary code-switching
augmentation for cross-lingual transfer.

The other direction switches passages: an English question over its English passage with a share of the
passage's lower-case words put into Indonesian by an English -> Indonesian lexicon (a JSON file, e.g. from a
bilingual dictionary), the answer itself left verbatim. That is the shape of the product's commonest question, an
English question over Indonesian text, with a natural English question.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.language import WORD

if TYPE_CHECKING:
    from qa.reader.data import Example

WORD_SHARE = 0.7  # of the words the lexicon knows, the share a code-switched question replaces
MIN_COSINE = 0.9  # for mutual nearest neighbours
MIN_COSINE_ONE_WAY = 0.92  # for a word whose nearest English word has a nearer Indonesian one


def vocabulary(texts: Iterable[str], min_count: int = 1) -> list[str]:
    """Lower-case words of at least two letters, most frequent first."""
    counts = Counter(w.lower() for text in texts for w in WORD.findall(text) if len(w) > 1)
    return [w for w, n in counts.most_common() if n >= min_count]


def induce_lexicon(source: list[str], source_vectors: np.ndarray, target: list[str], target_vectors: np.ndarray,
                   ) -> dict[str, str]:
    """source word -> its nearest target word (unit vectors), when the two are mutual nearest neighbours at
    cosine MIN_COSINE or more, or the pair is closer than MIN_COSINE_ONE_WAY."""
    similarity = source_vectors @ target_vectors.T
    nearest_target = similarity.argmax(axis=1)
    nearest_source = similarity.argmax(axis=0)
    lexicon = {}
    for s, (word, t) in enumerate(zip(source, nearest_target)):
        cosine = similarity[s, t]
        if word != target[t] and (cosine >= MIN_COSINE_ONE_WAY or (nearest_source[t] == s and cosine >= MIN_COSINE)):
            lexicon[word] = target[t]
    return lexicon


def code_switch(question: str, lexicon: dict[str, str], share: float, rng: random.Random) -> str:
    """The question with each lower-case word that the lexicon knows replaced by its translation with
    probability `share`."""
    def swap(match: re.Match) -> str:
        word = match.group()
        first = match.start() == len(question) - len(question.lstrip())
        lower = word.lower() if first and word[1:].islower() else word  # "Kapan" starts a sentence, "Rusia" is a name
        if lower.islower() and lower in lexicon and rng.random() < share:
            return lexicon[lower].capitalize() if lower != word else lexicon[lower]
        return word
    return WORD.sub(swap, question)


# English endings undone to find a word's lexicon entry: (ending, what replaces it), tried in order.
ENGLISH_ENDINGS = (("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
                   ("ing", ""))


def english_translation(word: str, lexicon: dict[str, str]) -> str | None:
    """The lexicon's translation of a lower-case English word or of its stem ("signed" -> "sign")."""
    if word in lexicon:
        return lexicon[word]
    for ending, stem_end in ENGLISH_ENDINGS:
        stem = word[:-len(ending)] + stem_end
        if word.endswith(ending) and len(stem) >= 3 and stem in lexicon:
            return lexicon[stem]
    return None


def switch_words(text: str, lexicon: dict[str, str], share: float, rng: random.Random) -> str:
    """The text with each lower-case word whose translation the lexicon knows replaced with probability `share`
    (names, which are capitalised, stay)."""
    def swap(match: re.Match) -> str:
        word = match.group()
        translation = english_translation(word, lexicon) if word.islower() else None
        return translation if translation and rng.random() < share else word
    return WORD.sub(swap, text)


def passage_switched(example: Example, lexicon: dict[str, str], share: float, rng: random.Random) -> Example:
    """An answerable example with the words of its passage outside the answer switched
    (`switch_words`), the answer verbatim at its new offset."""
    start, end = example.answer_start, example.answer_start + len(example.answer_text)
    before = switch_words(example.context[:start], lexicon, share, rng)
    after = switch_words(example.context[end:], lexicon, share, rng)
    return replace(example, context=before + example.answer_text + after, answer_start=len(before),
                   source=example.source + "-passage-switched")


def build_lexicon(indonesian_texts: Iterable[str], english_texts: Iterable[str], embedder,
                  cache: Path | None = None) -> dict[str, str]:
    """Induce (or read back from `cache`) the Indonesian -> English lexicon of these texts' words."""
    if cache is not None and cache.exists():
        return json.loads(cache.read_text(encoding="utf-8"))
    indonesian = vocabulary(indonesian_texts)
    english = vocabulary(english_texts, min_count=3)
    lexicon = induce_lexicon(indonesian, embedder.encode_queries(indonesian), english,
                             embedder.encode_queries(english))
    if cache is not None:
        cache.write_text(json.dumps(lexicon, ensure_ascii=False, indent=0), encoding="utf-8")
    return lexicon

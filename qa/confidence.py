"""The confidence of an answer in words, as the chat shows it and `qa eval` measures it.

The confidence is calibrated on Wikipedia-style held-out questions, and on questions about the news articles it
runs low for answers that are mostly right: of the tuning set's answers from 0.3 up, 26 of 30 were right, and
below 0.3, 16 of 37 (docs/evaluation.md, "confidence in words"). Mirrored in web/static/app.js.
"""

from __future__ import annotations

# (lowest confidence, words for a reader, css level), most confident first
CONFIDENCE_BANDS = ((0.85, "High confidence", "high"), (0.3, "Fairly sure", "medium"), (0.0, "Low confidence", "low"))
CONFIDENCE_WORDS = tuple(words for _, words, _ in CONFIDENCE_BANDS)


def confidence_words(confidence: float) -> tuple[str, str]:
    """(words for a reader, css level)."""
    for lowest, words, level in CONFIDENCE_BANDS:
        if confidence >= lowest:
            return words, level
    return CONFIDENCE_BANDS[-1][1:]

"""The confidence of an answer in words, as the chat shows it and `qa eval` measures it.

The confidence is calibrated on Wikipedia-style held-out questions, and on questions about the news articles it
runs low for answers that are mostly right: of the tuning set's answers from 0.3 up, 26 of 30 were right, and
below 0.3, 16 of 37 (docs/evaluation.md, "confidence in words"), so an answer below 0.3 also comes with a
warning. Mirrored in web/static/app.js.
"""

from __future__ import annotations

# (lowest confidence, words for a reader, css level), most confident first
CONFIDENCE_BANDS = ((0.85, "High confidence", "high"), (0.3, "Fairly sure", "medium"), (0.0, "Low confidence", "low"))
CONFIDENCE_WORDS = tuple(words for _, words, _ in CONFIDENCE_BANDS)
# Under an answer of the lowest band, whose answers were right about half the time on the project's question files
# (53 of 105 on five of them; 30-43% before the reader's 8-bit products changed on 2026-12-07, docs/evaluation.md):
# the label alone reads like a hedge, not a warning.
LOW_CONFIDENCE_NOTE = "Answers this unsure are right only about half the time: check it against the quoted sentence."


def confidence_note(confidence: float) -> str | None:
    """What the chat says under an answer of this confidence, beside its words; None for nothing."""
    return LOW_CONFIDENCE_NOTE if confidence_words(confidence)[1] == "low" else None


def confidence_words(confidence: float) -> tuple[str, str]:
    """(words for a reader, css level)."""
    for lowest, words, level in CONFIDENCE_BANDS:
        if confidence >= lowest:
            return words, level
    return CONFIDENCE_BANDS[-1][1:]

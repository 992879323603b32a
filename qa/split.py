"""Split stage: sentences (with sentencex) and passages of a few sentences with a small overlap.

Every span is an offset pair into the cleaned document text, so `text[start:end]` is the sentence or
passage itself. Paragraph breaks are always sentence breaks (headlines and timeline lines carry no period).
"""

from __future__ import annotations

import re
from sentencex import segment

from qa.records import Document, Passage, Span

_PARAGRAPH = re.compile(r"[^\n]+(?:\n(?!\n)[^\n]+)*")


def paragraph_spans(text: str) -> list[Span]:
    return [Span(m.start(), m.end()) for m in _PARAGRAPH.finditer(text) if m.group().strip()]


# sentencex's Indonesian rules; they also handle English punctuation and abbreviations.
SENTENCE_LANGUAGE = "id"

# Abbreviations sentencex's Indonesian list lacks. Titles and address/region prefixes are always followed
# by a name or number, so a break after them is never a sentence end; list endings ("dll.") and company
# suffixes ("Tbk.") can end a sentence, so a break after them stands unless the next part starts in lower case.
_PREFIX_ABBREVIATIONS = frozenset(
    "Jl Jln Gg Kab Kec Kel Prov Ir Prof Dr dr drg Drs Dra Hj KH Bpk Sdr Sdri Yth Tn Ny Nn "
    "Jend Letjen Mayjen Brigjen Kol Letkol Kapt Lettu Kompol AKBP AKP Ipda Iptu Aiptu Brigpol".split()
)
_LIST_ABBREVIATIONS = frozenset("dll dsb dst dkk tsb Tbk etc No".split())
# Every word a full stop may belong to rather than end a sentence with: the above and English titles.
ABBREVIATIONS = _PREFIX_ABBREVIATIONS | _LIST_ABBREVIATIONS | frozenset(
    "Mr Mrs Ms Jr Sr St Inc Co Ltd Corp Gen Lt".split())
_LAST_WORD = re.compile(r"(?:^|[\s(\[\"'“‘])([^\W\d_]+)\.$")


def _joins_next(sentence: str, following: str) -> bool:
    """True when sentencex broke after an abbreviation that does not end this sentence."""
    match = _LAST_WORD.search(sentence)
    if not match:
        return False
    word = match.group(1)
    if word in _PREFIX_ABBREVIATIONS:
        return True
    return word in _LIST_ABBREVIATIONS and not following[:1].isupper()


def sentence_spans(text: str) -> list[Span]:
    """Sentence boundaries in text, as document offsets, whitespace trimmed."""
    spans: list[Span] = []
    for para in paragraph_spans(text):
        chunk = text[para.start:para.end]
        cursor = 0
        para_spans: list[Span] = []
        for sentence in segment(SENTENCE_LANGUAGE, chunk):
            stripped = sentence.strip()
            if not stripped:
                continue
            found = chunk.find(stripped, cursor)
            if found < 0:  # the segmenter altered the text; fall back to the whole paragraph remainder
                found = cursor
                stripped = chunk[cursor:].strip()
            start = para.start + found
            span = Span(start, start + len(stripped))
            if para_spans and _joins_next(text[para_spans[-1].start:para_spans[-1].end], stripped):
                span = Span(para_spans.pop().start, span.end)
            para_spans.append(span)
            cursor = found + len(stripped)
        spans.extend(piece for span in para_spans for piece in _cut_long(text, span))
    return spans


# A "sentence" longer than this (a page without punctuation, a table flattened to one line) is cut at the last
# space before the limit: one enormous sentence would make one enormous passage, read for seconds per question.
MAX_SENTENCE_CHARS = 1000


def _cut_long(text: str, span: Span, limit: int = MAX_SENTENCE_CHARS) -> list[Span]:
    pieces, start = [], span.start
    while span.end - start > limit:
        cut = text.rfind(" ", start + 1, start + limit + 1)
        cut = cut if cut > start else start + limit  # no space at all: cut inside the word
        pieces.append(Span(start, cut))
        start = cut
        while start < span.end and text[start].isspace():
            start += 1
    if start < span.end:
        pieces.append(Span(start, span.end))
    return pieces


def paragraph_ends(text: str) -> set[int]:
    return {p.end for p in paragraph_spans(text)}


def split_passages(doc: Document, max_sentences: int, overlap: int, max_chars: int,
                   sentences: list[Span] | None = None) -> list[Passage]:
    """Windows of up to max_sentences sentences (and about max_chars), overlapping by `overlap` sentences
    unless a window ends at a paragraph break, where the next one starts fresh. `sentences`: the text's
    sentence_spans, when the caller has them already (splitting is most of the cost)."""
    sentences = sentence_spans(doc.text) if sentences is None else sentences
    breaks = paragraph_ends(doc.text)
    passages: list[Passage] = []
    i = 0
    while i < len(sentences):
        j = i + 1
        while (
            j < len(sentences)
            and j - i < max_sentences
            and sentences[j].end - sentences[i].start <= max_chars
        ):
            j += 1
        window = sentences[i:j]
        start, end = window[0].start, window[-1].end
        passages.append(
            Passage(
                doc_id=doc.doc_id,
                ordinal=len(passages),
                start=start,
                end=end,
                text=doc.text[start:end],
                sentences=tuple(window),
            )
        )
        if j >= len(sentences):
            break
        at_break = window[-1].end in breaks
        i = j if at_break or overlap == 0 else max(i + 1, j - overlap)
    return passages

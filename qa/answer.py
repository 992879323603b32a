"""Answer a question from a loaded index: embed, retrieve, extract, cite, and decide whether to abstain."""

from __future__ import annotations

import math
import re
import time
from urllib.parse import quote, urlencode

from qa.embed import Embedder
from qa.extract import Extraction, ScoredSentence, corpus_facts, extract_answer, rank_sentences
from qa.question import question_type
from qa.records import Answer, Citation, Hit
from qa.retrieve import retrieve
from qa.store import LoadedIndex

SUPPORT_DEPTH = 20  # passages searched for more support of the chosen answer
SUPPORT_MARGIN = 0.06  # a supporting sentence may be this much less similar to the question than the answer's own

# Confidence: a logistic curve over the answer sentence's similarity to the question, calibrated on the
# development set (README, "Confidence and abstention").
CONFIDENCE_CENTER = 0.80
CONFIDENCE_SLOPE = 40.0
CONFIDENCE_COVERAGE = 2.0
CONFIDENCE_UNTYPED = -1.0
# Asked for a date, number or duration and found only a clause: the sentence may be right, the span rarely is.
CONFIDENCE_WRONG_KIND = -3.0
MEASURED_KINDS = ("date", "number", "duration")


def source_url(doc_id: str) -> str:
    return "/sources/" + quote(doc_id, safe="/")


def citation_url(doc_id: str, start: int, end: int, answer: tuple[int, int] | None) -> str:
    """The source view scrolled to the cited passage, with the passage and the answer highlighted."""
    params = {"start": start, "end": end}
    if answer:
        params |= {"astart": answer[0], "aend": answer[1]}
    return f"{source_url(doc_id)}?{urlencode(params)}#cited"


def confidence_of(extraction: Extraction) -> float:
    sentence = extraction.sentence
    z = (CONFIDENCE_SLOPE * (sentence.dense - CONFIDENCE_CENTER)
         + CONFIDENCE_COVERAGE * (extraction.coverage - 0.5)
         + (0.0 if extraction.typed else
            CONFIDENCE_WRONG_KIND if extraction.asked in MEASURED_KINDS else CONFIDENCE_UNTYPED))
    return 1.0 / (1.0 + math.exp(-z))


def _citation(index: LoadedIndex, passage_row: int, score: float, answer: tuple[int, int] | None) -> Citation:
    passage = index.passages[passage_row]
    doc = index.documents[passage.doc_id]
    return Citation(
        doc_id=doc.doc_id,
        title=doc.title,
        url=citation_url(doc.doc_id, passage.start, passage.end, answer),
        source_url=doc.meta.get("source_url"),
        passage=passage.text,
        start=passage.start,
        end=passage.end,
        answer_start=answer[0] if answer else None,
        answer_end=answer[1] if answer else None,
        score=round(float(score), 4),
    )


def _find_in(text: str, needle: str) -> int:
    match = re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", text, re.I)
    return match.start() if match else -1


def supporting_citations(index: LoadedIndex, extraction: Extraction, ranked: list[ScoredSentence],
                         hits: list[Hit], limit: int) -> list[Citation]:
    """The answer's own passage first, then every other retrieved passage whose sentence states the same answer."""
    doc_text = index.documents[extraction.sentence.doc_id].text
    answer_text = doc_text[extraction.start:extraction.end]
    scores = {h.passage_id: h.score for h in hits}
    first = extraction.sentence.passage_row
    citations = [_citation(index, first, scores.get(first, 0.0), (extraction.start, extraction.end))]
    cited_sentences = {(extraction.sentence.doc_id, extraction.sentence.start)}
    cited_passages = {first}
    for sentence in ranked:
        if len(citations) >= limit:
            break
        key = (sentence.doc_id, sentence.start)
        if key in cited_sentences or sentence.passage_row in cited_passages:
            continue
        if sentence.dense < extraction.sentence.dense - SUPPORT_MARGIN:
            continue
        found = _find_in(sentence.text, answer_text)
        if found < 0:
            continue
        start = sentence.start + found
        citations.append(_citation(index, sentence.passage_row, scores.get(sentence.passage_row, 0.0),
                                   (start, start + len(answer_text))))
        cited_sentences.add(key)
        cited_passages.add(sentence.passage_row)
    return citations


def answer_question(index: LoadedIndex, embedder: Embedder, question: str, top_k: int,
                    abstain_below: float, embed_threads: int | None = None) -> Answer:
    started = time.perf_counter()
    query_vector = embedder.encode_queries([question], threads=embed_threads)[0]
    embedded = time.perf_counter()
    hits = retrieve(index, query_vector, question, max(top_k, SUPPORT_DEPTH))
    searched = time.perf_counter()
    qtype = question_type(question)
    # One ranking serves both: hits are sorted, so a sentence of a top-k passage scores the same either way.
    facts = corpus_facts(index)
    support = rank_sentences(index, hits, query_vector)
    read = {h.passage_id for h in hits[:top_k]}
    ranked = [s for s in support if s.passage_row in read]
    extraction = extract_answer(ranked, qtype, question, facts)
    confidence = confidence_of(extraction) if extraction else 0.0
    abstained = extraction is None or confidence < abstain_below

    if abstained:
        citations = [_citation(index, h.passage_id, h.score, None) for h in hits[:top_k]]
        answer = normalized = sentence = None
        sentence_span = (None, None)
    else:
        citations = supporting_citations(index, extraction, support, hits, top_k)
        doc_text = index.documents[extraction.sentence.doc_id].text
        answer = doc_text[extraction.start:extraction.end]
        normalized = extraction.normalized
        sentence = extraction.sentence.text
        sentence_span = (extraction.sentence.start, extraction.sentence.end)
    done = time.perf_counter()
    return Answer(
        question=question,
        answer=answer,
        abstained=abstained,
        confidence=round(confidence, 4),
        normalized=normalized,
        citations=citations,
        sentence=sentence,
        sentence_start=sentence_span[0],
        sentence_end=sentence_span[1],
        timings_ms={
            "embed": round((embedded - started) * 1000, 2),
            "search": round((searched - embedded) * 1000, 2),
            "extract": round((done - searched) * 1000, 2),
            "total": round((done - started) * 1000, 2),
        },
    )

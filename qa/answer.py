"""Answer a question from a loaded index: embed, retrieve, rank sentences, read, cite, and decide whether to
abstain."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from qa.embed import Embedder
from qa.files.reader import LoadedIndex
from qa.language import has_words
from qa.links import citation_url, original_link
from qa.normalize import normalized
from qa.reader.read import Reading, read_answer
from qa.reader.runtime import ReaderRuntime
from qa.records import Answer, Citation, Hit
from qa.retrieve import retrieve
from qa.sentences import ScoredSentence, rank_sentences

SUPPORT_DEPTH = 20  # passages searched for more support of the chosen answer
SUPPORT_MARGIN = 0.06  # a supporting sentence may be this much less similar to the question than the answer's own


def _citation(index: LoadedIndex, passage_row: int, score: float, answer: tuple[int, int] | None) -> Citation:
    passage = index.passages[passage_row]
    doc = index.documents[passage.doc_id]
    return Citation(
        doc_id=doc.doc_id,
        title=doc.title,
        url=citation_url(doc.doc_id, passage.start, passage.end, answer, passage.text),
        source_url=original_link(doc.meta),
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


def supporting_citations(index: LoadedIndex, reading: Reading, ranked: list[ScoredSentence],
                         hits: list[Hit], limit: int) -> list[Citation]:
    """The answer's own passage first, then every other retrieved passage whose sentence states the same answer."""
    doc_text = index.documents[reading.sentence.doc_id].text
    answer_text = doc_text[reading.start:reading.end]
    scores = {h.passage_row: h.score for h in hits}
    first = reading.passage_row
    citations = [_citation(index, first, scores.get(first, 0.0), (reading.start, reading.end))]
    cited_sentences = {(reading.sentence.doc_id, reading.sentence.start)}
    cited_passages = {first}
    for sentence in ranked:
        if len(citations) >= limit:
            break
        key = (sentence.doc_id, sentence.start)
        if key in cited_sentences or sentence.passage_row in cited_passages:
            continue
        if sentence.dense < reading.sentence.dense - SUPPORT_MARGIN:
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


@dataclass
class Evidence:
    """What the pipeline found for one question before deciding whether to answer."""

    hits: list[Hit]
    ranked: list[ScoredSentence]  # sentences of every retrieved passage, best first
    reading: Reading | None
    timings_ms: dict[str, float]


def gather_evidence(index: LoadedIndex, embedder: Embedder, reader: ReaderRuntime, question: str, top_k: int,
                    threads: int = 1) -> Evidence:
    """Embed, retrieve passages, rank their sentences (for the answer's sentence and its supporting citations) and
    read the most promising of the first three (qa.reader.read.passages_to_read). `top_k` bounds only what is
    cited, never which passage is read: the answer is the same for any top_k."""
    started = time.perf_counter()
    query_vector = embedder.encode_queries([question], threads=threads)[0]
    embedded = time.perf_counter()
    hits = retrieve(index, query_vector, question, max(top_k, SUPPORT_DEPTH))
    searched = time.perf_counter()
    # One ranking serves the passage read, the answer's sentence and the supporting citations.
    ranked = rank_sentences(index, hits, query_vector)
    reading = read_answer(reader, question, index, hits, ranked, threads=threads)
    done = time.perf_counter()
    return Evidence(hits, ranked, reading, {"embed": round((embedded - started) * 1000, 2),
                                            "search": round((searched - embedded) * 1000, 2),
                                            "read": round((done - searched) * 1000, 2)})


NO_WORDS = "A question needs words: this one has no letter or digit."  # what a person is told (web/static/app.js too)


def unshouted(question: str) -> str:
    """A question typed in capitals, read in lower case: the models are case-sensitive, and "KAPAN RUSIA
    MEMVETO …" reads as a run of acronyms (on eval/fresh_qa.jsonl in capitals, 16 of 47 right against 29 as
    written and 27 in lower case). Any other question is read as written, its names' capitals included."""
    return question.lower() if question.isupper() else question


def answer_question(index: LoadedIndex, embedder: Embedder, reader: ReaderRuntime, question: str, top_k: int,
                    abstain_below: float | None = None, threads: int = 1) -> Answer:
    """The full pipeline for one question. `abstain_below` overrides the reader's calibrated threshold."""
    started = time.perf_counter()
    if not has_words(question):  # "?" or "...": nothing to look for, and nothing to cite
        return Answer(question=question, answer=None, abstained=True, confidence=0.0, normalized=None, citations=[],
                      timings_ms={"embed": 0.0, "search": 0.0, "read": 0.0, "total": 0.0})
    evidence = gather_evidence(index, embedder, reader, unshouted(question), top_k, threads)
    reading, hits = evidence.reading, evidence.hits
    confidence = reading.confidence if reading else 0.0
    threshold = reader.calibration.threshold_for(question) if abstain_below is None else abstain_below
    abstained = reading is None or confidence < threshold

    if abstained:
        citations = [_citation(index, h.passage_row, h.score, None) for h in hits[:top_k]]
        answer = value = sentence = None
        sentence_span = (None, None)
    else:
        citations = supporting_citations(index, reading, evidence.ranked, hits, top_k)
        answer = index.documents[reading.sentence.doc_id].text[reading.start:reading.end]
        value = normalized(answer)
        sentence = reading.sentence.text
        sentence_span = (reading.sentence.start, reading.sentence.end)
    total = round((time.perf_counter() - started) * 1000, 2)
    return Answer(
        question=question,
        answer=answer,
        abstained=abstained,
        confidence=round(confidence, 4),
        normalized=value,
        citations=citations,
        sentence=sentence,
        sentence_start=sentence_span[0],
        sentence_end=sentence_span[1],
        timings_ms=evidence.timings_ms | {"total": total},
    )

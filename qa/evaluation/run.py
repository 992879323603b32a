"""Running a question file through the product: retrieval measured on its own (as DrQA does), answers through
`QAService.ask`, exactly what a user gets, and the JSON report."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.confidence import CONFIDENCE_WORDS, confidence_words
from qa.config import Settings
from qa.evaluation import EvalError
from qa.evaluation.metrics import (MRR_CUTOFF, answer_passage_rank, contains_gold, exact_match, first_gold_rank,
                                   max_token_f1, percentiles, ranked_documents, recall_at, reciprocal_rank)
from qa.evaluation.questions import EvalQuestion, EvalSet, load_eval_set
from qa.evaluation.significance import interval
from qa.evaluation.squad_corpus import default_cache_dir, prepare_squad_corpus
from qa.validation import top_k_out_of_range

RETRIEVAL_DEPTH = 50  # passages retrieved to rank documents; enough for 10 distinct documents in practice
RECALL_AT = (1, 5)
# Each question's outcome in the JSON report, for comparing two runs question by question
# (benchmarks/compare_evals.py).
PER_QUESTION_FIELDS = ("id", "lang", "kind", "answerable", "hit", "exact", "f1", "sentence_hit", "abstained",
                       "confidence", "gold_rank", "answer_passage_rank")


class RecordingEmbedder:
    """Wraps an Embedder and keeps the last question vectors, so retrieval is measured on the very vector
    the pipeline used without embedding each question twice (embedding is most of the cost)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.last: tuple[list[str], np.ndarray] | None = None

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def encode_queries(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        vectors = self.inner.encode_queries(texts, threads=threads)
        self.last = (list(texts), vectors)
        return vectors

    def query_vector(self, text: str) -> np.ndarray:
        if self.last is not None and self.last[0] == [text]:
            return self.last[1][0]
        return self.encode_queries([text])[0]


def open_service(settings: Settings):
    from qa.embed import ModelLoadError, load_embedder
    from qa import backend
    from qa.service import QAService, ServiceUnavailable

    try:
        generation = backend.current_generation(settings)
    except Exception as exc:  # the database cannot be used: its message says why
        raise EvalError(str(exc)) from None
    if not generation:
        raise EvalError(f"no index in {backend.where(settings)}: build it with `{backend.index_command(settings)}`")
    # Pinned to the generation loaded now: a build finishing mid-run must not change the index under the eval.
    pinned = settings.model_copy(update={"reload_check_interval_s": float("inf")})
    recorder = RecordingEmbedder(None)  # the model is loaded once the index says it is the right one
    service = QAService(pinned, embedder=recorder)
    try:
        state = service.state
    except ServiceUnavailable as exc:
        raise EvalError(f"cannot load the index in {backend.where(settings)}: {exc}") from exc
    built_with = state.index.manifest.get("model")
    if built_with and built_with != settings.model:  # said before another model is loaded, or looked for online
        raise EvalError(f"the index in {backend.where(settings)} was built with model {built_with!r}, not "
                        f"{settings.model!r}: run `qa index` with the same model first")
    try:
        recorder.inner = load_embedder(settings.model, settings.embed_threads)
    except ModelLoadError as exc:
        raise EvalError(str(exc)) from exc
    try:
        service.reader
    except ServiceUnavailable as exc:
        raise EvalError(str(exc)) from exc
    return service


GOLD_CHECK_MAX_DOCUMENTS = 10_000  # above this many articles, gold answers are not looked for in every one


def _gold_documents_dev(question: EvalQuestion, documents: dict) -> set[str]:
    gold = set()
    for doc_id, doc in documents.items():
        source_id = str(doc.meta.get("source_id", "")).lower()
        for source in question.sources:
            hex_id = source.strip().lower()
            if hex_id and (hex_id == source_id or hex_id in doc_id.lower()):
                gold.add(doc_id)
    return gold


def _gold_documents_squad(eval_set: EvalSet, doc_ids: list[str]) -> dict[int, set[str]]:
    """Gold documents per paragraph: its own document and any other holding the very same passage."""
    by_context: dict[str, set[str]] = {}
    for paragraph, doc_id in zip(eval_set.paragraphs, doc_ids):
        by_context.setdefault(" ".join(paragraph.context.split()), set()).add(doc_id)
    return {number: by_context[" ".join(paragraph.context.split())]
            for number, paragraph in enumerate(eval_set.paragraphs)}


def check_run_options(settings: Settings, top_k: int | None, limit: int | None) -> int:
    """The top_k to run with (None: the setting's default); EvalError for options out of range."""
    if limit is not None and limit < 1:
        raise EvalError("--limit must be at least 1")
    top_k = settings.top_k_default if top_k is None else top_k
    if problem := top_k_out_of_range(top_k, settings, "--top-k"):
        raise EvalError(problem)
    return top_k


def evaluate_file(file: Path, settings: Settings, top_k: int | None = None, limit: int | None = None,
                  progress: bool = False, cache_dir: Path | None = None) -> dict:
    """Run every question of a dev-set JSONL or SQuAD file; return the report as plain JSON-ready data."""
    from qa.validation import InvalidQuestion

    file = Path(file)
    top_k = check_run_options(settings, top_k, limit)
    eval_set, data = load_eval_set(file)
    total_questions = len(eval_set.questions)
    questions = eval_set.questions[:limit] if limit else eval_set.questions

    corpus_info = None
    if eval_set.format == "squad":
        corpus = prepare_squad_corpus(eval_set, data, settings, cache_dir or default_cache_dir(settings), progress)
        run_settings = corpus.settings
        corpus_info = {"cache_dir": str(corpus.cache_dir), "reused": corpus.reused, "documents": corpus.documents,
                       "paragraphs": len(eval_set.paragraphs), "skipped": corpus.skipped,
                       "build_seconds": round(corpus.build_seconds, 1)}
    else:
        corpus = None
        run_settings = settings
    service = open_service(run_settings)
    index = service.state.index
    embedder = service.embedder
    squad_gold = _gold_documents_squad(eval_set, corpus.doc_ids) if corpus else {}

    from qa.answer import unshouted
    from qa.retrieve import retrieve

    warnings: list[str] = []
    if corpus and corpus.skipped:
        warnings.append(f"{len(corpus.skipped)} passages were not indexed (cleaning left nothing); "
                        "their questions count as retrieval misses")
    # Load everything first, so latency excludes one-off warm-up costs.
    service.warm()

    from tqdm import tqdm

    rows = []
    latencies: list[float] = []
    parts: dict[str, list[float]] = {}
    not_asked = 0
    for q in tqdm(questions, desc="asking", unit="question", file=sys.stderr, disable=not progress):
        if corpus:
            gold_docs = squad_gold.get(q.paragraph, set()) if q.answerable else set()
        else:
            gold_docs = _gold_documents_dev(q, index.documents)
            if q.sources and not gold_docs:
                warnings.append(f"{q.id}: sources {', '.join(q.sources)} match no document in the index")
            elif q.answerable and len(index.documents) <= GOLD_CHECK_MAX_DOCUMENTS and not any(
                    contains_gold(index.documents[doc_id].text, q.answers) for doc_id in gold_docs or index.documents):
                warnings.append(f"{q.id}: no gold answer occurs in {'its sources' if gold_docs else 'any article'}, "
                                "so it cannot be answered right")
        row = {"id": q.id, "question": q.question, "lang": q.lang, "kind": q.kind, "answerable": q.answerable,
               "gold": q.answers, "gold_docs": sorted(gold_docs)}
        # The full pipeline, as a user gets it.
        started = time.perf_counter()
        try:
            answer = service.ask(q.question, top_k)
        except InvalidQuestion as exc:  # a line of the file no user could ask: named, and left out of the figures
            warnings.append(f"{q.id}: not asked, the service refuses it ({exc})")
            not_asked += 1
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        for part, ms in answer.timings_ms.items():
            parts.setdefault(part, []).append(float(ms))
        row.update(answer=answer.answer, abstained=answer.abstained, confidence=answer.confidence,
                   sentence=answer.sentence, cited_doc=answer.citations[0].doc_id if answer.citations else None)
        # Retrieval alone: the document ranking from retrieve() for the same question vector, before reading.
        asked = unshouted(answer.question)  # what the pipeline searched with
        hits = retrieve(index, embedder.query_vector(asked), asked, max(RETRIEVAL_DEPTH, top_k))
        docs = ranked_documents(index.passages[h.passage_row].doc_id for h in hits)
        row["retrieved_docs"] = docs[:MRR_CUTOFF]
        row["gold_rank"] = first_gold_rank(docs, gold_docs) if gold_docs else None
        row["answer_passage_rank"] = answer_passage_rank(index, hits, q.answers, gold_docs) if q.answerable else None
        rows.append(row)

    return _report(file, eval_set.format, total_questions, rows, latencies, parts, top_k, run_settings, index,
                   corpus_info, warnings, not_asked)


def _metric(values: Sequence[float]) -> dict:
    """A mean over questions with its 95% bootstrap interval (qa.evaluation.significance): what another set of questions
    like these could give."""
    return {"value": round(float(np.mean(values)), 4) if values else None, "n": len(values),
            "ci95": interval(values)}


def _score_row(row: dict) -> None:
    """Add the per-question scores to a row."""
    golds = row["gold"]
    answered = not row["abstained"] and row["answer"] is not None
    if row["answerable"]:
        row["hit"] = answered and contains_gold(row["answer"], golds)
        row["sentence_hit"] = answered and contains_gold(row["sentence"], golds)
        row["f1"] = round(max_token_f1(row["answer"] if answered else None, golds), 4)
        row["exact"] = answered and exact_match(row["answer"], golds)
        row["citation_ok"] = (row["cited_doc"] in row["gold_docs"]) if answered and row["gold_docs"] else None
        row["failed"] = not row["hit"]
    else:
        row["failed"] = not row["abstained"]


def _group_scores(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    scores = {"questions": len(rows)}
    if answerable:
        scores |= {"answerable": len(answerable),
                   "answer_hit_rate": round(float(np.mean([r["hit"] for r in answerable])), 4),
                   "exact_match": round(float(np.mean([r["exact"] for r in answerable])), 4),
                   "token_f1": round(float(np.mean([r["f1"] for r in answerable])), 4)}
    if unanswerable:
        scores |= {"unanswerable": len(unanswerable),
                   "abstention_accuracy": round(float(np.mean([r["abstained"] for r in unanswerable])), 4)}
    return scores


def _report(file: Path, fmt: str, total_questions: int, rows: list[dict], latencies: list[float],
            parts: dict[str, list[float]], top_k: int, settings: Settings, index, corpus_info: dict | None,
            warnings: list[str], not_asked: int = 0) -> dict:
    from qa.backend import where

    for row in rows:
        _score_row(row)
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    with_gold_docs = [r for r in answerable if r["gold_docs"]]
    answered = [r for r in answerable if not r["abstained"]]

    retrieval = {f"recall@{k}": _metric([recall_at(r["gold_rank"], k) for r in with_gold_docs]) for k in RECALL_AT}
    retrieval[f"mrr@{MRR_CUTOFF}"] = _metric([reciprocal_rank(r["gold_rank"]) for r in with_gold_docs])
    with_answers = [r for r in answerable if r["gold"]]
    for k in RECALL_AT:
        retrieval[f"answer_passage_recall@{k}"] = _metric([recall_at(r["answer_passage_rank"], k)
                                                          for r in with_answers])
    answers = {
        "answer_hit_rate": _metric([float(r["hit"]) for r in answerable]),
        "sentence_containment": _metric([float(r["sentence_hit"]) for r in answerable]),
        "token_f1": _metric([r["f1"] for r in answerable]),
        "exact_match": _metric([float(r["exact"]) for r in answerable]),
        "citation_accuracy": _metric([float(r["citation_ok"]) for r in answered if r["citation_ok"] is not None]),
        "abstention_accuracy": _metric([float(r["abstained"]) for r in unanswerable]),
        "false_abstention_rate": _metric([float(r["abstained"]) for r in answerable]),
    }
    by_words: dict[str, list[float]] = {}
    for row in rows:
        if not row["abstained"] and row["answer"] is not None:
            words = confidence_words(row["confidence"])[0]
            by_words.setdefault(words, []).append(float(row["answerable"] and row["hit"]))
    # How often an answer the chat labels with these words was right (near-topic questions count as wrong).
    confidence = {words: _metric(by_words[words]) for words in CONFIDENCE_WORDS if words in by_words}
    breakdown = {}
    for field_name in ("lang", "kind"):
        groups: dict[str, list[dict]] = {}
        for row in rows:
            if row.get(field_name):
                groups.setdefault(row[field_name], []).append(row)
        if len(groups) > 1 or (groups and field_name == "kind"):
            breakdown[field_name] = {name: _group_scores(group) for name, group in sorted(groups.items())}
    failures = [
        {key: row.get(key) for key in ("id", "question", "answerable", "gold", "answer", "abstained", "confidence",
                                       "sentence", "cited_doc", "gold_docs", "gold_rank", "f1")}
        for row in rows if row["failed"]
    ]
    return {
        "file": str(file),
        "format": fmt,
        "questions": {"total_in_file": total_questions, "evaluated": len(rows), "answerable": len(answerable),
                      "unanswerable": len(unanswerable), "with_gold_documents": len(with_gold_docs),
                      "not_asked": not_asked},
        "settings": {"top_k": top_k, "abstain_threshold": settings.abstain_threshold, "model": settings.model,
                     "index_dir": where(settings), "generation": index.generation,
                     "documents": len(index.documents), "passages": len(index.passages)},
        "corpus": corpus_info,
        "retrieval": retrieval,
        "answers": answers,
        "right_by_confidence_words": confidence,
        "breakdown": breakdown,
        "latency_ms": percentiles(latencies),
        "timings_mean_ms": {part: round(float(np.mean(values)), 2) for part, values in parts.items()},
        "warnings": warnings,
        "failures": failures,
        "per_question": [{key: row.get(key) for key in PER_QUESTION_FIELDS} for row in rows],
    }

"""`qa eval FILE`: measure retrieval and answers on a question file.

Two input formats:

- the development set, JSONL: one object a line with `id`, `question`, `answers` (gold strings),
  `sources` (hex ids of the supporting articles) and `answerable` (absent/true/false). Questions run
  against the product's index (the index folder, or the database of QA_DATABASE_URL).
- SQuAD v1.1 (or v2.0) JSON: `data[].paragraphs[].context / qas[]`. Its passages become a corpus of one
  document per distinct paragraph, indexed into a cache folder keyed by the file's sha256 and the index
  settings, so a second run on the same file embeds nothing.

Retrieval and reading are measured apart (as DrQA does): passage recall@1/@5 and MRR@10 come from the
`retrieve()` ranking at the document level, and "answer in a passage @k" from the same ranking at the passage
level (a top-k passage, of a gold document when the question names them, holds a gold answer string); the
answer metrics come from the full pipeline, through
`QAService.ask`, exactly what a user gets. A JSONL question may carry a `lang` and a `kind`; the report then
breaks the answer scores down by each.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.confidence import CONFIDENCE_WORDS, confidence_words
from qa.config import Settings, user_cache_dir
from qa.significance import interval

RETRIEVAL_DEPTH = 50  # passages retrieved to rank documents; enough for 10 distinct documents in practice
MRR_CUTOFF = 10
RECALL_AT = (1, 5)
FAILURES_SHOWN = 5  # in the readable report; the JSON report lists them all
# Each question's outcome in the JSON report, for comparing two runs question by question
# (benchmarks/compare_evals.py).
PER_QUESTION_FIELDS = ("id", "lang", "kind", "answerable", "hit", "exact", "f1", "sentence_hit", "abstained",
                       "confidence", "gold_rank", "answer_passage_rank")
# Bump when the way a SQuAD file becomes a corpus changes, so cached indexes are rebuilt.
SQUAD_CORPUS_VERSION = 1
READY_FILE = "ready.json"


class EvalError(Exception):
    """The evaluation cannot run; the message says why, for the user."""


# --------------------------------------------------------------------------------------------------
# Questions and input formats


@dataclass
class EvalQuestion:
    id: str
    question: str
    answers: list[str]
    answerable: bool = True
    lang: str | None = None
    kind: str | None = None  # what the question asks for (who, when, ...), where the file says
    sources: list[str] = field(default_factory=list)  # dev set: hex source ids
    paragraph: int | None = None  # SQuAD: number of the paragraph (document) that answers it


@dataclass
class Paragraph:
    title: str
    context: str


@dataclass
class EvalSet:
    format: str  # "jsonl" or "squad"
    questions: list[EvalQuestion]
    paragraphs: list[Paragraph] = field(default_factory=list)  # SQuAD only


def read_eval_text(file: Path) -> tuple[bytes, str]:
    if not file.exists():
        raise EvalError(f"{file}: no such file")
    if file.is_dir():
        raise EvalError(f"{file} is a folder; give a JSONL or SQuAD-format JSON file")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise EvalError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalError(f"{file} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc
    if not text.strip():
        raise EvalError(f"{file} is empty")
    return data, text


def _string_list(value: object, where: str, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EvalError(f"{where}: `{name}` must be a list of strings")
    return [v for v in value if v.strip()]


def _jsonl_question(obj: object, where: str, number: int) -> EvalQuestion:
    if not isinstance(obj, dict):
        raise EvalError(f"{where}: expected a JSON object with a `question`, got {type(obj).__name__}")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalError(f"{where}: `question` must be a non-empty string")
    answerable = obj.get("answerable", True)
    if answerable is None:
        answerable = True
    if not isinstance(answerable, bool):
        raise EvalError(f"{where}: `answerable` must be true or false")
    answers = _string_list(obj.get("answers"), where, "answers")
    if answerable and not answers:
        raise EvalError(f"{where}: an answerable question needs at least one string in `answers` "
                        "(set \"answerable\": false for a question the articles do not answer)")
    if not answerable and answers:
        raise EvalError(f"{where}: a question marked \"answerable\": false has `answers`: remove them, or the "
                        "\"answerable\": false")
    lang, kind = obj.get("lang"), obj.get("kind")
    return EvalQuestion(
        id=str(obj.get("id") or f"line{number}"),
        question=question.strip(),
        answers=answers if answerable else [],
        answerable=answerable,
        lang=lang if isinstance(lang, str) else None,
        kind=kind if isinstance(kind, str) else None,
        sources=_string_list(obj.get("sources"), where, "sources") if answerable else [],
    )


def parse_json(text: str) -> object:
    """json.loads, with nesting too deep for Python's parser reported as a JSONDecodeError like any bad JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def jsonl_objects(text: str, name: str) -> Iterator[tuple[str, int, object]]:
    """(where, line number, parsed value) of every non-blank line; EvalError naming the line that is not JSON."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            yield where, number, parse_json(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None


def parse_jsonl(text: str, name: str = "input") -> EvalSet:
    questions = []
    for where, number, obj in jsonl_objects(text, name):
        questions.append(_jsonl_question(obj, where, number))
    if not questions:
        raise EvalError(f"{name} holds no questions")
    return EvalSet("jsonl", questions)


def parse_squad(obj: dict, name: str = "input") -> EvalSet:
    data = obj.get("data")
    if not isinstance(data, list):
        raise EvalError(f"{name}: `data` must be a list of articles (SQuAD format)")
    paragraphs: list[Paragraph] = []
    questions: list[EvalQuestion] = []
    for a, article in enumerate(data):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise EvalError(f"{name}: data[{a}] must be an object with a `paragraphs` list")
        title = article.get("title")
        title = title.replace("_", " ").strip() if isinstance(title, str) else ""
        for p, para in enumerate(article["paragraphs"]):
            where = f"{name}: data[{a}].paragraphs[{p}]"
            if not isinstance(para, dict) or not isinstance(para.get("context"), str) \
                    or not isinstance(para.get("qas"), list):
                raise EvalError(f"{where} must have a `context` string and a `qas` list")
            if not para["context"].strip():
                raise EvalError(f"{where}: empty `context`")
            paragraphs.append(Paragraph(title, para["context"]))
            for q, qa in enumerate(para["qas"]):
                qwhere = f"{where}.qas[{q}]"
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not qa["question"].strip():
                    raise EvalError(f"{qwhere} must have a non-empty `question` string")
                answers = qa.get("answers") or []
                if not isinstance(answers, list) or not all(isinstance(x, dict) and isinstance(x.get("text"), str)
                                                            for x in answers):
                    raise EvalError(f"{qwhere}: `answers` must be a list of {{\"text\": ...}} objects")
                texts = list(dict.fromkeys(x["text"] for x in answers if x["text"].strip()))
                answerable = not qa.get("is_impossible", False)  # SQuAD 2.0
                if answerable and not texts:
                    raise EvalError(f"{qwhere}: no answer text (SQuAD 2.0 files mark these \"is_impossible\": true)")
                questions.append(EvalQuestion(
                    id=str(qa.get("id") or f"q{len(questions) + 1}"),
                    question=qa["question"].strip(),
                    answers=texts if answerable else [],
                    answerable=answerable,
                    paragraph=len(paragraphs) - 1,
                ))
    if not questions:
        raise EvalError(f"{name} holds no questions")
    return EvalSet("squad", questions, paragraphs)


def load_eval_set(file: Path) -> tuple[EvalSet, bytes]:
    """Read a dev-set JSONL or SQuAD JSON file; EvalError with a clear message for anything else."""
    data, text = read_eval_text(file)
    name = str(file)
    try:
        whole = parse_json(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and "data" in whole:
        return parse_squad(whole, name), data
    if isinstance(whole, dict) and "question" in whole:  # a JSONL file of one line
        return parse_jsonl(text, name), data
    if whole is not None:
        raise EvalError(f"{name} is JSON but in no supported format: expected SQuAD JSON (an object with a `data` "
                        "list), question JSONL (one object with `question` and `answers` a line) or conversation "
                        "JSONL (one object with `turns` a line)")
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        parse_json(first)
    except json.JSONDecodeError as exc:
        if first.lstrip().startswith(("{", "[")):
            raise EvalError(f"{name} is not valid JSON or JSONL: line 1: {exc.msg} at column {exc.colno}") from None
        raise EvalError(f"{name} is neither SQuAD JSON nor JSONL (its first line is not JSON)") from None
    return parse_jsonl(text, name), data


# --------------------------------------------------------------------------------------------------
# Metrics


def _strip_punctuation(text: str) -> str:
    return "".join(ch for ch in text if ch not in string.punctuation and not unicodedata.category(ch).startswith("P"))


def normalize_answer(text: str) -> str:
    """SQuAD-style: lower case, punctuation removed, whitespace collapsed."""
    return " ".join(_strip_punctuation(text.lower()).split())


def _fold(text: str) -> str:
    """For containment: case and whitespace do not matter (cleaning collapses whitespace)."""
    return " ".join(text.replace("\u00a0", " ").casefold().split())


def _whole_words(gold: str) -> re.Pattern:
    """The folded gold, not as part of a longer word: "dua" is not in "kedua", "70" is not in "1970"."""
    left = r"(?<!\w)" if gold[0].isalnum() or gold[0] == "_" else ""
    right = r"(?!\w)" if gold[-1].isalnum() or gold[-1] == "_" else ""
    return re.compile(left + re.escape(gold) + right)


def contains_gold(text: str | None, golds: Iterable[str]) -> bool:
    """Does text contain one of the gold strings as whole words (case-insensitive, whitespace collapsed)?"""
    if not text:
        return False
    folded = _fold(text)
    return any(_whole_words(gold).search(folded) for gold in map(_fold, golds) if gold)


def token_f1(prediction: str | None, gold: str) -> float:
    if prediction is None:
        return 0.0
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common: dict[str, int] = {}
    for token in gold_tokens:
        common[token] = common.get(token, 0) + 1
    overlap = 0
    for token in pred_tokens:
        if common.get(token, 0) > 0:
            overlap += 1
            common[token] -= 1
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def max_token_f1(prediction: str | None, golds: Sequence[str]) -> float:
    """Best token F1 over the gold answers; 0 for no prediction (an abstention)."""
    return max((token_f1(prediction, gold) for gold in golds), default=0.0)


def exact_match(prediction: str | None, golds: Sequence[str]) -> bool:
    return prediction is not None and any(normalize_answer(prediction) == normalize_answer(g) for g in golds)


def first_gold_rank(ranked: Sequence[str], gold: set[str] | frozenset[str]) -> int | None:
    """1-based rank of the first item of `ranked` that is in `gold`, or None."""
    for rank, item in enumerate(ranked, 1):
        if item in gold:
            return rank
    return None


def recall_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None, cutoff: int = MRR_CUTOFF) -> float:
    return 1.0 / rank if rank is not None and rank <= cutoff else 0.0


def answer_passage_rank(index, hits, golds: Sequence[str], gold_docs: set[str]) -> int | None:
    """1-based rank of the first retrieved passage that holds a gold answer string (in a gold document, when the
    question names its documents), or None. Finer than the document rank where a document has many passages."""
    for rank, hit in enumerate(hits, 1):
        passage = index.passages[hit.passage_id]
        if (not gold_docs or passage.doc_id in gold_docs) and contains_gold(passage.text, golds):
            return rank
    return None


def ranked_documents(doc_ids: Iterable[str]) -> list[str]:
    """Documents in the order of their best passage (first appearance)."""
    return list(dict.fromkeys(doc_ids))


def percentiles(values: Sequence[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(array, 50)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
        "p99": round(float(np.percentile(array, 99)), 2),
        "mean": round(float(array.mean()), 2),
        "max": round(float(array.max()), 2),
    }


def _metric(values: Sequence[float]) -> dict:
    """A mean over questions with its 95% bootstrap interval (qa.significance): what another set of questions
    like these could give."""
    return {"value": round(float(np.mean(values)), 4) if values else None, "n": len(values),
            "ci95": interval(values)}


# --------------------------------------------------------------------------------------------------
# The corpus of a SQuAD file


def default_cache_dir(settings: Settings) -> Path:
    return settings.eval_cache_dir.expanduser() if settings.eval_cache_dir else user_cache_dir("eval")


def squad_cache_key(data: bytes, settings: Settings) -> str:
    from qa.indexer import PIPELINE_VERSION
    from qa.store import INDEX_FORMAT

    wanted = {
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "corpus_version": SQUAD_CORPUS_VERSION,
        "pipeline_version": PIPELINE_VERSION,
        "index_format": INDEX_FORMAT,  # a cached index this version cannot open is built again, not reused
        "model": settings.model,
        "passage_sentences": settings.passage_sentences,
        "passage_overlap": settings.passage_overlap,
        "passage_max_chars": settings.passage_max_chars,
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:24]


def _document_text(paragraph: Paragraph) -> str:
    import yaml

    front = yaml.safe_dump({"title": paragraph.title}, allow_unicode=True, default_flow_style=False, width=10_000)
    return f"---\n{front}---\n{paragraph.context.strip()}\n"


def write_squad_corpus(paragraphs: Sequence[Paragraph], corpus_dir: Path) -> list[str]:
    """One .txt file per distinct (title, context); returns the doc_id of every paragraph, in order."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[str, str], str] = {}
    doc_ids = []
    for paragraph in paragraphs:
        key = (paragraph.title, paragraph.context.strip())
        if key not in names:
            name = f"p{len(names) + 1:05d}.txt"
            names[key] = name
            path = corpus_dir / name
            content = _document_text(paragraph)
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
        doc_ids.append(names[key])
    wanted = set(names.values())
    for stale in corpus_dir.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    return doc_ids


@dataclass
class SquadCorpus:
    settings: Settings  # corpus_dir and index_dir point into the cache
    cache_dir: Path
    doc_ids: list[str]  # per paragraph
    reused: bool
    documents: int
    skipped: list[dict]
    build_seconds: float


def prepare_squad_corpus(eval_set: EvalSet, data: bytes, settings: Settings, cache_root: Path,
                         progress: bool) -> SquadCorpus:
    """Write and index the passages of a SQuAD file into the cache, or reuse the cached index."""
    from filelock import FileLock, Timeout

    from qa.embed import ModelLoadError
    from qa.indexer import BuildError, build_index
    from qa.store import current_generation

    cache_dir = cache_root / squad_cache_key(data, settings)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvalError(f"cannot create the eval cache folder {cache_dir}: {exc.strerror or exc} "
                        "(set QA_EVAL_CACHE_DIR to a writable folder)") from exc
    # The passages of a SQuAD file are indexed into the cache folder, never into the database the product serves.
    corpus_settings = settings.model_copy(update={"corpus_dir": cache_dir / "corpus", "index_dir": cache_dir / "index",
                                                  "database_url": None})
    lock = FileLock(str(cache_dir / "prepare.lock"))
    try:
        lock.acquire(timeout=3600)
    except Timeout:
        raise EvalError(f"another eval is still preparing {cache_dir}") from None
    try:
        doc_ids = write_squad_corpus(eval_set.paragraphs, corpus_settings.corpus_dir)
        ready = cache_dir / READY_FILE
        if ready.is_file() and current_generation(corpus_settings.index_dir):
            info = json.loads(ready.read_text(encoding="utf-8"))
            return SquadCorpus(corpus_settings, cache_dir, doc_ids, True, info.get("documents", 0),
                               info.get("skipped", []), 0.0)
        bar = None

        def on_file(done: int, total: int, name: str) -> None:
            nonlocal bar
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(total=total, unit="paragraph", desc="indexing paragraphs", file=sys.stderr)
            bar.update(1)

        try:
            report = build_index(corpus_settings, progress=on_file if progress else None, lock_timeout=600)
        except (BuildError, ModelLoadError) as exc:
            raise EvalError(f"could not index the passages of the SQuAD file: {exc}") from exc
        finally:
            if bar is not None:
                bar.close()
        skipped = [{"path": s.path, "reason": s.reason} for s in report.skipped]
        documents = len(report.added) + len(report.updated) + len(report.unchanged)
        ready.write_text(json.dumps({"documents": documents, "skipped": skipped, "generation": report.generation,
                                     "seconds": round(report.seconds, 1)}, indent=2), encoding="utf-8")
        return SquadCorpus(corpus_settings, cache_dir, doc_ids, False, documents, skipped, report.seconds)
    finally:
        lock.release()


# --------------------------------------------------------------------------------------------------
# Running the questions


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
        raise EvalError(f"no index in {backend.where(settings)}: run `qa index` first")
    try:
        embedder = load_embedder(settings.model, settings.embed_threads)
    except ModelLoadError as exc:
        raise EvalError(str(exc)) from exc
    # Pinned to the generation loaded now: a build finishing mid-run must not change the index under the eval.
    pinned = settings.model_copy(update={"reload_check_interval_s": float("inf")})
    service = QAService(pinned, embedder=RecordingEmbedder(embedder))
    try:
        state = service.state
    except ServiceUnavailable as exc:
        raise EvalError(f"cannot load the index in {backend.where(settings)}: {exc}") from exc
    try:
        service.reader
    except ServiceUnavailable as exc:
        raise EvalError(str(exc)) from exc
    built_with = state.index.manifest.get("model")
    if built_with and built_with != settings.model:
        raise EvalError(f"the index in {settings.index_dir} was built with model {built_with!r}, not "
                        f"{settings.model!r}: run `qa index` with the same model first")
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
    if not 1 <= top_k <= settings.top_k_max:
        raise EvalError(f"--top-k must be between 1 and {settings.top_k_max}")
    return top_k


def evaluate_file(file: Path, settings: Settings, top_k: int | None = None, limit: int | None = None,
                  progress: bool = False, cache_dir: Path | None = None) -> dict:
    """Run every question of a dev-set JSONL or SQuAD file; return the report as plain JSON-ready data."""
    from qa.service import InvalidQuestion

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
        row = {"id": q.id, "question": q.question, "lang": q.lang, "kind": q.kind, "answerable": q.answerable, "gold": q.answers,
               "gold_docs": sorted(gold_docs)}
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
        asked = answer.question
        hits = retrieve(index, embedder.query_vector(asked), asked, max(RETRIEVAL_DEPTH, top_k))
        docs = ranked_documents(index.passages[h.passage_id].doc_id for h in hits)
        row["retrieved_docs"] = docs[:MRR_CUTOFF]
        row["gold_rank"] = first_gold_rank(docs, gold_docs) if gold_docs else None
        row["answer_passage_rank"] = answer_passage_rank(index, hits, q.answers, gold_docs) if q.answerable else None
        rows.append(row)

    return _report(file, eval_set.format, total_questions, rows, latencies, parts, top_k, run_settings, index,
                   corpus_info, warnings, not_asked)


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


# --------------------------------------------------------------------------------------------------
# The readable report

_LABELS = {
    "recall@1": "passage recall@1",
    "recall@5": "passage recall@5",
    f"mrr@{MRR_CUTOFF}": f"MRR@{MRR_CUTOFF}",
    **{f"answer_passage_recall@{k}": f"answer in a passage @{k}" for k in RECALL_AT},
    "answer_hit_rate": "answer hit rate",
    "sentence_containment": "sentence containment",
    "token_f1": "token F1",
    "exact_match": "exact match",
    "citation_accuracy": "citation accuracy",
    "abstention_accuracy": "abstention accuracy (unanswerable)",
    "false_abstention_rate": "false-abstention rate (answerable)",
}


def _short(text: object, width: int = 90) -> str:
    text = " ".join(str(text).split()) if text is not None else "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def format_report(report: dict) -> str:
    q, s = report["questions"], report["settings"]
    lines = [
        f"{report['file']} ({report['format']}): {q['evaluated']} of {q['total_in_file']} questions, "
        f"{q['answerable']} answerable, {q['unanswerable']} unanswerable",
        f"index {s['index_dir']} (generation {s['generation']}, {s['documents']} documents, {s['passages']} passages)",
        f"model {s['model']}, top_k {s['top_k']}, abstain below "
        + ("the reader's calibrated threshold" if s["abstain_threshold"] is None else f"{s['abstain_threshold']:.2f}"),
    ]
    corpus = report.get("corpus")
    if corpus:
        how = "reused" if corpus["reused"] else f"built in {corpus['build_seconds']:.0f}s"
        lines.append(f"corpus: {corpus['documents']} documents from {corpus['paragraphs']} paragraphs ({how})")
    lines.append("")

    table: list[tuple[str, str, str, str]] = []
    for section, title in (("retrieval", "retrieval (from retrieve(); recall and MRR by document)"),
                           ("answers", "answers (full pipeline)"),
                           ("right_by_confidence_words", "answers right, by confidence words")):
        if not report.get(section):
            continue
        table.append((title, "", "", ""))
        for key, metric in report[section].items():
            value = "n/a" if metric["value"] is None else f"{metric['value']:.3f}"
            spread = metric.get("ci95")
            table.append(("  " + _LABELS.get(key, key), value, str(metric["n"]),
                          f"{spread[0]:.3f}–{spread[1]:.3f}" if spread else ""))
    latency = report["latency_ms"]
    table.append(("latency of one ask (ms)", "", "", ""))
    for key in ("p50", "p95", "p99", "mean"):
        value = latency.get(key)
        table.append((f"  {key}", "n/a" if value is None else f"{value:.1f}", "", ""))
    if report["timings_mean_ms"]:
        table.append(("mean timings (ms)", "", "", ""))
        for part, value in report["timings_mean_ms"].items():
            table.append((f"  {part}", f"{value:.1f}", "", ""))
    width = max(len(row[0]) for row in table)
    lines.append(f"{'metric':<{width}}  {'value':>8}  {'n':>5}  95% interval")
    for label, value, n, spread in table:
        lines.append(f"{label:<{width}}  {value:>8}  {n:>5}  {spread}".rstrip() if value else label)

    for field_name, groups in report.get("breakdown", {}).items():
        lines.append("")
        lines.append(f"by {field_name}: {'':<8} {'n':>4} {'hit':>6} {'EM':>6} {'F1':>6} {'abstained (unanswerable)':>26}")
        for name, g in groups.items():
            def cell(key: str) -> str:
                return f"{g[key]:.3f}" if key in g else "-"
            unanswerable = f"{cell('abstention_accuracy')} of {g['unanswerable']}" if "unanswerable" in g else "-"
            lines.append(f"  {name:<16} {g['questions']:>4} {cell('answer_hit_rate'):>6} {cell('exact_match'):>6} "
                         f"{cell('token_f1'):>6} {unanswerable:>26}")
    for warning in report["warnings"][:10]:
        lines.append(f"warning: {warning}")
    if len(report["warnings"]) > 10:
        lines.append(f"... and {len(report['warnings']) - 10} more warnings (see --json)")

    failures = report["failures"]
    lines.append("")
    if not failures:
        lines.append("no failures")
        return "\n".join(lines)
    lines.append(f"failures: {len(failures)} of {q['evaluated']}"
                 + (f" (first {FAILURES_SHOWN}; --json lists all)" if len(failures) > FAILURES_SHOWN else ""))
    for failure in failures[:FAILURES_SHOWN]:
        lines.append(f"  {failure['id']}: {_short(failure['question'])}")
        gold = " | ".join(failure["gold"]) if failure["gold"] else "(unanswerable: should abstain)"
        lines.append(f"    gold:   {_short(gold)}")
        if failure["abstained"]:
            lines.append(f"    answer: (abstained, confidence {failure['confidence']:.2f})")
        else:
            lines.append(f"    answer: {_short(failure['answer'])} (confidence {failure['confidence']:.2f})")
        if failure["answerable"] and failure["gold_docs"]:
            rank = failure["gold_rank"]
            lines.append(f"    gold document rank: {rank if rank is not None else 'not retrieved'}")
    return "\n".join(lines)


__all__ = ["EvalError", "evaluate_file", "format_report", "load_eval_set", "token_f1", "max_token_f1",
           "contains_gold", "first_gold_rank", "recall_at", "reciprocal_rank", "normalize_answer"]

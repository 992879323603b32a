"""How the embedded index scales: build, disk, memory, start-up, search and answer latency, approximate recall.

    python benchmarks/scale.py                       # 10k (real), 100k and 1M (synthetic) passages
    python benchmarks/scale.py --sizes 10k,100k      # some of them
    python benchmarks/scale.py --json                # one JSON object per size

Needs ../shared (train/ and eval/tydiqa_goldp_id_dev.json) beside the project; 1m takes about 7.6 GB of disk
in --work and hours.

Sizes and how they are made:

- **10k, real.** Every distinct paragraph of the SQuAD-format files in ../shared/train/ (TyDi QA id and en,
  IDK-MRC, XQuAD's 12 languages) and of the TyDi QA Indonesian dev file becomes one article (its title line
  and its text), indexed by `build_index` exactly as `qa index` does (really embedded).
- **100k and 1M, synthetic.** Made from the 10k index: its articles are copied over and over (same text,
  offsets and sentences, a new doc id per copy) until the size is reached, and every copied vector (passage and
  sentence) is the real one plus Gaussian noise (sigma 0.02 per dimension, about cosine 0.93 to the original),
  normalised again. Embedding a million passages would take about 15 hours on 2 cores; the synthetic vectors give
  the search the same dimensions and a realistic density (about a hundred near neighbours per real passage).

Each index is then opened in a fresh process, which measures: time from the process starting (imports
included) to its first answer, search latency (retrieve(): FAISS plus BM25 plus fusion) and answer latency
(the whole pipeline, answer cache off) over the TyDi QA dev questions, recall@10 of the vector index against
exact search over the same vectors, and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DIR, at_least_one, command_line, disk_bytes, shared_file  # noqa: E402
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
NOISE = 0.02


def real_paragraphs() -> list[tuple[str, str]]:
    """(title, context) of every distinct paragraph of the training and TyDi dev files."""
    shared_file("train/tydiqa_goldp_id_train.json", "the training files' paragraphs")
    files = sorted((SHARED_DIR / "train").glob("*.json")) + sorted((SHARED_DIR / "train" / "xquad").glob("*.json"))
    files.append(shared_file("eval/tydiqa_goldp_id_dev.json", "the TyDi QA Indonesian dev file"))
    seen, paragraphs = set(), []
    for file in files:
        for article in json.loads(file.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                context = " ".join(paragraph["context"].split())
                if context and context not in seen:
                    seen.add(context)
                    paragraphs.append((article.get("title") or "Untitled", context))
    return paragraphs


def build_real(work: Path) -> dict:
    from qa.config import Settings
    from qa.indexer import build_index

    corpus, index = work / "corpus-10k", work / "index-10k"
    if not (index / "CURRENT").exists():
        corpus.mkdir(parents=True, exist_ok=True)
        for number, (title, context) in enumerate(real_paragraphs()):
            (corpus / f"{number:05d}.txt").write_text(f"{title}\n\n{context}\n", encoding="utf-8")
    started = time.perf_counter()
    report = build_index(Settings(corpus_dir=corpus, index_dir=index))
    seconds = time.perf_counter() - started
    return {"build_seconds": round(seconds, 1), "embedded_passages": report.embedded_passages,
            "passages_per_second": round(report.embedded_passages / seconds, 1) if report.embedded_passages else None}


def build_synthetic(work: Path, size: int, seed: int = 0) -> dict:
    import numpy as np

    from qa.files.reader import load_index
    from qa.files.writer import GenerationWriter
    from qa.records import Document

    target = work / f"index-{size}"
    if (target / "CURRENT").exists():
        return {"build_seconds": None, "reused": True}
    base = load_index(work / "index-10k")
    entries = list(base.entries().values())
    rng = np.random.default_rng(seed)

    def noisy(vectors: np.ndarray) -> np.ndarray:
        out = vectors + rng.normal(0.0, NOISE, vectors.shape).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    started = time.perf_counter()
    writer = GenerationWriter(target, int(base.manifest["dim"]))
    copy = 0
    while writer.passages < size:
        for entry in entries:
            if writer.passages >= size:
                break
            doc = entry.document
            clone = Document(f"copy{copy}/{doc.doc_id}", doc.title, doc.text, doc.meta, doc.sha256)
            writer.add(type(entry)(clone, entry.sentences, noisy(entry.sentence_vectors), entry.passages,
                                   noisy(entry.passage_vectors)))
        copy += 1
    manifest = {key: base.manifest[key] for key in ("model", "dim", "pipeline_version", "passage_sentences",
                                                    "passage_overlap", "passage_max_chars")}
    writer.commit({**manifest, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "synthetic": True})
    return {"build_seconds": round(time.perf_counter() - started, 1), "reused": False}


def questions(limit: int) -> list[str]:
    data = json.loads(shared_file("eval/tydiqa_goldp_id_dev.json", "the TyDi QA Indonesian dev file's questions")
                      .read_text(encoding="utf-8"))
    found = [qa["question"] for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
    return found[:limit]


def latencies(service, index, asked: list[str], vectors) -> tuple[list[float], list[float]]:
    """Milliseconds of retrieve() for each question vector, then of the whole pipeline for each question."""
    from qa.retrieve import retrieve

    search, answer = [], []
    for question, vector in zip(asked, vectors):
        t = time.perf_counter()
        retrieve(index, vector, question, 20)
        search.append((time.perf_counter() - t) * 1000)
    for question in asked:
        t = time.perf_counter()
        service.ask(question)
        answer.append((time.perf_counter() - t) * 1000)
    return search, answer


def latency_figures(search: list[float], answer: list[float]) -> dict:
    """p50 and p99 of the milliseconds `latencies` measured."""
    from qa.evaluation.metrics import percentiles  # after the timings: not among what a serving process pays for

    search_ms, answer_ms = percentiles(search), percentiles(answer)
    return {"search_p50_ms": search_ms["p50"], "search_p99_ms": search_ms["p99"], "answer_p50_ms": answer_ms["p50"],
            "answer_p99_ms": answer_ms["p99"]}


def measure(index_dir: str, count: int) -> dict:
    """Run in a fresh process (see main): everything a serving process pays for."""
    started = float(os.environ["SCALE_STARTED"])
    import numpy as np

    from qa.config import Settings
    from qa.service import QAService

    service = QAService(Settings(index_dir=Path(index_dir), answer_cache_size=0, reload_check_interval_s=1e9))
    asked = questions(count)
    service.ask(asked[0])
    first_answer = time.time() - started
    index, embedder = service.state.index, service.embedder
    vectors = np.concatenate([embedder.encode_queries(asked[i:i + 8], threads=1) for i in range(0, len(asked), 8)])
    search, answer = latencies(service, index, asked, vectors)
    # Before the exact search below, which reads every vector. Resident memory counts the pages of memory-mapped
    # files the process has touched (the kernel may drop them under pressure); anonymous memory is its own.
    peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    anon_mb, file_mb = (round(int(status[key].split()[0]) / 1024) for key in ("RssAnon", "RssFile"))
    recall = reranked_recall = None
    if index.manifest.get("vector_index") == "ivf":
        _, approximate = index.vectors.search(vectors[:100], 10)
        # What retrieve() keeps: the approximate index's 50 candidates re-scored with the exact vectors.
        _, candidates = index.vectors.search(vectors[:100], 50)
        reranked = []
        for row, vector in enumerate(vectors[:100]):
            found = candidates[row][candidates[row] >= 0]
            scores = np.asarray(index.passage_vectors[found]) @ vector
            reranked.append(set(found[np.argsort(-scores)[:10]].tolist()))
        hits = reranked_hits = 0
        for row, vector in enumerate(vectors[:100]):
            best = np.full(10, -np.inf, dtype=np.float32)
            rows = np.full(10, -1)
            for start in range(0, len(index.passages), 200_000):
                scores = np.asarray(index.passage_vectors[start:start + 200_000]) @ vector
                top = np.argpartition(-scores, 10)[:10]
                merged_scores = np.concatenate([best, scores[top]])
                merged_rows = np.concatenate([rows, top + start])
                keep = np.argsort(-merged_scores)[:10]
                best, rows = merged_scores[keep], merged_rows[keep]
            hits += len(set(rows.tolist()) & set(approximate[row].tolist()))
            reranked_hits += len(set(rows.tolist()) & reranked[row])
        recall, reranked_recall = hits / 1000, reranked_hits / 1000
    else:
        recall = reranked_recall = 1.0

    return {"start_to_first_answer_s": round(first_answer, 2), **latency_figures(search, answer),
            "recall_at_10": recall, "recall_at_10_rescored": reranked_recall, "peak_rss_mb": peak_mb, "anon_rss_mb": anon_mb, "file_rss_mb": file_mb,
            "vector_index": index.manifest.get("vector_index"), "passages": len(index.passages),
            "questions": len(asked)}


def sizes(text: str) -> list[str]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names or any(name not in SIZES for name in names):
        raise argparse.ArgumentTypeError(f"sizes are {', '.join(SIZES)} (comma-separated), not {text!r}")
    return names


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--sizes", type=sizes, default="10k,100k,1m", help="comma-separated: 10k, 100k, 1m")
    parser.add_argument("--work", type=Path, default=PROJECT / ".bench" / "scale",
                        help="folder for the indexes (kept: a size built before is reused)")
    parser.add_argument("--questions", type=at_least_one, default=300, help="TyDi QA dev questions asked per size")
    parser.add_argument("--json", action="store_true", help="one JSON object per size")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the fresh measuring process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.questions)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.sizes:
        size = SIZES[name]
        print(f"== {name}: building", file=sys.stderr, flush=True)
        built = build_real(args.work) if size == 10_000 else build_synthetic(args.work, size)
        index = args.work / ("index-10k" if size == 10_000 else f"index-{size}")
        generation = (index / "CURRENT").read_text().strip()
        print(f"== {name}: measuring", file=sys.stderr, flush=True)
        env = {**os.environ, "SCALE_STARTED": repr(time.time())}
        out = subprocess.run([sys.executable, __file__, "--measure", str(index), "--questions", str(args.questions)],
                             env=env, capture_output=True, text=True, check=True)
        row = {"size": name, **built, "disk_mb": round(disk_bytes(index / "generations" / generation) / 1e6),
               **json.loads(out.stdout.strip().splitlines()[-1])}
        results.append(row)
        print(json.dumps(row) if args.json else row, flush=True)


if __name__ == "__main__":
    main()

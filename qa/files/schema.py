"""The embedded store's files and tables: the layout of the index folder, its format and its SQLite schema.

Layout of the index folder:

    index/CURRENT                      name of the generation in use (replaced atomically)
    index/PREVIOUS                     the generation CURRENT named before, kept for readers not yet swapped
    index/generations/<name>/          one complete, immutable index
        store.sqlite                   documents, passages and sentences (text and offsets), manifest
        passages.f32, sentences.f32    their vectors, float32 rows, memory-mapped when loaded
        passages.faiss                 FAISS inner-product index over the passage vectors: exact (flat) for a
                                       collection under APPROXIMATE_FROM passages, else IVF with 8-bit codes,
                                       memory-mapped
        bm25/                          bm25s lexical index over the passages, memory-mapped
    index/build.lock                   held by the one build that may run at a time (qa.files.build)
    index/build.pid                    the process id of that build, while it runs
"""

INDEX_FORMAT = 2
CURRENT_FILE = "CURRENT"
LOCK_FILE = "build.lock"
BUILDING_FILE = "build.pid"  # the process id of the build that holds the lock, while it runs
PREVIOUS_FILE = "PREVIOUS"  # the generation CURRENT named before the last build: kept for readers not yet swapped
GENERATIONS_DIR = "generations"
STORE_FILE = "store.sqlite"  # in each generation: documents, passages, sentences, manifest
TMP_PREFIX = ".tmp-"
KEEP_GENERATIONS = 2  # the current one and the one before, for readers that have not swapped yet
# Exact search up to here; above, an inverted-file index (benchmarks/scale.py measured both, docs/benchmarks.md).
APPROXIMATE_FROM = 50_000
IVF_PROBES = 64  # lists searched per question (of ~4000 at 1 M passages; benchmarks/scale.py measured)

SQLITE_SCHEMA = """
CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL,
                        meta TEXT NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE sentences (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, start INTEGER NOT NULL,
                        end INTEGER NOT NULL);
CREATE TABLE passages (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
                       start INTEGER NOT NULL, end INTEGER NOT NULL,
                       first_sentence INTEGER NOT NULL, last_sentence INTEGER NOT NULL);
"""
SQLITE_INDEXES = """
CREATE INDEX passages_doc ON passages (doc_id);
CREATE INDEX sentences_doc ON sentences (doc_id);
"""

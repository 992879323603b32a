"""Store stage: the on-disk index, its atomic replacement, and reading it without loading it whole.

Layout of the index folder:

    index/CURRENT                      name of the generation in use (replaced atomically)
    index/generations/<name>/          one complete, immutable index
        store.sqlite                   documents, passages and sentences (text and offsets), manifest
        passages.f32, sentences.f32    their vectors, float32 rows, memory-mapped when loaded
        passages.faiss                 FAISS inner-product index over the passage vectors: exact (flat) for a
                                       collection under APPROXIMATE_FROM passages, else IVF with 8-bit codes,
                                       memory-mapped
        bm25/                          bm25s lexical index over the passages, memory-mapped
    index/build.lock                   held by the one build that may run at a time

A build writes a new generation under a temporary name, renames it into place, and only then points
CURRENT at it. A build killed at any moment leaves CURRENT on the previous, complete generation.

Loading a generation reads only its manifest and opens its files: vectors, FAISS lists and BM25 postings are
memory-mapped, and passages, sentences and documents are read from SQLite when asked for (and kept in small
caches). A process serving a million passages holds the pages it touches, not the collection.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.index_rows import (DOCUMENT_COLUMNS, CachedLoader, DocumentEntry, DocumentRows, IndexCorruptError,
                           LexicalScores, NoIndexError, PassageRows, SentenceRows, checked_row, document_from_row)
from qa.lexical import LexicalIndex
from qa.records import Document, Passage, Span

INDEX_FORMAT = 2
CURRENT_FILE = "CURRENT"
BUILDING_FILE = "build.pid"  # the process id of the build that holds the lock, while it runs
PREVIOUS_FILE = "PREVIOUS"  # the generation CURRENT named before the last build: kept for readers not yet swapped
GENERATIONS_DIR = "generations"
TMP_PREFIX = ".tmp-"
KEEP_GENERATIONS = 2  # the current one and the one before, for readers that have not swapped yet
# Exact search up to here; above, an inverted-file index (benchmarks/scale.py measured both, docs/benchmarks.md).
APPROXIMATE_FROM = 50_000
IVF_PROBES = 64  # lists searched per question (of ~4000 at 1 M passages; benchmarks/scale.py measured)

_SCHEMA = """
CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL,
                        meta TEXT NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE sentences (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, start INTEGER NOT NULL,
                        end INTEGER NOT NULL);
CREATE TABLE passages (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
                       start INTEGER NOT NULL, end INTEGER NOT NULL,
                       first_sentence INTEGER NOT NULL, last_sentence INTEGER NOT NULL);
"""
_INDEXES = """
CREATE INDEX passages_doc ON passages (doc_id);
CREATE INDEX sentences_doc ON sentences (doc_id);
"""


class _Database:
    """One read-only connection to a generation's SQLite file, shared by the threads of a process.

    Opened once at load: a generation pruned from disk while a process still serves it stays readable through
    the open file. It closes when the last view of the generation is gone (a connection left to itself waits for
    the garbage collector, holding a deleted file and its disk space until then). Queries are short; a lock
    serialises them."""

    def __init__(self, path: Path) -> None:
        self._con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        weakref.finalize(self, self._con.close)

    def all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple = ()) -> tuple | None:
        with self._lock:
            return self._con.execute(sql, args).fetchone()

    def close(self) -> None:
        with self._lock:
            self._con.close()


class DocumentTable(DocumentRows):
    """The documents of the embedded store, read from SQLite."""

    def __init__(self, db: _Database, count: int, cache: int = 256) -> None:
        super().__init__(count, cache)
        self._db = db

    def _load(self, doc_id: str) -> Document | None:
        row = self._db.one(f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE doc_id = ?", (doc_id,))
        return document_from_row(row) if row else None

    def __iter__(self) -> Iterator[str]:
        return iter([row[0] for row in self._db.all("SELECT doc_id FROM documents ORDER BY rowid")])


class SentenceSpans(Sequence):
    """Sentence row -> (doc_id, Span)."""

    def __init__(self, db: _Database, count: int, cache: int = 65_536) -> None:
        self._db, self._count, self._cache = db, count, CachedLoader(cache)

    def _load(self, row: int) -> tuple[str, Span]:
        doc_id, start, end = self._db.one("SELECT doc_id, start, end FROM sentences WHERE id = ?", (row,))
        return doc_id, Span(start, end)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[r] for r in range(*row.indices(self._count))]
        row = checked_row(row, self._count)
        return self._cache.get(row, self._load)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[str, Span]]:
        for start in range(0, self._count, 10_000):
            for doc_id, begin, end in self._db.all(
                    "SELECT doc_id, start, end FROM sentences WHERE id >= ? AND id < ? ORDER BY id",
                    (start, start + 10_000)):
                yield doc_id, Span(begin, end)


class PassageTable(PassageRows):
    """The passages of the embedded store, read from SQLite."""

    def __init__(self, db: _Database, count: int, documents: DocumentTable, sentences: SentenceSpans,
                 cache: int = 16_384) -> None:
        super().__init__(count, cache)
        self._db, self._documents, self._sentences = db, documents, sentences

    def _load(self, row: int) -> tuple[Passage, range]:
        doc_id, ordinal, start, end, first, last = self._db.one(
            "SELECT doc_id, ordinal, start, end, first_sentence, last_sentence FROM passages WHERE id = ?", (row,))
        text = self._documents[doc_id].text
        spans = tuple(self._sentences[r][1] for r in range(first, last + 1))
        return Passage(doc_id, ordinal, start, end, text[start:end], spans), range(first, last + 1)


def _vectors(path: Path, rows: int, dim: int) -> np.ndarray:
    expected = rows * dim * 4
    size = path.stat().st_size
    if size != expected:
        raise IndexCorruptError(f"{path.name} holds {size} bytes, not {expected} ({rows} vectors of {dim})")
    if rows == 0:
        return np.zeros((0, dim), dtype=np.float32)
    return np.memmap(path, dtype=np.float32, mode="r", shape=(rows, dim))


@dataclass(eq=False)  # compared and hashed by identity: caches are keyed by the loaded object
class LoadedIndex:
    generation: str
    manifest: dict
    documents: Mapping[str, Document]
    passages: Sequence[Passage]
    passage_vectors: np.ndarray  # memory-mapped
    passage_sentence_rows: Sequence[range]  # rows of sentence_vectors for each passage's sentences
    sentence_spans: Sequence[tuple[str, Span]]
    sentence_vectors: np.ndarray  # memory-mapped
    vectors: faiss.Index
    lexical: LexicalIndex

    def dense_candidates(self, query_vector: np.ndarray, depth: int) -> list[int]:
        """Rows of the `depth` passages nearest to the query vector (inner product)."""
        _, rows = self.vectors.search(query_vector.reshape(1, -1).astype(np.float32), depth)
        return [int(r) for r in rows[0] if r >= 0]

    def lexical_scores(self, question: str, depth: int, rows: Sequence[int] = ()) -> LexicalScores:
        """BM25 of the lexical top `depth` passages and of `rows`, normalised by the best BM25 score."""
        lexical = self.lexical.scores(question)
        n = len(lexical)
        top_lexical = lexical.max() if lexical.size else 0.0
        if top_lexical <= 0:
            return LexicalScores([], {int(r): 0.0 for r in rows})
        lexical_norm = lexical / top_lexical * self.lexical.known_share(question)
        top = np.argpartition(-lexical, depth - 1)[:depth] if depth < n else np.arange(n)
        top_rows = [int(r) for r in top if lexical[r] > 0]
        return LexicalScores(top_rows, {r: float(lexical_norm[r]) for r in [*top_rows, *map(int, rows)]})

    def entries(self) -> dict[str, DocumentEntry]:
        """Split the index back into per-document entries (for incremental builds)."""
        by_doc: dict[str, list[int]] = {}
        for row in range(len(self.passages)):
            by_doc.setdefault(self.passages[row].doc_id, []).append(row)
        sentence_rows: dict[str, list[int]] = {}
        for row, (doc_id, _) in enumerate(self.sentence_spans):
            sentence_rows.setdefault(doc_id, []).append(row)
        entries = {}
        for doc_id, doc in self.documents.items():
            p_rows = by_doc.get(doc_id, [])
            s_rows = sentence_rows.get(doc_id, [])
            entries[doc_id] = DocumentEntry(
                document=doc,
                sentences=[self.sentence_spans[r][1] for r in s_rows],
                sentence_vectors=np.asarray(self.sentence_vectors[s_rows]),
                passages=[self.passages[r] for r in p_rows],
                passage_vectors=np.asarray(self.passage_vectors[p_rows]),
            )
        return entries


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    for folder in [path, *[p for p in path.rglob("*") if p.is_dir()]]:
        _fsync_dir(folder)


def current_generation(index_dir: Path, pointer: str = CURRENT_FILE) -> str | None:
    """The generation CURRENT names (or another pointer file: PREVIOUS), None when there is none."""
    try:
        name = (index_dir / pointer).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise NoIndexError(f"the index folder {index_dir} is a file, not a folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NoIndexError(f"cannot read {index_dir / pointer}: {getattr(exc, 'strerror', None) or exc}") from None
    return name or None


def build_running(index_dir: Path) -> bool:
    """Whether a build of this folder runs now, in any process of this machine: the lock's holder writes its
    process id beside the lock. A build killed with kill -9 leaves the file; its process is gone, or its number
    has since gone to a process that started after the file was written."""
    marker = index_dir / BUILDING_FILE
    try:
        pid = int(marker.read_text(encoding="ascii"))
        written = marker.stat().st_mtime
        os.kill(pid, 0)
    except PermissionError:  # a process of another user: it exists
        return True
    except (OSError, ValueError, OverflowError):
        return False
    started = _process_start(pid)
    return started is None or started <= written + 1.0  # a second's slack for the clock-tick rounding


def _process_start(pid: int) -> float | None:
    """When a process started, in seconds since the epoch (Linux's /proc), or None where that cannot be read."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _point(index_dir: Path, pointer: str, name: str) -> None:
    """Make a pointer file name a generation, atomically: written aside, flushed to disk, then renamed over."""
    written = index_dir / f"{pointer}.{name}.tmp"
    with open(written, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(written, index_dir / pointer)


def build_vector_index(vectors: np.ndarray, probes: int = IVF_PROBES) -> faiss.Index:
    """Exact inner-product search for a collection under APPROXIMATE_FROM passages; an inverted-file index of
    8-bit codes above (about 4·√n lists, trained on a sample of the vectors, `probes` lists searched per
    question)."""
    count, dim = vectors.shape
    if count < APPROXIMATE_FROM:
        index = faiss.IndexFlatIP(dim)
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return index
    lists = min(8192, int(4 * math.sqrt(count)))
    quantizer = faiss.IndexFlatIP(dim)
    # 8-bit codes: a quarter of the float vectors' size; the candidates are re-scored with the exact vectors
    # (retrieve), so the codes only have to find them.
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, lists, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(count, size=min(count, 40 * lists), replace=False)
    index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
    for start in range(0, count, 100_000):
        index.add(np.ascontiguousarray(vectors[start:start + 100_000], dtype=np.float32))
    index.nprobe = probes
    return index


class GenerationWriter:
    """Writes one new generation row by row, so that a collection never has to be held in memory whole.

        writer = GenerationWriter(index_dir, dim)
        for entry in entries: writer.add(entry)
        name = writer.commit(manifest)        # or writer.abort()
    """

    def __init__(self, index_dir: Path, dim: int) -> None:
        self.index_dir, self.dim = index_dir, dim
        generations = index_dir / GENERATIONS_DIR
        generations.mkdir(parents=True, exist_ok=True)
        self.name = time.strftime("%Y%m%dT%H%M%S") + f"-{uuid.uuid4().hex[:8]}"
        self.tmp = generations / f"{TMP_PREFIX}{self.name}"
        self.tmp.mkdir()
        self._con = self._passage_file = self._sentence_file = None
        try:
            self._con = sqlite3.connect(self.tmp / "store.sqlite")
            self._con.executescript(_SCHEMA)
            self._passage_file = open(self.tmp / "passages.f32", "wb")
            self._sentence_file = open(self.tmp / "sentences.f32", "wb")
        except BaseException:
            self.abort()
            raise
        self.documents = self.passages = self.sentences = 0

    def add(self, entry: DocumentEntry) -> None:
        doc = entry.document
        self._con.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                          (doc.doc_id, doc.title, doc.text, json.dumps(doc.meta, ensure_ascii=False), doc.sha256))
        first_row = {(span.start, span.end): self.sentences + offset for offset, span in enumerate(entry.sentences)}
        self._con.executemany("INSERT INTO sentences VALUES (?, ?, ?, ?)",
                              [(self.sentences + offset, doc.doc_id, span.start, span.end)
                               for offset, span in enumerate(entry.sentences)])
        self._con.executemany("INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (self.passages + offset, doc.doc_id, passage.ordinal, passage.start, passage.end,
             first_row[(passage.sentences[0].start, passage.sentences[0].end)],
             first_row[(passage.sentences[-1].start, passage.sentences[-1].end)])
            for offset, passage in enumerate(entry.passages)])
        self._sentence_file.write(self._rows(entry.sentence_vectors, len(entry.sentences)))
        self._passage_file.write(self._rows(entry.passage_vectors, len(entry.passages)))
        self.documents += 1
        self.sentences += len(entry.sentences)
        self.passages += len(entry.passages)

    def _rows(self, vectors: np.ndarray, count: int) -> bytes:
        matrix = np.asarray(vectors, dtype=np.float32).reshape(count, self.dim)
        return np.ascontiguousarray(matrix).tobytes()

    def _passage_texts(self, con: sqlite3.Connection) -> Iterator[str]:
        """Every passage's text, in row order, read back in batches."""
        texts: dict[str, str] = {}
        for start in range(0, self.passages, 20_000):
            for doc_id, begin, end in con.execute(
                    "SELECT doc_id, start, end FROM passages WHERE id >= ? AND id < ? ORDER BY id",
                    (start, start + 20_000)).fetchall():
                if doc_id not in texts:
                    if len(texts) > 1000:
                        texts.clear()
                    texts[doc_id] = con.execute("SELECT text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()[0]
                yield texts[doc_id][begin:end]

    def commit(self, manifest: dict) -> str:
        """Finish the files, make the generation current and return its name."""
        try:
            self._passage_file.close()
            self._sentence_file.close()
            full_manifest = {**manifest, "format": INDEX_FORMAT, "generation": self.name,
                             "documents": self.documents, "passages": self.passages, "sentences": self.sentences,
                             "vector_index": "flat" if self.passages < APPROXIMATE_FROM else "ivf"}
            self._con.executemany("INSERT INTO manifest VALUES (?, ?)",
                                  [(k, json.dumps(v, ensure_ascii=False)) for k, v in full_manifest.items()])
            self._con.executescript(_INDEXES)
            self._con.commit()
            vectors = _vectors(self.tmp / "passages.f32", self.passages, self.dim)
            faiss.write_index(build_vector_index(vectors), str(self.tmp / "passages.faiss"))
            LexicalIndex.build(self._passage_texts(self._con), self.passages).save(self.tmp / "bm25")
            self._con.close()
            _fsync_tree(self.tmp)
        except BaseException:
            self.abort()
            raise
        generations = self.index_dir / GENERATIONS_DIR
        os.rename(self.tmp, generations / self.name)
        _fsync_dir(generations)
        previous = current_generation(self.index_dir)
        if previous:
            _point(self.index_dir, PREVIOUS_FILE, previous)
        _point(self.index_dir, CURRENT_FILE, self.name)
        # The new generation is current from here: a failure to flush the folder's entry no longer undoes that.
        with contextlib.suppress(OSError):
            _fsync_dir(self.index_dir)
        return self.name

    def abort(self) -> None:
        for handle in (self._passage_file, self._sentence_file, self._con):
            # Closing flushes what is buffered, which fails again on a full disk: the folder goes anyway.
            with contextlib.suppress(OSError, sqlite3.Error):
                if handle is not None:
                    handle.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_all(writer, entries: Iterable[DocumentEntry], manifest: dict) -> str:
    """Add every entry to a generation writer (either store's) and commit it; abort it on any failure."""
    try:
        for entry in entries:
            writer.add(entry)
    except BaseException:
        writer.abort()
        raise
    return writer.commit(manifest)


def write_generation(index_dir: Path, entries: Iterable[DocumentEntry], manifest: dict) -> str:
    """Write a complete new generation and make it current. Returns its name."""
    return write_all(GenerationWriter(index_dir, int(manifest["dim"])), entries, manifest)


def prune_generations(index_dir: Path) -> None:
    """Remove unfinished temporary generations and every complete one but the current and the previous (the one
    CURRENT named before, which a server may still be reading; a generation whose build died before it was made
    current is neither). Names are not compared: two builds in one second, or a clock set back, would order them
    wrongly. Call under the build lock."""
    generations = index_dir / GENERATIONS_DIR
    if not generations.is_dir():
        return
    current = current_generation(index_dir)
    for pointer in (CURRENT_FILE, PREVIOUS_FILE):
        for leftover in index_dir.glob(f"{pointer}.*.tmp"):
            leftover.unlink(missing_ok=True)
    complete = []
    for path in generations.iterdir():
        if path.name.startswith(TMP_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_dir():
            complete.append(path.name)
    try:
        previous = current_generation(index_dir, PREVIOUS_FILE)
    except NoIndexError:  # unreadable: keep what the rule of an index without the file keeps
        previous = None
    if previous is None:  # an index written before PREVIOUS was kept: the newest other generation by name
        previous = max((name for name in complete if name != current), default=None)
    keep = {current, previous}
    for name in complete:
        if name not in keep:
            shutil.rmtree(generations / name, ignore_errors=True)


def index_command(index_dir: Path) -> str:
    """The command that builds the index in `index_dir`, wherever it is run from."""
    import shlex

    return f"qa index --index {shlex.quote(str(index_dir))}"


def load_index(index_dir: Path, generation: str | None = None) -> LoadedIndex:
    """Open the current (or the named) generation: its manifest is read, the rest is read when needed."""
    name = generation or current_generation(index_dir)
    if not name:
        raise NoIndexError(f"no index in {index_dir}: build it with `{index_command(index_dir)}`")
    path = index_dir / GENERATIONS_DIR / name
    store = path / "store.sqlite"
    if not store.is_file():
        raise IndexCorruptError(f"index generation {name} is missing its store ({store})")
    db = None
    try:
        db = _Database(store)
        manifest = {k: json.loads(v) for k, v in db.all("SELECT key, value FROM manifest")}
        if manifest.get("format") != INDEX_FORMAT:
            raise IndexCorruptError(f"index generation {name} is in format {manifest.get('format')}, and this "
                                    f"version reads format {INDEX_FORMAT}: rebuild it with `qa index`")
        dim = int(manifest["dim"])
        # Rows are numbered from 0 (documents by rowid from 1) with no gaps: the highest number is the count,
        # found in the table's b-tree at once, where count(*) would read a million rows.
        counts = {"documents": db.one("SELECT coalesce(max(rowid), 0) FROM documents")[0],
                  "passages": db.one("SELECT coalesce(max(id) + 1, 0) FROM passages")[0],
                  "sentences": db.one("SELECT coalesce(max(id) + 1, 0) FROM sentences")[0]}
        if any(counts[table] != manifest[table] for table in counts):
            raise IndexCorruptError(f"index generation {name}: the store holds {counts}, its manifest says otherwise")
        passage_vectors = _vectors(path / "passages.f32", counts["passages"], dim)
        sentence_vectors = _vectors(path / "sentences.f32", counts["sentences"], dim)
        if manifest.get("vector_index") == "ivf":
            vectors = faiss.read_index(str(path / "passages.faiss"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            faiss.extract_index_ivf(vectors).nprobe = IVF_PROBES  # the setting of this version, not the build's
        else:
            vectors = faiss.read_index(str(path / "passages.faiss"))
        lexical = LexicalIndex.load(path / "bm25")
    except IndexCorruptError:
        if db is not None:
            db.close()
        raise
    except (sqlite3.Error, KeyError, ValueError, TypeError, RuntimeError, OSError) as exc:
        if db is not None:
            db.close()
        raise IndexCorruptError(f"index generation {name} cannot be read: {exc}") from exc
    if vectors.ntotal != counts["passages"]:
        db.close()
        raise IndexCorruptError(f"index generation {name}: {vectors.ntotal} vectors for {counts['passages']} passages")
    documents = DocumentTable(db, counts["documents"])
    sentence_spans = SentenceSpans(db, counts["sentences"])
    passages = PassageTable(db, counts["passages"], documents, sentence_spans)
    return LoadedIndex(
        generation=name,
        manifest=manifest,
        documents=documents,
        passages=passages,
        passage_vectors=passage_vectors,
        passage_sentence_rows=SentenceRows(passages),
        sentence_spans=sentence_spans,
        sentence_vectors=sentence_vectors,
        vectors=vectors,
        lexical=lexical,
    )

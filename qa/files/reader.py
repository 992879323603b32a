"""Opens one generation of the embedded store as an index the pipeline reads.

Loading a generation reads only its manifest and opens its files: vectors, FAISS lists and BM25 postings are
memory-mapped, and passages, sentences and documents are read from SQLite when asked for (and kept in small
caches). A process serving a million passages holds the pages it touches, not the collection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.files.pointer import current_generation, index_command
from qa.files.schema import GENERATIONS_DIR, INDEX_FORMAT, IVF_PROBES, STORE_FILE
from qa.index_rows import (DOCUMENT_COLUMNS, CachedLoader, DocumentEntry, DocumentRows, IndexCorruptError,
                           LexicalScores, NoIndexError, PassageRows, SentenceRows, checked_row, document_from_row)
from qa.lexical import LexicalIndex
from qa.records import Document, Passage, Span


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


def read_vectors(path: Path, rows: int, dim: int) -> np.ndarray:
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


def load_index(index_dir: Path, generation: str | None = None) -> LoadedIndex:
    """Open the current (or the named) generation: its manifest is read, the rest is read when needed."""
    name = generation or current_generation(index_dir)
    if not name:
        raise NoIndexError(f"no index in {index_dir}: build it with `{index_command(index_dir)}`")
    path = index_dir / GENERATIONS_DIR / name
    store = path / STORE_FILE
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
        passage_vectors = read_vectors(path / "passages.f32", counts["passages"], dim)
        sentence_vectors = read_vectors(path / "sentences.f32", counts["sentences"], dim)
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

"""Store stage: the on-disk index and its atomic replacement.

Layout of the index folder:

    index/CURRENT                      name of the generation in use (replaced atomically)
    index/generations/<name>/          one complete, immutable index
        store.sqlite                   documents, passages, sentences (with their vectors), manifest
        passages.faiss                 FAISS inner-product index over the passage vectors
        bm25/                          bm25s lexical index over the passages
    index/build.lock                   held by the one build that may run at a time

A build writes a new generation under a temporary name, renames it into place, and only then points
CURRENT at it. A build killed at any moment leaves CURRENT on the previous, complete generation.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.lexical import LexicalIndex
from qa.records import Document, Passage, Span

INDEX_FORMAT = 1
CURRENT_FILE = "CURRENT"
GENERATIONS_DIR = "generations"
TMP_PREFIX = ".tmp-"
KEEP_GENERATIONS = 2  # the current one and the one before, for readers that have not swapped yet

_SCHEMA = """
CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL,
                        meta TEXT NOT NULL, sha256 TEXT NOT NULL);
CREATE TABLE sentences (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, start INTEGER NOT NULL,
                        end INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE TABLE passages (id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
                       start INTEGER NOT NULL, end INTEGER NOT NULL,
                       first_sentence INTEGER NOT NULL, last_sentence INTEGER NOT NULL, vector BLOB NOT NULL);
CREATE INDEX passages_doc ON passages (doc_id);
CREATE INDEX sentences_doc ON sentences (doc_id);
"""


class NoIndexError(Exception):
    pass


class IndexCorruptError(Exception):
    pass


@dataclass
class DocumentEntry:
    """One document with everything derived from it: the unit a build reuses or replaces."""

    document: Document
    sentences: list[Span]
    sentence_vectors: np.ndarray
    passages: list[Passage]
    passage_vectors: np.ndarray


@dataclass(eq=False)  # compared and hashed by identity: caches are keyed by the loaded object
class LoadedIndex:
    generation: str
    manifest: dict
    documents: dict[str, Document]
    passages: list[Passage]
    passage_vectors: np.ndarray
    passage_sentence_rows: list[range]  # rows of sentence_vectors for each passage's sentences
    sentence_spans: list[tuple[str, Span]]
    sentence_vectors: np.ndarray
    vectors: faiss.Index
    lexical: LexicalIndex

    def entries(self) -> dict[str, DocumentEntry]:
        """Split the index back into per-document entries (for incremental builds)."""
        by_doc: dict[str, list[int]] = {}
        for row, passage in enumerate(self.passages):
            by_doc.setdefault(passage.doc_id, []).append(row)
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
                sentence_vectors=self.sentence_vectors[s_rows],
                passages=[self.passages[r] for r in p_rows],
                passage_vectors=self.passage_vectors[p_rows],
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


def current_generation(index_dir: Path) -> str | None:
    try:
        name = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def write_generation(index_dir: Path, entries: list[DocumentEntry], manifest: dict) -> str:
    """Write a complete new generation and make it current. Returns its name."""
    generations = index_dir / GENERATIONS_DIR
    generations.mkdir(parents=True, exist_ok=True)
    name = time.strftime("%Y%m%dT%H%M%S") + f"-{uuid.uuid4().hex[:8]}"
    tmp = generations / f"{TMP_PREFIX}{name}"
    tmp.mkdir()

    passages: list[Passage] = []
    passage_vectors = []
    con = sqlite3.connect(tmp / "store.sqlite")
    try:
        con.executescript(_SCHEMA)
        sentence_row = 0
        for entry in entries:
            doc = entry.document
            con.execute("INSERT INTO documents VALUES (?, ?, ?, ?, ?)",
                        (doc.doc_id, doc.title, doc.text, json.dumps(doc.meta, ensure_ascii=False), doc.sha256))
            first_row = {}
            for offset, (span, vector) in enumerate(zip(entry.sentences, entry.sentence_vectors)):
                first_row[(span.start, span.end)] = sentence_row + offset
                con.execute("INSERT INTO sentences VALUES (?, ?, ?, ?, ?)",
                            (sentence_row + offset, doc.doc_id, span.start, span.end,
                             np.asarray(vector, dtype=np.float32).tobytes()))
            sentence_row += len(entry.sentences)
            for passage, vector in zip(entry.passages, entry.passage_vectors):
                first = first_row[(passage.sentences[0].start, passage.sentences[0].end)]
                last = first_row[(passage.sentences[-1].start, passage.sentences[-1].end)]
                con.execute("INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (len(passages), doc.doc_id, passage.ordinal, passage.start, passage.end, first, last,
                             np.asarray(vector, dtype=np.float32).tobytes()))
                passages.append(passage)
                passage_vectors.append(vector)
        full_manifest = {**manifest, "format": INDEX_FORMAT, "generation": name,
                         "documents": len(entries), "passages": len(passages), "sentences": sentence_row}
        con.executemany("INSERT INTO manifest VALUES (?, ?)",
                        [(k, json.dumps(v, ensure_ascii=False)) for k, v in full_manifest.items()])
        con.commit()
    finally:
        con.close()

    dim = int(manifest["dim"])
    matrix = np.asarray(passage_vectors, dtype=np.float32).reshape(len(passages), dim)
    vectors = faiss.IndexFlatIP(dim)
    vectors.add(matrix)
    faiss.write_index(vectors, str(tmp / "passages.faiss"))
    LexicalIndex.build([p.text for p in passages]).save(tmp / "bm25")

    _fsync_tree(tmp)
    final = generations / name
    os.rename(tmp, final)
    _fsync_dir(generations)
    pointer = index_dir / f"{CURRENT_FILE}.{name}.tmp"
    with open(pointer, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(pointer, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)
    return name


def prune_generations(index_dir: Path) -> None:
    """Remove unfinished temporary generations and all but the newest complete ones. Call under the build lock."""
    generations = index_dir / GENERATIONS_DIR
    if not generations.is_dir():
        return
    current = current_generation(index_dir)
    for leftover in index_dir.glob(f"{CURRENT_FILE}.*.tmp"):
        leftover.unlink(missing_ok=True)
    complete = []
    for path in generations.iterdir():
        if path.name.startswith(TMP_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_dir():
            complete.append(path)
    complete.sort(key=lambda p: p.name, reverse=True)
    keep = {current, *[p.name for p in complete[:KEEP_GENERATIONS]]}
    for path in complete:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _vector(blob: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32, count=dim)


def load_index(index_dir: Path, generation: str | None = None) -> LoadedIndex:
    """Load the current (or the named) generation fully into memory."""
    name = generation or current_generation(index_dir)
    if not name:
        raise NoIndexError(f"no index in {index_dir}: run `qa index` first")
    path = index_dir / GENERATIONS_DIR / name
    db = path / "store.sqlite"
    if not db.is_file():
        raise IndexCorruptError(f"index generation {name} is missing its store ({db})")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            manifest = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM manifest")}
            dim = int(manifest["dim"])
            documents = {
                row[0]: Document(doc_id=row[0], title=row[1], text=row[2], meta=json.loads(row[3]), sha256=row[4])
                for row in con.execute("SELECT doc_id, title, text, meta, sha256 FROM documents ORDER BY rowid")
            }
            sentence_spans, sentence_vectors = [], []
            for doc_id, start, end, blob in con.execute("SELECT doc_id, start, end, vector FROM sentences ORDER BY id"):
                sentence_spans.append((doc_id, Span(start, end)))
                sentence_vectors.append(_vector(blob, dim))
            passages, passage_vectors, rows = [], [], []
            for doc_id, ordinal, start, end, first, last, blob in con.execute(
                "SELECT doc_id, ordinal, start, end, first_sentence, last_sentence, vector FROM passages ORDER BY id"
            ):
                text = documents[doc_id].text
                spans = tuple(sentence_spans[r][1] for r in range(first, last + 1))
                passages.append(Passage(doc_id, ordinal, start, end, text[start:end], spans))
                passage_vectors.append(_vector(blob, dim))
                rows.append(range(first, last + 1))
        finally:
            con.close()
        vectors = faiss.read_index(str(path / "passages.faiss"))
        lexical = LexicalIndex.load(path / "bm25")
    except (sqlite3.Error, KeyError, ValueError, RuntimeError, OSError) as exc:
        raise IndexCorruptError(f"index generation {name} cannot be read: {exc}") from exc
    if vectors.ntotal != len(passages):
        raise IndexCorruptError(f"index generation {name}: {vectors.ntotal} vectors for {len(passages)} passages")
    return LoadedIndex(
        generation=name,
        manifest=manifest,
        documents=documents,
        passages=passages,
        passage_vectors=np.asarray(passage_vectors, dtype=np.float32).reshape(len(passages), dim),
        passage_sentence_rows=rows,
        sentence_spans=sentence_spans,
        sentence_vectors=np.asarray(sentence_vectors, dtype=np.float32).reshape(len(sentence_spans), dim),
        vectors=vectors,
        lexical=lexical,
    )

"""Writes one generation of the embedded store, and prunes the generations no reader needs.

A build writes a new generation under a temporary name, renames it into place, and only then points
CURRENT at it. A build killed at any moment leaves CURRENT on the previous, complete generation.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import faiss
import numpy as np

from qa.files.pointer import current_generation, point_to
from qa.files.reader import read_vectors
from qa.files.schema import (APPROXIMATE_FROM, CURRENT_FILE, GENERATIONS_DIR, INDEX_FORMAT, IVF_PROBES, PREVIOUS_FILE,
                             SQLITE_INDEXES, SQLITE_SCHEMA, STORE_FILE, TMP_PREFIX)
from qa.index_rows import DocumentEntry, NoIndexError, write_all
from qa.lexical import LexicalIndex


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
            self._con = sqlite3.connect(self.tmp / STORE_FILE)
            self._con.executescript(SQLITE_SCHEMA)
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
            self._con.executescript(SQLITE_INDEXES)
            self._con.commit()
            vectors = read_vectors(self.tmp / "passages.f32", self.passages, self.dim)
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
            point_to(self.index_dir, PREVIOUS_FILE, previous)
        point_to(self.index_dir, CURRENT_FILE, self.name)
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

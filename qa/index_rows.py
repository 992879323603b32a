"""What both stores (the files in qa/files/, PostgreSQL in qa/pg/) give the pipeline: the errors of a missing
or damaged index and of a build that could not run, a document's entry, writing a generation from entries, and row
views that read documents, passages and sentences when asked, behind small caches."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from qa.records import Document, Passage, Span


@dataclass
class LexicalScores:
    """Lexical evidence for one question: `top` are the rows of the lexical top candidates with a score above 0;
    `scores` maps those rows and the rows asked about to their score, normalised to [0, 1] by the best score of
    the collection and weighted by how much of the question the collection knows at all."""

    top: list[int]
    scores: dict[int, float]


class NoIndexError(Exception):
    pass


class IndexCorruptError(Exception):
    pass


class BuildError(Exception):
    """The build could not run at all; the current index is untouched."""


class BuildBusyError(BuildError):
    pass


class IndexWriteError(BuildError):
    """Writing the new generation failed (a full disk): the previous one stays current."""


class StoreUnavailableError(BuildError):
    """The database the index is kept in cannot be reached or used: the build never started or was undone."""


@dataclass
class DocumentEntry:
    """One document with everything derived from it: the unit a build reuses or replaces."""

    document: Document
    sentences: list[Span]
    sentence_vectors: np.ndarray
    passages: list[Passage]
    passage_vectors: np.ndarray


def write_all(writer, entries: Iterable[DocumentEntry], manifest: dict) -> str:
    """Add every entry to a generation writer (either store's) and commit it; abort it on any failure."""
    try:
        for entry in entries:
            writer.add(entry)
    except BaseException:
        writer.abort()
        raise
    return writer.commit(manifest)


class CachedLoader:
    """A thread-safe LRU cache in front of a loader."""

    def __init__(self, size: int) -> None:
        self._cache: LRUCache = LRUCache(size)
        self._lock = threading.Lock()

    def get(self, key, load):
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = load(key)
        self.put(key, value)
        return value

    def put(self, key, value) -> None:
        with self._lock:
            self._cache[key] = value

    def missing(self, keys) -> list:
        """The keys not cached, in order (for a store that loads many in one query)."""
        with self._lock:
            return [key for key in keys if key not in self._cache]


DOCUMENT_COLUMNS = "doc_id, title, text, meta, sha256"


def document_from_row(row) -> Document:
    """A Document from a row of DOCUMENT_COLUMNS (either store's documents table)."""
    return Document(row[0], row[1], row[2], json.loads(row[3]), row[4])


class DocumentRows(Mapping):
    """doc_id -> Document. A store supplies `_load(doc_id) -> Document | None` and `__iter__`; answers are cached."""

    def __init__(self, count: int, cache: int) -> None:
        self._count, self._cache = count, CachedLoader(cache)

    def _load(self, doc_id: str) -> Document | None:
        raise NotImplementedError

    def __getitem__(self, doc_id: str) -> Document:
        doc = self._cache.get(doc_id, self._load) if isinstance(doc_id, str) else None
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def __len__(self) -> int:
        return self._count


class PassageRows(Sequence):
    """Passage row -> Passage (with its text and sentence spans); also each passage's sentence rows. A store
    supplies `_load(row) -> (Passage, range of sentence rows)`; answers are cached."""

    def __init__(self, count: int, cache: int) -> None:
        self._count, self._cache = count, CachedLoader(cache)

    def _load(self, row: int) -> tuple[Passage, range]:
        raise NotImplementedError

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[r] for r in range(*row.indices(self._count))]
        return self._cache.get(checked_row(row, self._count), self._load)[0]

    def sentence_rows(self, row: int) -> range:
        return self._cache.get(checked_row(row, self._count), self._load)[1]

    def prefetch(self, rows: list[int]) -> None:
        """Rows about to be read, for a store where one query for all costs less than one each (PostgreSQL)."""

    def __len__(self) -> int:
        return self._count


class SentenceRows(Sequence):
    """Passage row -> the range of its sentences' rows."""

    def __init__(self, passages: PassageRows) -> None:
        self._passages = passages

    def __getitem__(self, row):
        return self._passages.sentence_rows(row)

    def __len__(self) -> int:
        return len(self._passages)


def checked_row(row, count: int) -> int:
    """`row` as a row of `count` (negative from the end, as a list's); IndexError outside."""
    row = int(row)
    if row < 0:
        row += count
    if not 0 <= row < count:
        raise IndexError(f"row {row} out of range")
    return row

"""Opens one generation of the PostgreSQL store as an index the pipeline reads like the embedded one.

Nothing is loaded at open but the manifest: documents, passages and sentences are read when asked for (and kept
in small caches, as the embedded store does), vectors are fetched by row, the dense search is pgvector's HNSW
index and the lexical side is PostgreSQL full-text search.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from qa.lexical import known_share, tokenize
from qa.pg.connect import DatabaseError, Pool, describe
from qa.pg.pointer import current_generation
from qa.pg.schema import HNSW_EF_SEARCH, schema_name
from qa.pg.writer import FORMAT, vector_text
from qa.records import Document, Passage, Span
from qa.index_rows import (DOCUMENT_COLUMNS, CachedLoader, DocumentEntry, DocumentRows, IndexCorruptError,
                           LexicalScores, NoIndexError, PassageRows, SentenceRows, checked_row, document_from_row)


def vector_from_binary(value: bytes) -> np.ndarray:
    """pgvector's binary output: int16 dimensions, int16 unused, then big-endian float32s."""
    return np.frombuffer(value, dtype=">f4", offset=4).astype(np.float32)


class _Tables:
    """Quoted names of one generation's tables."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def __getattr__(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(table))


class PgDocuments(DocumentRows):
    """The documents of a PostgreSQL generation."""

    def __init__(self, pool: Pool, tables: _Tables, count: int, cache: int = 256) -> None:
        super().__init__(count, cache)
        self._pool, self._t = pool, tables

    def _load(self, doc_id: str) -> Document | None:
        row = self._pool.one(sql.SQL(f"SELECT {DOCUMENT_COLUMNS} FROM {{}} WHERE doc_id = %s").format(
            self._t.documents), (doc_id,))
        return document_from_row(row) if row else None

    def prefetch(self, doc_ids) -> None:
        """Load the documents not cached yet in one query."""
        wanted = self._cache.missing(sorted(set(doc_ids)))
        if wanted:
            for row in self._pool.all(sql.SQL(f"SELECT {DOCUMENT_COLUMNS} FROM {{}} WHERE doc_id = ANY(%s)")
                                      .format(self._t.documents), (wanted,)):
                self._cache.put(row[0], document_from_row(row))

    def __iter__(self) -> Iterator[str]:
        return iter([r[0] for r in self._pool.all(sql.SQL("SELECT doc_id FROM {} ORDER BY ordinal").format(
            self._t.documents))])


class PgSentenceSpans(Sequence):
    def __init__(self, pool: Pool, tables: _Tables, count: int, cache: int = 65_536) -> None:
        self._pool, self._t, self._count, self._cache = pool, tables, count, CachedLoader(cache)

    def remember(self, doc_id: str, rows: range, spans: tuple[Span, ...]) -> None:
        """Sentences a passage query has already read."""
        for row, span in zip(rows, spans):
            self._cache.put(row, (doc_id, span))

    def _load(self, row: int) -> tuple[str, Span]:
        doc_id, start, end = self._pool.one(sql.SQL('SELECT doc_id, start, "end" FROM {} WHERE id = %s').format(
            self._t.sentences), (row,))
        return doc_id, Span(start, end)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[r] for r in range(*row.indices(self._count))]
        return self._cache.get(checked_row(row, self._count), self._load)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[tuple[str, Span]]:
        for start in range(0, self._count, 10_000):
            for doc_id, begin, end in self._pool.all(
                    sql.SQL('SELECT doc_id, start, "end" FROM {} WHERE id >= %s AND id < %s ORDER BY id').format(
                        self._t.sentences), (start, start + 10_000)):
                yield doc_id, Span(begin, end)


class PgPassages(PassageRows):
    """The passages of a PostgreSQL generation: one query per passage (with its sentences), or one for many."""

    def __init__(self, pool: Pool, tables: _Tables, count: int, documents: PgDocuments,
                 sentences: PgSentenceSpans, cache: int = 16_384) -> None:
        super().__init__(count, cache)
        self._pool, self._t = pool, tables
        self._documents, self._sentences = documents, sentences

    def _read(self, rows: list[int]) -> dict[int, tuple[Passage, range]]:
        """The passages of `rows` with their sentence spans, in one query."""
        # LATERAL: as a join on BETWEEN, the planner scanned every sentence for each passage (O(collection)).
        found = self._pool.all(sql.SQL(
            'SELECT p.id, p.doc_id, p.ordinal, p.start, p."end", p.first_sentence, p.last_sentence, s.starts, s.ends '
            'FROM {passages} p CROSS JOIN LATERAL (SELECT array_agg(start ORDER BY id) AS starts, '
            'array_agg("end" ORDER BY id) AS ends FROM {sentences} '
            'WHERE id BETWEEN p.first_sentence AND p.last_sentence) s '
            'WHERE p.id = ANY(%s)').format(passages=self._t.passages, sentences=self._t.sentences),
            (rows,))
        self._documents.prefetch(row[1] for row in found)
        passages = {}
        for row, doc_id, ordinal, start, end, first, last, starts, ends in found:
            text = self._documents[doc_id].text
            spans = tuple(Span(a, b) for a, b in zip(starts, ends))
            passages[row] = Passage(doc_id, ordinal, start, end, text[start:end], spans), range(first, last + 1)
        return passages

    def prefetch(self, rows: list[int]) -> None:
        """Load the passages of `rows` not cached yet, with their sentences, in one query: the retrieved
        candidates, whose sentences are ranked next, would otherwise cost a round trip each."""
        wanted = self._cache.missing(rows)
        if not wanted:
            return
        for row, (passage, sentence_rows) in self._read(wanted).items():
            self._cache.put(row, (passage, sentence_rows))
            self._sentences.remember(passage.doc_id, sentence_rows, passage.sentences)

    def _load(self, row: int) -> tuple[Passage, range]:
        return self._read([row])[row]


class PgVectors:
    """Vectors of a table, fetched by row: `vectors[rows]` is a float32 array [len(rows), dim] in that order."""

    def __init__(self, pool: Pool, table: sql.Composed, count: int, dim: int) -> None:
        self._pool, self._table, self._count, self.shape = pool, table, count, (count, dim)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, slice):
            rows = range(*rows.indices(self._count))
        wanted = [int(r) for r in np.atleast_1d(np.asarray(rows, dtype=np.int64))]
        if not wanted:
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        found = {row: vector for row, vector in self._pool.all(
            sql.SQL("SELECT id, embedding FROM {} WHERE id = ANY(%s)").format(self._table), (wanted,), binary=True)}
        if len(found) != len(set(wanted)):
            raise IndexError(f"rows {sorted(set(wanted) - found.keys())[:5]} out of range")
        return np.stack([vector_from_binary(found[r]) for r in wanted])


def _or_query(words: list[str]) -> str:
    """A tsquery text matching any of the words, each quoted as a lexeme."""
    return " | ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in words)


@dataclass(eq=False)  # compared and hashed by identity, like LoadedIndex: caches are keyed by it
class PgIndex:
    generation: str
    manifest: dict
    documents: PgDocuments
    passages: PgPassages
    passage_vectors: PgVectors
    passage_sentence_rows: SentenceRows
    sentence_spans: PgSentenceSpans
    sentence_vectors: PgVectors
    pool: Pool
    tables: _Tables

    def dense_candidates(self, query_vector: np.ndarray, depth: int) -> list[int]:
        """The `depth` nearest passages by inner product, through the HNSW index (exact below a few thousand
        passages, where PostgreSQL's planner prefers to scan)."""
        query = sql.SQL("SELECT id FROM {} ORDER BY embedding <#> %s::vector LIMIT %s").format(self.tables.passages)
        args = (vector_text(query_vector), depth)
        if depth <= HNSW_EF_SEARCH:  # the pool's sessions search with HNSW_EF_SEARCH
            return [r[0] for r in self.pool.all(query, args)]
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {depth}")
            return [r[0] for r in conn.execute(query, args).fetchall()]

    def lexical_scores(self, question: str, depth: int, rows: Sequence[int] = ()) -> LexicalScores:
        """PostgreSQL full-text matches of the question's words (the same words BM25 uses in the embedded store),
        each scored by ts_rank (length-normalised) weighted by the word's idf; normalised by the best passage's
        score and by the idf-weighted share of the question's words that any passage holds. The passages ranked
        are each word's best (terms.best) and `rows`, not every passage holding a word: see
        LEXICAL_CANDIDATES_PER_WORD."""
        tokens = tokenize(question)
        words = sorted(set(tokens))
        empty = LexicalScores([], {int(r): 0.0 for r in rows})
        if not words:
            return empty
        n = len(self.passages)
        found = self.pool.all(sql.SQL("SELECT word, passages, best FROM {} WHERE word = ANY(%s)").format(
            self.tables.terms), (words,))
        known = {word: count for word, count, _ in found}
        share = known_share(tokens, known, n)
        if not known:
            return empty
        asked = {int(r) for r in rows}
        candidates = sorted(asked.union(*(best for _, _, best in found)))
        scored = self.pool.all(sql.SQL("SELECT p.id, {score} FROM {passages} p WHERE p.id = ANY(%s)").format(
            score=self._score(known, n), passages=self.tables.passages), (candidates,))
        top = sorted(((row, score) for row, score in scored if score > 0), key=lambda rs: (-rs[1], rs[0]))[:depth]
        if not top:
            return empty
        best = top[0][1]
        scores = {row: 0.0 for row in asked}
        scores.update({row: float(score) / best * share for row, score in scored if row in asked})
        scores.update({row: float(score) / best * share for row, score in top})
        return LexicalScores([row for row, _ in top], scores)

    @staticmethod
    def _score(known: dict[str, int], n: int) -> sql.Composable:
        """One ts_rank per word, weighted by the word's idf, written out (a sub-select over the words per passage
        measured 1.6 times slower at 10k passages)."""
        return sql.SQL(" + ").join(
            sql.SQL("{} * ts_rank(p.tsv, {}::tsquery, 1)").format(
                sql.Literal(math.log(1 + (n - count + 0.5) / (count + 0.5))), sql.Literal(_or_query([word])))
            for word, count in sorted(known.items()))

    def entries(self) -> dict[str, DocumentEntry]:
        """Every document with its sentences and passages, for incremental builds. Their vectors stay in the
        database (StoredVectors): a build into the same database copies them there, row for row."""
        t = self.tables
        docs = [document_from_row(r) for r in self.pool.all(
            sql.SQL(f"SELECT {DOCUMENT_COLUMNS} FROM {{}} ORDER BY ordinal").format(t.documents))]
        sentences: dict[str, list] = {}
        for row, doc_id, start, end in self.pool.all(sql.SQL(
                'SELECT id, doc_id, start, "end" FROM {} ORDER BY id').format(t.sentences)):
            sentences.setdefault(doc_id, []).append((row, Span(start, end)))
        passages: dict[str, list] = {}
        for row, doc_id, ordinal, start, end, first, last in self.pool.all(sql.SQL(
                'SELECT id, doc_id, ordinal, start, "end", first_sentence, last_sentence FROM {} '
                'ORDER BY id').format(t.passages)):
            passages.setdefault(doc_id, []).append((row, ordinal, start, end, first, last))
        dim = int(self.manifest["dim"])
        entries = {}
        for doc in docs:
            doc_sentences = sentences.get(doc.doc_id, [])
            doc_passages = passages.get(doc.doc_id, [])
            spans = [span for _, span in doc_sentences]
            first_sentence = doc_sentences[0][0] if doc_sentences else 0
            first_passage = doc_passages[0][0] if doc_passages else 0
            entries[doc.doc_id] = DocumentEntry(
                document=doc, sentences=spans,
                sentence_vectors=StoredVectors(self.pool, t.schema, "sentences", first_sentence, len(spans), dim),
                passages=[Passage(doc.doc_id, ordinal, start, end, doc.text[start:end],
                                  tuple(spans[first - first_sentence:last - first_sentence + 1]))
                          for _, ordinal, start, end, first, last in doc_passages],
                passage_vectors=StoredVectors(self.pool, t.schema, "passages", first_passage, len(doc_passages), dim))
        return entries


class StoredVectors:
    """The vectors of rows first..first+count of a stored generation's table, read only if asked for
    (np.asarray): a build into the same database copies them with INSERT ... SELECT instead."""

    def __init__(self, pool: Pool, schema: str, table: str, first: int, count: int, dim: int) -> None:
        self.pool, self.schema, self.table, self.first, self.count = pool, schema, table, first, count
        self.shape = (count, dim)

    def __len__(self) -> int:
        return self.count

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        rows = self.pool.all(sql.SQL("SELECT embedding FROM {}.{} WHERE id >= %s AND id < %s ORDER BY id").format(
            sql.Identifier(self.schema), sql.Identifier(self.table)), (self.first, self.first + self.count), binary=True)
        matrix = np.array([vector_from_binary(r[0]) for r in rows], dtype=np.float32).reshape(self.shape)
        return matrix.astype(dtype) if dtype is not None else matrix


def open_index(url: str, generation: str | None = None) -> PgIndex:
    """Open the current (or the named) generation of the store in the database at `url`."""
    name = generation or current_generation(url)
    if not name:
        raise NoIndexError(f"no index in the database {describe(url)}: run `qa index` first")
    pool = Pool.get(url)
    tables = _Tables(schema_name(name))
    try:
        manifest = {k: json.loads(v) for k, v in pool.all(sql.SQL("SELECT key, value FROM {}").format(tables.manifest))}
        if manifest.get("format") != FORMAT:
            raise IndexCorruptError(f"index generation {name} in {describe(url)} is in format {manifest.get('format')}, "
                                    f"and this version reads {FORMAT}: rebuild it with `qa index`")
        dim = int(manifest["dim"])
        counts = {table: manifest[table] for table in ("documents", "passages", "sentences")}
    except psycopg.errors.UndefinedTable:
        raise IndexCorruptError(f"index generation {name} is gone from {describe(url)} (dropped by a newer build); "
                                "the next check loads the current one") from None
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read index generation {name} from {describe(url)}: "
                            f"{str(exc).strip().splitlines()[0]}") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise IndexCorruptError(f"index generation {name} in {describe(url)} has a damaged manifest: {exc}") from None
    documents = PgDocuments(pool, tables, counts["documents"])
    sentence_spans = PgSentenceSpans(pool, tables, counts["sentences"])
    passages = PgPassages(pool, tables, counts["passages"], documents, sentence_spans)
    return PgIndex(
        generation=name, manifest=manifest, documents=documents, passages=passages,
        passage_vectors=PgVectors(pool, tables.passages, counts["passages"], dim),
        passage_sentence_rows=SentenceRows(passages), sentence_spans=sentence_spans,
        sentence_vectors=PgVectors(pool, tables.sentences, counts["sentences"], dim),
        pool=pool, tables=tables)


__all__ = ["PgIndex", "open_index", "DatabaseError"]

"""Writes one generation into PostgreSQL: a new schema filled in one transaction that also moves the pointer.

    writer = PgGenerationWriter(url, dim)
    for entry in entries: writer.add(entry)
    name = writer.commit(manifest)        # or writer.abort()

Until commit nothing is visible to other sessions; an exception (or a killed process) rolls everything back.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import numpy as np
import psycopg
from psycopg import sql

from qa.lexical import EMPTY, tokenize
from qa.pg.connect import DatabaseError, connect, describe, ensure_pgvector
from qa.pg.pointer import CHANNEL, read_pointer, version_problem
from qa.pg.schema import (GENERATION_DDL, GENERATION_INDEXES, LEXICAL_CANDIDATES_PER_WORD, META_DDL, META_SCHEMA,
                          SCHEMA_VERSION, schema_name, statements)
from qa.index_rows import DocumentEntry


def vector_text(vector: np.ndarray) -> str:
    # float32 -> Python float is exact, and its repr reads back (strtof) as the very same float32.
    return "[" + ",".join(map(repr, np.asarray(vector, dtype=np.float32).reshape(-1).tolist())) + "]"

FORMAT = "postgres-3"  # 2: terms.best, the lexical candidates of each word; 3: lexemes as the tokenizer gives them


def tsvector_text(tokens: list[str]) -> str:
    """The tokens as a tsvector literal, each with its positions: stored as they are ("2,7", "rusia-korea"), where
    to_tsvector would parse them again into "2" and "7", or count a hyphenated word's parts twice."""
    positions: dict[str, list[str]] = {}
    for position, token in enumerate(tokens[:MAX_TSVECTOR_POSITION], 1):
        if len(token.encode("utf-8")) <= MAX_LEXEME_BYTES:  # a longer one is refused, where to_tsvector skipped it
            positions.setdefault(token, []).append(str(position))
    return " ".join("'" + token.replace("\\", "\\\\").replace("'", "''") + "':" + ",".join(at)
                    for token, at in positions.items())


MAX_TSVECTOR_POSITION = 16_383  # PostgreSQL's highest position; a passage is far shorter
MAX_LEXEME_BYTES = 2_046  # PostgreSQL's longest word: a sentence of 700 CJK characters without a space is one token


class PgGenerationWriter:
    def __init__(self, url: str, dim: int, replace_other_versions: bool = False) -> None:
        self.url, self.dim = url, dim
        self.name = time.strftime("%Y%m%dT%H%M%S") + f"-{uuid.uuid4().hex[:8]}"
        self.schema = schema_name(self.name)
        self.documents = self.passages = self.sentences = 0
        self._conn = connect(url, autocommit=True)
        try:
            # A build killed mid-statement (an HNSW index can take many minutes) is noticed by the server within
            # seconds, which then stops the statement instead of finishing work nobody will commit. PostgreSQL 14+.
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SET client_connection_check_interval = '5s'")
            ensure_pgvector(self._conn, url)
            self._conn.autocommit = False  # from here on, one transaction up to commit()
            for statement in META_DDL.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            pointer = read_pointer(self._conn, url)
            if pointer is not None and pointer[0] != SCHEMA_VERSION:
                if not replace_other_versions or pointer[0] > SCHEMA_VERSION:
                    raise DatabaseError(version_problem(pointer[0], url))
                self._drop_all_generations()
            self._conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
            for statement in statements(GENERATION_DDL, self.schema, dim=dim):
                self._conn.execute(statement)
        except psycopg.Error as exc:
            self.abort()
            why = str(exc).strip().splitlines()[0]
            if exc.sqlstate == "42501":  # insufficient privilege
                why += (": the user in QA_DATABASE_URL must be allowed to create schemas in the database (GRANT "
                        "CREATE ON DATABASE …) and own the schema qa if it exists (ALTER SCHEMA qa OWNER TO …), "
                        "or build as the user who made it (docs/design.md, \"The PostgreSQL store\")")
            raise DatabaseError(f"cannot write the index into {describe(url)}: {why}") from None
        except BaseException:
            self.abort()
            raise

    def _drop_all_generations(self) -> None:
        """A rebuild over a store of an older schema version: drop its generations and tables (same transaction)."""
        rows = self._conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'qa\\_g\\_%%'").fetchall()
        for (schema,) in rows:
            self._conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        self._conn.execute(f"DROP SCHEMA {META_SCHEMA} CASCADE")
        for statement in META_DDL.split(";"):
            if statement.strip():
                self._conn.execute(statement)

    def _table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def add(self, entry: DocumentEntry) -> None:
        doc = entry.document
        cur = self._conn.cursor()
        cur.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s)").format(self._table("documents")),
                    (self.documents, doc.doc_id, doc.title, doc.text, json.dumps(doc.meta, ensure_ascii=False),
                     doc.sha256))
        if self._stored_here(entry):
            self._copy_stored(cur, entry)
        else:
            self._write_rows(cur, entry)
        self.documents += 1
        self.sentences += len(entry.sentences)
        self.passages += len(entry.passages)

    def _stored_here(self, entry: DocumentEntry) -> bool:
        """An unchanged article read back from a generation of this very database (qa.pg.reader.entries)."""
        from qa.pg.reader import StoredVectors

        vectors = (entry.sentence_vectors, entry.passage_vectors)
        return all(isinstance(v, StoredVectors) and v.pool.url == self.url for v in vectors)

    def _copy_stored(self, cur, entry: DocumentEntry) -> None:
        """Copy an unchanged article's rows from the generation it was read from, renumbered and under the
        article's id now (a renamed file keeps its vectors): no vector leaves the database."""
        sentences, passages = entry.sentence_vectors, entry.passage_vectors
        doc_id = entry.document.doc_id
        shift_sentences = self.sentences - sentences.first
        cur.execute(sql.SQL('INSERT INTO {} (id, doc_id, start, "end", embedding) '
                            'SELECT id + %s, %s, start, "end", embedding FROM {}.sentences '
                            'WHERE id >= %s AND id < %s').format(self._table("sentences"),
                                                                  sql.Identifier(sentences.schema)),
                    (shift_sentences, doc_id, sentences.first, sentences.first + sentences.count))
        cur.execute(sql.SQL('INSERT INTO {} (id, doc_id, ordinal, start, "end", first_sentence, last_sentence, lexemes, '
                            'embedding) SELECT id + %s, %s, ordinal, start, "end", first_sentence + %s, '
                            'last_sentence + %s, lexemes, embedding FROM {}.passages WHERE id >= %s AND id < %s').format(
                                self._table("passages"), sql.Identifier(passages.schema)),
                    (self.passages - passages.first, doc_id, shift_sentences, shift_sentences, passages.first,
                     passages.first + passages.count))

    def _write_rows(self, cur, entry: DocumentEntry) -> None:
        doc = entry.document
        first_row = {(span.start, span.end): self.sentences + offset for offset, span in enumerate(entry.sentences)}
        sentence_vectors = np.asarray(entry.sentence_vectors, dtype=np.float32).reshape(len(entry.sentences), self.dim)
        passage_vectors = np.asarray(entry.passage_vectors, dtype=np.float32).reshape(len(entry.passages), self.dim)
        with cur.copy(sql.SQL('COPY {} (id, doc_id, start, "end", embedding) FROM STDIN').format(
                self._table("sentences"))) as copy:
            for offset, span in enumerate(entry.sentences):
                copy.write_row((self.sentences + offset, doc.doc_id, span.start, span.end,
                                vector_text(sentence_vectors[offset])))
        with cur.copy(sql.SQL('COPY {} (id, doc_id, ordinal, start, "end", first_sentence, last_sentence, lexemes, '
                              'embedding) FROM STDIN').format(self._table("passages"))) as copy:
            for offset, passage in enumerate(entry.passages):
                copy.write_row((self.passages + offset, doc.doc_id, passage.ordinal, passage.start, passage.end,
                                first_row[(passage.sentences[0].start, passage.sentences[0].end)],
                                first_row[(passage.sentences[-1].start, passage.sentences[-1].end)],
                                tsvector_text(tokenize(passage.text)) or tsvector_text([EMPTY]),
                                vector_text(passage_vectors[offset])))

    def commit(self, manifest: dict) -> str:
        """Index the tables, record the manifest, point qa.store at the new generation and commit."""
        full_manifest = {**manifest, "format": FORMAT, "generation": self.name, "documents": self.documents,
                         "passages": self.passages, "sentences": self.sentences, "vector_index": "hnsw",
                         "lexical": "postgresql full-text search (the BM25 tokenizer's words)",
                         "lexical_candidates_per_word": LEXICAL_CANDIDATES_PER_WORD,
                         "schema_version": SCHEMA_VERSION}
        try:
            for statement in statements(GENERATION_INDEXES, self.schema, cap=LEXICAL_CANDIDATES_PER_WORD):
                self._conn.execute(statement)
            self._conn.cursor().executemany(
                sql.SQL("INSERT INTO {} VALUES (%s, %s)").format(self._table("manifest")),
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in full_manifest.items()])
            self._conn.execute(f"INSERT INTO {META_SCHEMA}.generations (name, schema_name) VALUES (%s, %s)",
                               (self.name, self.schema))
            self._conn.execute(
                f"INSERT INTO {META_SCHEMA}.store (singleton, schema_version, current_generation) "
                "VALUES (true, %s, %s) ON CONFLICT (singleton) DO UPDATE "
                "SET schema_version = EXCLUDED.schema_version, current_generation = EXCLUDED.current_generation",
                (SCHEMA_VERSION, self.name))
            self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.name))
            self._conn.commit()
        except psycopg.Error as exc:
            self.abort()
            raise DatabaseError(f"cannot write the index into {describe(self.url)}: "
                                f"{str(exc).strip().splitlines()[0]}") from None
        except BaseException:
            self.abort()
            raise
        self._conn.close()
        return self.name

    def abort(self) -> None:
        try:
            if not self._conn.closed:
                self._conn.rollback()
        except psycopg.Error:
            pass
        self._conn.close()

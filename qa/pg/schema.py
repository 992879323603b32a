"""The PostgreSQL store's tables.

    qa.store                 one row: the schema version and the name of the current generation
    qa.generations           every complete generation and the schema that holds it
    qa_g_<name>.manifest     key -> JSON value (model, dim, pipeline version, counts, built_at, ...)
    qa_g_<name>.documents    ordinal, doc_id, title, text, meta (JSON), sha256
    qa_g_<name>.sentences    id (the sentence row), doc_id, start, end, embedding vector(dim)
    qa_g_<name>.passages     id (the passage row), doc_id, ordinal, start, end, first/last sentence row,
                             lexemes (the passage's words as the embedded store's BM25 sees them), tsv (a
                             tsvector of them), embedding vector(dim); HNSW on embedding, GIN on tsv
    qa_g_<name>.terms        word -> number of passages holding it (the lexical side's idf), and the ids of the
                             LEXICAL_CANDIDATES_PER_WORD passages its ts_rank ranks highest (the lexical candidates)

A generation is one schema, written in one transaction that also moves qa.store's pointer: readers see the old
generation or the new one, never a part. Dropping a generation is one DROP SCHEMA.
"""

from __future__ import annotations

import re

from psycopg import sql

SCHEMA_VERSION = 1
META_SCHEMA = "qa"
GENERATION_PREFIX = "qa_g_"
BUILD_LOCK_KEY = 0x71614E57  # pg_advisory_lock key held by the one build that may run at a time
HNSW_EF_SEARCH = 200  # candidates HNSW keeps per search; above the retriever's depth (50), else it returns fewer
# A question's lexical candidates are, for each of its words, the passages that word alone ranks highest: exact for
# every word held by fewer passages, and a bounded amount of work per question at any collection size.
LEXICAL_CANDIDATES_PER_WORD = 100

META_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {META_SCHEMA};
CREATE TABLE IF NOT EXISTS {META_SCHEMA}.store (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    schema_version integer NOT NULL,
    current_generation text
);
CREATE TABLE IF NOT EXISTS {META_SCHEMA}.generations (
    name text PRIMARY KEY,
    schema_name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

GENERATION_DDL = """
CREATE TABLE {s}.manifest (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE {s}.documents (ordinal integer PRIMARY KEY, doc_id text NOT NULL UNIQUE, title text NOT NULL,
                            text text NOT NULL, meta text NOT NULL, sha256 text NOT NULL);
CREATE TABLE {s}.sentences (id integer PRIMARY KEY, doc_id text NOT NULL, start integer NOT NULL,
                            "end" integer NOT NULL, embedding vector({dim}) NOT NULL);
CREATE TABLE {s}.passages (id integer PRIMARY KEY, doc_id text NOT NULL, ordinal integer NOT NULL,
                           start integer NOT NULL, "end" integer NOT NULL, first_sentence integer NOT NULL,
                           last_sentence integer NOT NULL, lexemes text NOT NULL,
                           tsv tsvector GENERATED ALWAYS AS (lexemes::tsvector) STORED,
                           embedding vector({dim}) NOT NULL);
CREATE TABLE {s}.terms (word text PRIMARY KEY, passages integer NOT NULL, best integer[] NOT NULL);
"""

# terms: OFFSET 0 keeps the (word, passage, rank) rows a subquery of their own; flattened, PostgreSQL sorted each
# pair with its passage's whole tsvector (3.8 GB of temporary files at 100k passages; 1M ran out of disk).
GENERATION_INDEXES = """
CREATE INDEX ON {s}.passages USING hnsw (embedding vector_ip_ops);
CREATE INDEX ON {s}.passages USING gin (tsv);
CREATE INDEX ON {s}.passages (doc_id);
CREATE INDEX ON {s}.sentences (doc_id);
INSERT INTO {s}.terms (word, passages, best)
    SELECT word, count(*), (array_agg(id ORDER BY rank DESC, id))[1:{cap}]
    FROM (SELECT t.lexeme AS word, p.id, ts_rank(p.tsv, ('''' || replace(replace(t.lexeme, '\', '\\'), '''', '''''')
                 || '''')::tsquery, 1) AS rank
          FROM {s}.passages p CROSS JOIN unnest(p.tsv) t
          OFFSET 0) pairs
    GROUP BY word;
ANALYZE {s}.passages;
ANALYZE {s}.sentences;
ANALYZE {s}.documents;
"""


def schema_name(generation: str) -> str:
    name = GENERATION_PREFIX + re.sub(r"[^a-z0-9]", "_", generation.lower())
    if len(name) > 63:
        raise ValueError(f"generation name {generation!r} is too long for a schema name")
    return name


def statements(template: str, schema: str, **values) -> list[sql.Composed]:
    """The template's statements with the schema name quoted as an identifier."""
    text = template.replace("{s}", "{schema}")
    out = []
    for statement in text.split(";"):
        if statement.strip():
            out.append(sql.SQL(statement.strip()).format(schema=sql.Identifier(schema),
                                                         **{k: sql.SQL(str(v)) for k, v in values.items()}))
    return out

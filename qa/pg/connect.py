"""Connections to the PostgreSQL store, and errors that say what is wrong with the database and how to fix it."""

from __future__ import annotations

import os
import threading
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import errors as pg_errors

from qa.pg.schema import HNSW_EF_SEARCH

CONNECT_TIMEOUT_S = 5
# A request waits at most this long for a pooled connection: less than the request timeout (10 s), so a database
# that is down gets a 503 that says so, not a 504.
POOL_WAIT_S = 4
# How long the pool retries a lost connection, with its backoff doubling from 1 s; after that a request that finds
# no connection opens one at once. Without the bound a database back after a two-minute outage waited for the
# pool's next try, up to a minute away.
RECONNECT_TIMEOUT_S = 10


NOT_A_URL = ("QA_DATABASE_URL is not a valid PostgreSQL URL: write it as postgresql://user:password@host:port/database, "
             "with special characters in the password percent-encoded (@ as %40, % as %25, / as %2F)")


class DatabaseError(Exception):
    """The PostgreSQL store cannot be used; the message names the problem and the fix."""


def _password_unencoded(url: str) -> bool:
    """A URL whose password holds an @ or / as it is: everything after it is misread (as the host, the path), and
    whatever names the host would print part of the password. An @ after the first / (in what would be the
    database's name) is such a password's end."""
    address = url.partition("://")[2].partition("?")[0]
    return address.count("@") > 1 or "@" in address.partition("/")[2]


def describe(url: str) -> str:
    """The database a URL names, without its password: `user@host:port/db`."""
    if _password_unencoded(url):
        return "the database of QA_DATABASE_URL"
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        parts = urlsplit(url)
        return f"{parts.hostname or ''}{parts.path}"
    host = info.get("host") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    user = f"{info['user']}@" if info.get("user") else ""
    return f"{user}{host}{port}/{info.get('dbname') or ''}"


SERVER_WORDS_LEFT_OUT = "the server's own words are left out: they hold the password's letters"


def without_secret(text: str, url: str) -> str:
    """`text`, unless it holds the URL's password (as written or as decoded): libpq echoes the part of a URL it
    could not read, and a message may reach a log or an HTTP reply. Blotting the password out where it occurs
    would show it too, when it is a word of the message ("server", "x" in "timeout expired")."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if any(secret in text for secret in {password, unquote(password or "")} - {None, ""}):
        return SERVER_WORDS_LEFT_OUT
    return text


def explain(exc: Exception, url: str) -> str:
    """A one-line explanation of why connecting to `url` failed."""
    where = describe(url)
    state = getattr(exc, "sqlstate", None)
    text = str(exc).strip()  # what kind of failure it is, read from the whole message; only `first` is shown
    shown = without_secret(text, url)
    first = shown.splitlines()[0] if shown else type(exc).__name__
    if state == "28P01" or "password authentication failed" in text:
        return (f"PostgreSQL at {where} refused the password: check the user and password in QA_DATABASE_URL")
    if "no password supplied" in text:
        return f"PostgreSQL at {where} asks for a password and QA_DATABASE_URL has none: add it (postgresql://user:password@host/db)"
    if state == "3D000" or ("database" in text and "does not exist" in text):
        return f"the database in QA_DATABASE_URL does not exist on {where}: create it (createdb) or fix the URL"
    if state == "28000" or ("role" in text and "does not exist" in text):
        return f"PostgreSQL at {where} does not accept this user ({first}): fix the user in QA_DATABASE_URL"
    if "invalid" in text and ("value" in text or "option" in text or "URI" in text):
        return NOT_A_URL
    reason = first.removeprefix("connection failed: ").removeprefix("connection is bad: ")
    return (f"cannot reach PostgreSQL at {where} ({reason}): is the server running, and are the host and port in "
            "QA_DATABASE_URL right?")


def connect(url: str, autocommit: bool = True) -> psycopg.Connection:
    """A new connection. Vectors travel as text ('[0.1,...]'::vector) one way and pgvector's binary format the other
    (qa.pg.reader.vector_from_binary), so no type registration is needed: a connection opened before the
    extension existed reads vectors as well as any."""
    if _password_unencoded(url):
        raise DatabaseError(NOT_A_URL)
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.ProgrammingError:  # libpq's own words quote the URL, password and all: not repeated
        raise DatabaseError(NOT_A_URL) from None
    except psycopg.OperationalError as exc:
        raise DatabaseError(explain(exc, url)) from None
    return conn


def ensure_pgvector(conn: psycopg.Connection, url: str) -> None:
    """Enable pgvector in the database, or say why it cannot be."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    where = describe(url)
    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone():
        raise DatabaseError(f"the PostgreSQL server at {where} does not have the pgvector extension installed: "
                            "install it on the server (e.g. the postgresql-NN-pgvector package or the "
                            "pgvector/pgvector image), then run `qa index` again")
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except (pg_errors.InsufficientPrivilege, pg_errors.FeatureNotSupported) as exc:
        raise DatabaseError(f"pgvector is installed on {where} but not enabled in this database, and this user may "
                            f"not enable it ({str(exc).strip().splitlines()[0]}): ask an administrator to run "
                            "`CREATE EXTENSION vector;` in the database, then run `qa index` again") from None


def _configure(conn: psycopg.Connection) -> None:
    # Once per session: as SET LOCAL in a transaction per search it cost ~1.5 ms of a 7 ms HNSW query at 100k.
    conn.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")


class Pool:
    """A small per-process pool of autocommit connections to one database, shared by the threads of a process
    and by every generation it opens."""

    _pools: dict[tuple[int, str], Pool] = {}
    _lock = threading.Lock()

    def __init__(self, url: str, size: int = 4) -> None:
        from psycopg_pool import ConnectionPool

        connect(url).close()  # a clear error now rather than a pool timeout later
        self.url = url
        self._pool = ConnectionPool(url, min_size=1, max_size=size, open=True, timeout=POOL_WAIT_S,
                                    reconnect_timeout=RECONNECT_TIMEOUT_S,
                                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
                                    configure=_configure, name="qa-store")

    @classmethod
    def get(cls, url: str) -> Pool:
        key = (os.getpid(), url)  # a forked child must not share its parent's sockets
        with cls._lock:
            pool = cls._pools.get(key)
            if pool is None:
                pool = cls._pools[key] = cls(url)
            return pool

    @classmethod
    def close_all(cls) -> None:
        """Close this process's pools: one that only looked at the store (a supervisor of worker processes) keeps
        no connection open for its whole life."""
        with cls._lock:
            for key in [key for key in cls._pools if key[0] == os.getpid()]:
                cls._pools.pop(key)._pool.close()

    def connection(self):
        return self._pool.connection()

    def all(self, sql, args=(), binary: bool = False) -> list[tuple]:
        with self._pool.connection() as conn, conn.cursor(binary=binary) as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def one(self, sql, args=(), binary: bool = False) -> tuple | None:
        with self._pool.connection() as conn, conn.cursor(binary=binary) as cur:
            cur.execute(sql, args)
            return cur.fetchone()

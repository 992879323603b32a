"""The store's one pointer row: which generation is current, checked against the schema version this code reads;
pruning old generations; the build lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from qa.files.schema import KEEP_GENERATIONS
from qa.pg.connect import DatabaseError, Pool, connect, describe
from qa.pg.schema import BUILD_LOCK_KEY, META_SCHEMA, SCHEMA_VERSION

CHANNEL = "qa_generation"  # a build NOTIFYs it with the new generation's name as it commits
RELISTEN_S = 5.0
PRUNE_LOCK_WAIT_MS = 2000  # how long a build waits to drop an old generation that someone is still reading


class StoreBusyError(DatabaseError):
    pass


def version_problem(found: int, url: str) -> str | None:
    if found == SCHEMA_VERSION:
        return None
    where = describe(url)
    if found < SCHEMA_VERSION:
        return (f"the qa store in {where} has schema version {found}; this version of qa reads version "
                f"{SCHEMA_VERSION}: run `qa index --rebuild` to rebuild it in the new schema (it replaces the old "
                "tables in one transaction; see docs/design.md, \"The PostgreSQL store\")")
    return (f"the qa store in {where} has schema version {found}, written by a newer version of qa (this one "
            f"reads {SCHEMA_VERSION}): upgrade qa, or point QA_DATABASE_URL at another database")


def read_pointer(conn: psycopg.Connection, url: str) -> tuple[int, str | None] | None:
    """(schema version, current generation), or None when the database holds no qa store yet."""
    try:
        row = conn.execute(f"SELECT schema_version, current_generation FROM {META_SCHEMA}.store").fetchone()
    except pg_errors.UndefinedTable:
        if not conn.autocommit:
            conn.rollback()
        return None
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read the qa store in {describe(url)}: {str(exc).strip().splitlines()[0]}") from None
    return (int(row[0]), row[1]) if row else None


def current_generation(url: str) -> str | None:
    """The current generation's name, or None when nothing was indexed into the database yet. Raises
    DatabaseError for a database that cannot be reached or holds a store of another schema version."""
    pool = Pool.get(url)
    try:
        with pool.connection() as conn:
            pointer = read_pointer(conn, url)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"lost the connection to PostgreSQL at {describe(url)}: "
                            f"{str(exc).strip().splitlines()[0]}") from None
    if pointer is None:
        return None
    problem = version_problem(pointer[0], url)
    if problem:
        raise DatabaseError(problem)
    return pointer[1]


def prune(conn: psycopg.Connection) -> list[str]:
    """Drop every generation but the current one and the newest other. Returns the dropped names. A store of
    another schema version is left alone: a newer qa's is never touched, an older one is replaced whole by the
    build that migrates it."""
    row = conn.execute(f"SELECT schema_version, current_generation FROM {META_SCHEMA}.store").fetchone()
    if row and int(row[0]) != SCHEMA_VERSION:
        return []
    current = row[1] if row else None
    rows = conn.execute(f"SELECT name, schema_name FROM {META_SCHEMA}.generations ORDER BY created_at DESC, name DESC").fetchall()
    keep = {current, *[name for name, _ in rows if name != current][:KEEP_GENERATIONS - 1]}
    dropped = []
    for name, schema in rows:
        if name in keep:
            continue
        try:
            with conn.transaction():
                # A generation someone still reads (a backup, an open transaction) is left for the next build:
                # waiting for it would hang the build, holding the build lock, for as long as they read.
                conn.execute(f"SET LOCAL lock_timeout = '{PRUNE_LOCK_WAIT_MS}ms'")
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
                conn.execute(f"DELETE FROM {META_SCHEMA}.generations WHERE name = %s", (name,))
        except psycopg.errors.LockNotAvailable:
            continue
        dropped.append(name)
    return dropped


def build_running(url: str) -> bool:
    """Whether a build holds the build lock of this database now (False when that cannot be told)."""
    try:
        row = Pool.get(url).one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((classid::bigint << 32) | objid::bigint) = %s)", (BUILD_LOCK_KEY,))
    except (psycopg.Error, DatabaseError):
        return False
    return bool(row and row[0])


@contextmanager
def build_lock(url: str, timeout: float = 0.0):
    """Held by the one build that may run against a database at a time (a session advisory lock: it goes
    with the connection, so a killed build never leaves it behind). Yields the lock's autocommit connection."""
    conn = connect(url)
    try:
        deadline = time.monotonic() + timeout
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (BUILD_LOCK_KEY,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise StoreBusyError(f"another build into {describe(url)} is running; try again when it has finished "
                                     "(`qa index --wait SECONDS` waits for it)")
            time.sleep(0.2)
        yield conn
    finally:
        conn.close()


def follow_generations(url: str, on_new: Callable[[str], None], stop: threading.Event) -> None:
    """Call on_new(name) for each generation committed to the database (LISTEN), until `stop` is set; listen
    again after a lost connection. Servers also poll qa.store, so a missed notification only delays a switch."""
    while not stop.is_set():
        try:
            with connect(url) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                while not stop.is_set():
                    for notification in conn.notifies(timeout=1.0):
                        on_new(notification.payload)
        except (DatabaseError, psycopg.Error):
            stop.wait(RELISTEN_S)

"""The PostgreSQL store's side of a build (qa.indexer): the advisory lock, pruning and writing generations, and
the database's failures said as the build's errors."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg

from qa.config import Settings
from qa.index_rows import (BuildBusyError, BuildError, DocumentEntry, IndexWriteError, StoreUnavailableError,
                           write_all)
from qa.pg.connect import DatabaseError, describe
from qa.pg.pointer import StoreBusyError, build_lock
from qa.pg.pointer import prune as prune_generations
from qa.pg.writer import PgGenerationWriter


class DatabaseBuildStore:
    """The PostgreSQL store's side of a build: an advisory lock, generations as schemas written in one transaction."""

    def __init__(self, settings: Settings, rebuild: bool) -> None:
        self.url = settings.database_url
        self.rebuild = rebuild
        self._lock_conn = None

    @contextmanager
    def as_build_errors(self):
        """Around the whole build: the database's failures, wherever the build met them, as the build's errors."""
        try:
            yield
        except DatabaseError as exc:
            raise StoreUnavailableError(f"{exc} (the index was left as it was)") from None
        except psycopg.OperationalError as exc:  # the connection was lost mid-build
            raise StoreUnavailableError(f"lost the connection to {describe(self.url)}: "
                                        f"{str(exc).strip().splitlines()[0]} (the index was left as it was)") from None
        except psycopg.Error as exc:
            # SQLSTATE class 53, insufficient resources (a full disk): the server's trouble, as a full disk is here.
            failed = IndexWriteError if (exc.sqlstate or "").startswith("53") else BuildError
            raise failed(f"writing the index into {describe(self.url)} failed: "
                         f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0]} (the index was left as it "
                         "was)") from None

    @contextmanager
    def locked(self, timeout: float):
        try:
            with build_lock(self.url, timeout) as conn:
                self._lock_conn = conn
                # Said now, not after every article has been embedded: a generation's tables are made and rolled
                # back, which needs what the real one will (pgvector enabled, the right to create schemas, a store
                # of this schema version or --rebuild).
                PgGenerationWriter(self.url, 1, replace_other_versions=self.rebuild).abort()
                yield
        except StoreBusyError as exc:
            raise BuildBusyError(str(exc)) from None
        finally:
            self._lock_conn = None

    def prune(self) -> None:
        if self._lock_conn is not None:
            try:
                prune_generations(self._lock_conn)
            except Exception:  # an older schema version, or a race with a reader: the next build prunes
                pass

    def write(self, entries: list[DocumentEntry], manifest: dict) -> str:
        writer = PgGenerationWriter(self.url, int(manifest["dim"]), replace_other_versions=self.rebuild)
        return write_all(writer, entries, manifest)

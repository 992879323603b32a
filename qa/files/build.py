"""The embedded store's side of a build (qa.indexer): the lock on the index folder, pruning and writing
generations, their failures said as the build's errors."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from contextlib import contextmanager

from filelock import FileLock, Timeout

from qa.config import Settings
from qa.files.schema import BUILDING_FILE, GENERATIONS_DIR, LOCK_FILE
from qa.files.writer import prune_generations, write_generation
from qa.index_rows import BuildBusyError, BuildError, DocumentEntry, IndexWriteError, NoIndexError


class FileBuildStore:
    """The embedded store's side of a build: a file lock in the index folder, generations as folders."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def as_build_errors(self):
        """Around the whole build: this store's failures are raised as the build's errors where they happen."""
        return contextlib.nullcontext()

    @contextmanager
    def locked(self, timeout: float):
        index_dir = self.settings.index_dir
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise BuildError(f"cannot make the index folder {index_dir}: it or a folder above it is a file") from None
        except OSError as exc:
            raise BuildError(f"cannot make the index folder {index_dir}: {exc.strerror or exc}") from None
        # Said now, not after every article has been embedded.
        for folder in (index_dir, index_dir / GENERATIONS_DIR):
            if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
                raise BuildError(f"cannot write to the index folder {folder}: permission denied")
        lock = FileLock(str(index_dir / LOCK_FILE))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise BuildBusyError(f"another build of {index_dir} is running; try again when it has finished "
                                 "(`qa index --wait SECONDS` waits for it)") from None
        except OSError as exc:
            raise BuildError(f"cannot lock the index folder {index_dir}: {exc.strerror or exc}") from None
        marker = index_dir / BUILDING_FILE
        try:
            with contextlib.suppress(OSError):  # only a message depends on it (qa.files.pointer.build_running)
                marker.write_text(f"{os.getpid()}\n", encoding="ascii")
            yield
        finally:
            with contextlib.suppress(OSError):
                marker.unlink(missing_ok=True)
            lock.release()

    def prune(self) -> None:
        try:
            prune_generations(self.settings.index_dir)
        except NoIndexError as exc:  # CURRENT is a folder, or not text: no build can replace it
            raise BuildError(f"{exc}: remove it, and the next build starts the index anew") from None

    def write(self, entries: list[DocumentEntry], manifest: dict) -> str:
        index_dir = self.settings.index_dir
        try:
            return write_generation(index_dir, entries, manifest)
        except (OSError, sqlite3.Error, RuntimeError) as exc:  # RuntimeError: FAISS's, as when the disk is full
            why = (exc.strerror if isinstance(exc, OSError) and exc.strerror else
                   (str(exc).strip().splitlines() or [type(exc).__name__])[0])
            raise IndexWriteError(f"writing the index into {index_dir} failed ({why[:300]}); the previous index "
                                  "is still the one in use") from None

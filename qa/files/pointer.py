"""The index folder's pointer files (CURRENT, PREVIOUS), replaced atomically; whether a build holds the lock; the
command that builds an index."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path

from qa.files.schema import BUILDING_FILE, CURRENT_FILE, GENERATIONS_DIR, STORE_FILE
from qa.index_rows import NoIndexError


def current_generation(index_dir: Path, pointer: str = CURRENT_FILE) -> str | None:
    """The generation CURRENT names (or another pointer file: PREVIOUS), None when there is none."""
    try:
        name = (index_dir / pointer).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise NoIndexError(f"the index folder {index_dir} is a file, not a folder") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NoIndexError(f"cannot read {index_dir / pointer}: {getattr(exc, 'strerror', None) or exc}") from None
    return name or None


def built_with(index_dir: Path) -> str | None:
    """The model the current generation was embedded with, as its manifest names it, read without loading the
    index; None when there is no readable index (loading it says why)."""
    try:
        name = current_generation(index_dir)
        if not name:
            return None
        store = (index_dir / GENERATIONS_DIR / name / STORE_FILE).resolve()
        with contextlib.closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM manifest WHERE key = 'model'").fetchone()
        return json.loads(row[0]) if row else None
    except (NoIndexError, sqlite3.Error, ValueError):
        return None


def build_running(index_dir: Path) -> bool:
    """Whether a build of this folder runs now, in any process of this machine: the lock's holder writes its
    process id beside the lock. A build killed with kill -9 leaves the file; its process is gone, or its number
    has since gone to a process that started after the file was written."""
    marker = index_dir / BUILDING_FILE
    try:
        pid = int(marker.read_text(encoding="ascii"))
        written = marker.stat().st_mtime
        os.kill(pid, 0)
    except PermissionError:  # a process of another user: it exists
        return True
    except (OSError, ValueError, OverflowError):
        return False
    started = _process_start(pid)
    return started is None or started <= written + 1.0  # a second's slack for the clock-tick rounding


def _process_start(pid: int) -> float | None:
    """When a process started, in seconds since the epoch (Linux's /proc), or None where that cannot be read."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def point_to(index_dir: Path, pointer: str, name: str) -> None:
    """Make a pointer file name a generation, atomically: written aside, flushed to disk, then renamed over."""
    written = index_dir / f"{pointer}.{name}.tmp"
    with open(written, "w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(written, index_dir / pointer)


def index_command(index_dir: Path) -> str:
    """The command that builds the index in `index_dir`, wherever it is run from."""
    import shlex

    return f"qa index --index {shlex.quote(str(index_dir))}"

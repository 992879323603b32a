"""Bytes that take seconds to build at load and never change for the same inputs, kept on disk under a key of
those inputs (the reader's quantized graph, the tokenizer's model). A copy is checked against the sha256 written
beside it; a missing, damaged or unwritable copy only costs building it again, and so does a copy whose
checksum matches but that cannot be used (written whole by something else, or by a version that built it
wrong): `rebuilt_bytes`, `cached_and_loaded`."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
Loaded = TypeVar("Loaded")


def cached_copy(file: Path) -> bytes | None:
    """The cached bytes, if a copy is there and its checksum matches."""
    try:
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() == file.with_name(file.name + ".sha256").read_text().strip():
            return data
    except OSError:
        pass  # not built yet, or unreadable
    return None


def built_bytes(file: Path, build: Callable[[], bytes]) -> bytes:
    """Build, and keep a copy for next time."""
    data = build()
    _keep(file, data)
    return data


def _keep(file: Path, data: bytes) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f"{file.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(file)
        file.with_name(file.name + ".sha256").write_text(hashlib.sha256(data).hexdigest() + "\n")
    except OSError:
        pass  # only costs building it again next time


def rebuilt_bytes(file: Path, build: Callable[[], bytes]) -> bytes:
    """Build again, in place of a cached copy that could not be used although its checksum matched."""
    log.warning("the cached file %s could not be used; building it again", file)
    return built_bytes(file, build)


def cached_and_loaded(file: Path, build: Callable[[], bytes], load: Callable[[bytes], Loaded]) -> Loaded:
    """`load` of the cached bytes; a cached copy that `load` rejects is built again, once."""
    cached = cached_copy(file)
    if cached is None:
        return load(built_bytes(file, build))
    try:
        return load(cached)
    except Exception:  # noqa: BLE001 - whatever the loader raises of bytes it cannot use
        return load(rebuilt_bytes(file, build))

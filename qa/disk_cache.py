"""Bytes that take seconds to build at load and never change for the same inputs, kept on disk under a key of
those inputs (the reader's quantized graph, the tokenizer's model). A copy is checked against the sha256 written
beside it; a missing, damaged or unwritable copy only costs building it again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path


def cached_bytes(file: Path, build: Callable[[], bytes]) -> bytes:
    check = file.with_name(file.name + ".sha256")
    try:
        data = file.read_bytes()
        if hashlib.sha256(data).hexdigest() == check.read_text().strip():
            return data
    except OSError:
        pass  # not built yet, or unreadable: build it
    data = build()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f"{file.name}.{os.getpid()}.tmp")
        partial.write_bytes(data)
        partial.replace(file)
        check.write_text(hashlib.sha256(data).hexdigest() + "\n")
    except OSError:
        pass
    return data

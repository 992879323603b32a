"""What the benchmark scripts share: a command line whose help is the script's whole docstring with every default
shown, checked numbers and files (to read and to write), and one way to stop with a message instead of a traceback."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import NoReturn

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
from qa.config import SHARED_DIR  # noqa: E402 - the training and evaluation data beside the project


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def command_line(doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=doc, formatter_class=_Help)


def stop(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def at_least_one(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def counts(text: str) -> list[int]:
    """"1,8" -> [1, 8]: a comma-separated list of whole numbers of at least 1."""
    try:
        return [at_least_one(part) for part in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be whole numbers of at least 1 separated by commas, not {text!r}")


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is {'a folder' if path.is_dir() else 'not there'}: give a file")
    return path


def file_to_write(text: str) -> Path:
    """A file the script will write when it is done: checked now, so that a long run does not end in a traceback."""
    path = Path(text)
    folder = path.parent
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give the name of a file to write")
    if folder.exists() and not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: {folder} is a file, not a folder")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text}: the folder {folder} does not exist; create it first "
                                         "or give another path")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {text}: no permission; give a path you may write")
    return path


def _finite(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def positive_number(text: str) -> float:
    value = _finite(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}")
    return value


def zero_or_more(text: str) -> float:
    value = _finite(text)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of 0 or more, not {text!r}")
    return value


def disk_bytes(path: Path) -> int:
    """The size of every file under a folder (an index generation), in bytes."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def shared_file(relative: str, what: str) -> Path:
    """A file of ../shared (the project's training and evaluation data), or a stop that says which is missing."""
    path = SHARED_DIR / relative
    if not path.is_file():
        stop(f"{path} is not there: this benchmark needs {what} (the project's data folder ../shared beside it)")
    return path

"""What the benchmark scripts share: a command line whose help is the script's whole docstring with every default
shown, checked numbers and files, and one way to stop with a message instead of a traceback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

PROJECT_DIR = Path(__file__).resolve().parent.parent
SHARED_DIR = PROJECT_DIR.parent / "shared"  # the training and evaluation data beside the project


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


def shared_file(relative: str, what: str) -> Path:
    """A file of ../shared (the project's training and evaluation data), or a stop that says which is missing."""
    path = SHARED_DIR / relative
    if not path.is_file():
        stop(f"{path} is not there: this benchmark needs {what} (the project's data folder ../shared beside it)")
    return path

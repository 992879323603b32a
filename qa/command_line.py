"""What every `qa` command shares: its exit codes, how it fails (one line on stderr, and JSON on stdout for a
program reading it), the folders it makes, and SIGTERM taken as Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path

import typer

EXIT_OK, EXIT_SKIPPED, EXIT_FAILED = 0, 1, 2


class StopSignal:
    """The signal that stopped a command: Ctrl-C's SIGINT unless SIGTERM came."""

    def __init__(self) -> None:
        self.signum = signal.SIGINT

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # as shells report it: 130 for Ctrl-C, 143 for SIGTERM


@contextlib.contextmanager
def stopped_as_by_ctrl_c():
    """While inside, SIGTERM (from `timeout`, systemd or `kill`) stops the command as Ctrl-C does, with a
    KeyboardInterrupt the command answers in one line; the handler before is put back after."""
    stopped = StopSignal()

    def stop(signum: int, _frame) -> None:
        stopped.signum = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)


def folder_path(value: str) -> Path:
    """A folder option's value (typer's `parser=`): an empty one is refused, as Path("") would be the current
    folder, which nobody means by it (a script's unset variable)."""
    if not value.strip():
        raise typer.BadParameter("is empty: name a folder, or leave the option out for the default")
    return Path(value)


def make_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot make {what} {folder}: {exc.strerror or exc}"
             + (" (it or a folder above it is a file)" if isinstance(exc, (FileExistsError, NotADirectoryError)) else ""))


def fail(message: str, code: int = EXIT_FAILED, as_json: bool = False) -> None:
    """Exit with `message` on stderr; with --json, also as {"error": message} on stdout for the program reading it."""
    if as_json:
        typer.echo(json.dumps({"error": message}, ensure_ascii=False))
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)

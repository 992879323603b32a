"""`qa serve --watch`: rebuild the index when files in the corpus folder change (debounced)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

from qa import backend
from qa.config import Settings
from qa.index_rows import BuildError
from qa.indexer import build_index, some_of
from qa.load import ARTICLE_SUFFIXES, scan_corpus, shown_path

log = logging.getLogger(__name__)
# A burst of changes (an editor saving, a copy, a git checkout) becomes one rebuild: it starts once the
# folder has been quiet for QUIET_MS, or after DEBOUNCE_MS of changes that do not stop.
QUIET_MS = 1000
DEBOUNCE_MS = 10_000
REARM_WAIT_S = 1.0  # between looks for a corpus folder that is gone; doubled after each failure to watch
MAX_REARM_WAIT_S = 60.0
IDENTITY_CHECK_MS = 2000  # how often, without changes, whether another folder has taken the corpus path
NAMES_SHOWN = 5  # changed files named in the log line of a rebuild


def _wakes_us(folder: Path):
    """The changes worth a look: an article file, or a folder (moved in or out, renamed, made with files already in
    it: a folder's change comes as one event for the folder, not one for each file in it), or a path that is gone
    (it may have been a folder, whatever its name: "arsip.2023"); never below a hidden name (.git, an index kept in
    the corpus). Whether to rebuild is then the fingerprint's to say: a path gone that was no article changes
    nothing."""
    def wakes(_change, path: str) -> bool:
        where = Path(path)
        try:
            parts = where.relative_to(folder).parts
        except ValueError:
            parts = (where.name,)
        if any(part.startswith(".") for part in parts):
            return False
        return path.lower().endswith(ARTICLE_SUFFIXES) or where.is_dir() or not where.exists()

    return wakes


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder is at this path (None: none): a folder moved away and another put in its place differ, and so
    do the targets of a link that is pointed elsewhere."""
    try:
        info = folder.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if folder.is_dir() else None


def _is_the_folder(path: str, folder: Path) -> bool:
    """Whether a change is to the watched folder itself: removed and made again, it can get its old inode number
    back, and only this event says that what is watched is gone."""
    return os.path.abspath(path) in {os.path.abspath(folder), os.path.realpath(folder)}


def _fingerprint(folder: Path) -> int:
    """A cheap summary of the article files a build would read (scan_corpus's: names, sizes and modification
    times, of a link's target for a link), to tell whether anything a build reads has changed."""
    found = []
    for path in scan_corpus(folder).articles:
        with contextlib.suppress(OSError):
            info = path.stat()
            found.append((str(path), info.st_size, info.st_mtime_ns))
    return hash(tuple(found))


def _settled(folder: Path, stop: threading.Event, last: int) -> int:
    """The folder's fingerprint once it has stayed the same for QUIET_MS (at most DEBOUNCE_MS from now), starting
    from `last`, the one just taken: a file rewritten again and again, or a copy still running, is built once it
    is done, not at every pause."""
    deadline = time.monotonic() + DEBOUNCE_MS / 1000
    while time.monotonic() < deadline and not stop.wait(QUIET_MS / 1000):
        now = _fingerprint(folder)
        if now == last:
            break
        last = now
    return last


class _Rebuilder:
    """Builds for the watcher and says what each did; a skipped file is named again only when its reason changes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.skips_said: set[tuple[str, str]] = set()

    def __call__(self) -> None:
        settings = self.settings
        try:
            report = build_index(settings, lock_timeout=600)
        except Exception as exc:  # noqa: BLE001 - whatever happens, the watcher keeps watching and the server serving
            try:
                serving = backend.current_generation(settings) is not None
            except Exception:  # noqa: BLE001 - the store cannot say: nothing is claimed
                serving = False
            outcome = "still serving the previous index" if serving else "there is no index yet"
            if isinstance(exc, BuildError):
                log.warning("rebuild failed, %s: %s", outcome, exc)
            else:
                log.exception("rebuild failed, %s", outcome)
            return
        skips = {(skipped.path, skipped.reason) for skipped in report.skipped}
        for path, reason in sorted(skips - self.skips_said):
            log.warning("skipped %s: %s", shown_path(path), reason)
        self.skips_said = skips
        changed = [*report.added, *report.updated, *report.removed]
        named = f"; changed: {some_of([shown_path(name) for name in changed], NAMES_SHOWN)}" if changed else ""
        if changed or report.full_rebuild:
            log.info("rebuilt: %s%s", report.summary(), named)
        else:  # most often the first look after `qa index` (scripts/start --watch): nothing to do
            log.info("the index is up to date with the corpus (%s)", report.summary())


def watch_and_rebuild(settings: Settings, stop: threading.Event, ready: threading.Event | None = None) -> None:
    """Bring the index up to date with the corpus (a first build when there is none, or what changed while the
    server was down), then rebuild after each burst of changes, once the folder is quiet. The folder at the corpus
    path is watched anew when another takes its place (moved there, or a link pointed elsewhere), when it is
    removed (and made again) and when watching fails; it is rebuilt then if it differs from what was last built.
    `ready` is set once the index is up to date and changes are being watched."""
    from watchfiles import watch

    folder = settings.corpus_dir
    rebuild = _Rebuilder(settings)
    built_from = None  # nothing built by this watcher yet: the first look at the folder brings the index up to date
    failures = 0
    gone_said = False
    undecodable_seen = None  # the folder as it was when a name that is not UTF-8 was last said
    while not stop.is_set():
        watching = _identity(folder)
        if watching is None:
            if not gone_said:
                log.warning("the corpus folder %s is gone or not a folder; watching for it to come back"
                            if built_from is not None else
                            "the corpus folder %s does not exist or is not a folder; watching for it to appear",
                            folder)
                gone_said = True
            stop.wait(REARM_WAIT_S)
            continue
        gone_said = False
        try:
            # Catch up until a look finds nothing new: a change made during a build is seen by the next look.
            while (now_holds := _fingerprint(folder)) != built_from and not stop.is_set():
                log.info("bringing the index up to date with %s" if built_from is None else
                         "the corpus folder %s changed; rebuilding the index", folder)
                built_from = now_holds
                rebuild()
            first = True
            for changes in watch(folder, watch_filter=_wakes_us(folder), debounce=DEBOUNCE_MS, step=QUIET_MS,
                                 stop_event=stop, recursive=True, rust_timeout=IDENTITY_CHECK_MS,
                                 yield_on_timeout=True, ignore_permission_denied=True):
                failures = 0
                now = _identity(folder)
                if now != watching or any(_is_the_folder(path, folder) for _, path in changes):
                    if now is not None:  # gone is said above; replaced, or removed and made again:
                        log.info("another folder is at %s now; watching it instead", folder)
                    break
                # The first look also covers what changed between the last catch-up look and the start of watching.
                if (changes or first) and (holds := _fingerprint(folder)) != built_from:
                    paths = {os.path.relpath(path, folder) for _, path in changes}
                    names = sorted(shown_path(p) for p in paths if p.lower().endswith(ARTICLE_SUFFIXES)) or \
                        sorted(shown_path(p) for p in paths)  # a folder moved in or out
                    built_from = _settled(folder, stop, holds)
                    log.info("corpus changed%s; rebuilding the index", f" ({some_of(names, NAMES_SHOWN)})"
                             if names else " as watching began")
                    rebuild()
                first = False
                if ready is not None:
                    ready.set()
        except Exception as exc:  # noqa: BLE001 - the watcher must outlive whatever the file system does
            if "decode path" in str(exc):  # watchfiles cannot hand over a name that is not UTF-8: look instead
                # It refuses such a folder at every start, so this is a look every second or so while one is there:
                # said once for each state of the folder, not at every look.
                if (holds := _fingerprint(folder)) != undecodable_seen:
                    log.info("a file or folder whose name is not UTF-8 is in %s; looking at the folder", folder)
                    undecodable_seen = holds
                stop.wait(0.1 if holds != built_from else REARM_WAIT_S)
                continue  # the catch-up above rebuilds, and the build names the file to rename
            failures += 1
            wait = min(REARM_WAIT_S * 2 ** failures, MAX_REARM_WAIT_S)
            log.warning("watching the corpus folder failed (%s); trying again in %g s", exc, wait)
            stop.wait(wait)


def start_watcher(settings: Settings, ready: threading.Event | None = None) -> threading.Event:
    """Watch in a thread of its own; the returned event stops it. `ready` is set once changes are being watched."""
    stop = threading.Event()
    threading.Thread(target=watch_and_rebuild, args=(settings, stop, ready), name="corpus-watcher",
                     daemon=True).start()
    return stop

"""`qa serve --watch`: rebuild the index when files in the corpus folder change (debounced)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path

from qa.config import Settings
from qa.indexer import BuildError, build_index
from qa.load import ARTICLE_SUFFIXES, shown_path, walk

log = logging.getLogger(__name__)
# A burst of changes (an editor saving, a copy, a git checkout) becomes one rebuild: it starts once the
# folder has been quiet for QUIET_MS, or after DEBOUNCE_MS of changes that do not stop.
QUIET_MS = 1000
DEBOUNCE_MS = 10_000
REARM_WAIT_S = 1.0  # between looks for a corpus folder that is gone; doubled after each failure to watch
MAX_REARM_WAIT_S = 60.0
IDENTITY_CHECK_MS = 2000  # how often, without changes, whether another folder has taken the corpus path


def _may_hold_articles(_change, path: str) -> bool:
    """An article file, or a folder (moved in or out, renamed, made with files already in it): a folder's
    change comes as one event for the folder, not one for each file in it. A path that is gone may have been a
    folder whatever its name ("arsip.2023"); rebuilding for a file that was not an article costs only a check."""
    where = Path(path)
    if where.name.startswith("."):
        return False
    return path.lower().endswith(ARTICLE_SUFFIXES) or where.is_dir() or not where.exists()


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder is at this path (None: none): a folder moved away and another put in its place differ, and so
    do the targets of a link that is pointed elsewhere."""
    try:
        info = folder.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if folder.is_dir() else None


def _fingerprint(folder: Path) -> int:
    """A cheap summary of what the folder holds (names, sizes, modification times), to tell whether it changed
    while nobody was watching."""
    found = []
    for where, subfolders, names in walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            with contextlib.suppress(OSError):
                info = os.stat(os.path.join(where, name))
                found.append((where, name, info.st_size, info.st_mtime_ns))
    return hash(tuple(sorted(found)))


def rebuild(settings: Settings) -> None:
    try:
        report = build_index(settings, lock_timeout=600)
        for skipped in report.skipped:
            log.warning("skipped %s: %s", shown_path(skipped.path), skipped.reason)
        log.info("rebuilt: %s", report.summary())
    except BuildError as exc:
        log.warning("rebuild failed, still serving the previous index: %s", exc)
    except Exception:  # whatever happens, the watcher keeps watching and the server keeps serving
        log.exception("rebuild failed, still serving the previous index")


def watch_and_rebuild(settings: Settings, stop: threading.Event, ready: threading.Event | None = None) -> None:
    """Bring the index up to date with the corpus (a first build when there is none, or what changed while the
    server was down), then rebuild after each burst of changes. The folder at the corpus path is watched anew when
    another takes its place (moved there, or a link pointed elsewhere) or it comes back after being removed, and when
    watching fails; it is rebuilt from then if it differs from what was last built. `ready` is set once changes
    are being watched."""
    from watchfiles import watch

    folder = settings.corpus_dir
    built_from = None  # nothing built by this watcher yet: the first look at the folder brings the index up to date
    failures = 0
    gone_said = False
    while not stop.is_set():
        watching = _identity(folder)
        if watching is None:
            if not gone_said:
                log.warning("the corpus folder %s is gone or not a folder; watching for it to come back", folder)
                gone_said = True
            stop.wait(REARM_WAIT_S)
            continue
        gone_said = False
        try:
            # Taken before a rebuild: a change made while it runs then differs from it, and is built at the next look.
            now_holds = _fingerprint(folder)
            if now_holds != built_from:
                log.info("bringing the index up to date with %s" if built_from is None else
                         "the corpus folder %s changed while it was not watched; rebuilding the index", folder)
                rebuild(settings)
                built_from = now_holds
            for changes in watch(folder, watch_filter=_may_hold_articles, debounce=DEBOUNCE_MS, step=QUIET_MS,
                                 stop_event=stop, recursive=True, rust_timeout=IDENTITY_CHECK_MS,
                                 yield_on_timeout=True, ignore_permission_denied=True):
                failures = 0
                if ready is not None:
                    ready.set()
                now = _identity(folder)
                if now != watching:  # gone (said above) or replaced: either way it is looked at anew
                    if now is not None:
                        log.info("another folder is at %s now; watching it instead", folder)
                    break
                if changes:
                    log.info("corpus changed (%d files); rebuilding the index", len(changes))
                    built_from = _fingerprint(folder)
                    rebuild(settings)
        except Exception as exc:  # noqa: BLE001 - the watcher must outlive whatever the file system does
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

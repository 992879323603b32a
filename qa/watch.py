"""`qa serve --watch`: rebuild the index when files in the corpus folder change (debounced)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from qa.config import Settings
from qa.indexer import BuildError, build_index
from qa.load import ARTICLE_SUFFIXES

log = logging.getLogger(__name__)
# A burst of changes (an editor saving, a copy, a git checkout) becomes one rebuild: it starts once the
# folder has been quiet for QUIET_MS, or after DEBOUNCE_MS of changes that do not stop.
QUIET_MS = 1000
DEBOUNCE_MS = 10_000
REARM_WAIT_S = 1.0  # between looks for a corpus folder that is gone, and after the watching failed


def _may_hold_articles(_change, path: str) -> bool:
    """An article file, or a folder (moved in or out, renamed, made with files already in it): a folder's
    change comes as one event for the folder, not one for each file in it. A path that is gone may have been a
    folder whatever its name ("arsip.2023"); rebuilding for a file that was not an article costs only a check."""
    where = Path(path)
    if where.name.startswith("."):
        return False
    return path.lower().endswith(ARTICLE_SUFFIXES) or where.is_dir() or not where.exists()


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder is at this path (None: none): a folder moved away and another put in its place differ."""
    try:
        info = folder.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if folder.is_dir() else None


def rebuild(settings: Settings) -> None:
    try:
        report = build_index(settings, lock_timeout=600)
        for skipped in report.skipped:
            log.warning("skipped %s: %s", skipped.path, skipped.reason)
        log.info("rebuilt: %s", report.summary())
    except BuildError as exc:
        log.warning("rebuild failed, still serving the previous index: %s", exc)
    except Exception:  # whatever happens, the watcher keeps watching and the server keeps serving
        log.exception("rebuild failed, still serving the previous index")


def watch_and_rebuild(settings: Settings, stop: threading.Event) -> None:
    """Rebuild after each burst of changes. The folder is watched anew (and rebuilt from) when it is replaced,
    when it comes back after being removed, and when the watching itself fails (a file name that is not UTF-8)."""
    from watchfiles import watch

    folder = settings.corpus_dir
    watching = None  # the folder being watched
    missed = False  # changes may have gone unseen: rebuild when watching again
    while not stop.is_set():
        found = _identity(folder)
        if found is None:
            if not missed:
                log.warning("the corpus folder %s is gone; watching for it to come back", folder)
            missed = True
            stop.wait(REARM_WAIT_S)
            continue
        if missed or (watching is not None and found != watching):
            log.info("watching the corpus folder %s anew", folder)
            rebuild(settings)
        watching, missed = found, False
        try:
            for changes in watch(folder, watch_filter=_may_hold_articles, debounce=DEBOUNCE_MS, step=QUIET_MS,
                                 stop_event=stop, recursive=True):
                log.info("corpus changed (%d files); rebuilding the index", len(changes))
                rebuild(settings)
                if _identity(folder) != watching:
                    break  # watched again from the top: rebuilt there if another folder took its place
        except Exception as exc:  # noqa: BLE001 - the watcher must outlive whatever the file system does
            log.warning("watching the corpus folder failed (%s); watching it anew in %g s", exc, REARM_WAIT_S)
            missed = True
            stop.wait(REARM_WAIT_S)


def start_watcher(settings: Settings) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=watch_and_rebuild, args=(settings, stop), name="corpus-watcher", daemon=True).start()
    return stop

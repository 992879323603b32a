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


def _may_hold_articles(_change, path: str) -> bool:
    """An article file, or a folder (moved in or out, renamed, made with files already in it): a folder's
    change comes as one event for the folder, not one for each file in it. A path that is gone and has no
    suffix was most likely a folder; rebuilding for a file without a suffix costs only a check."""
    where = Path(path)
    if where.name.startswith("."):
        return False
    return path.lower().endswith(ARTICLE_SUFFIXES) or where.is_dir() or not where.suffix


def watch_and_rebuild(settings: Settings, stop: threading.Event) -> None:
    from watchfiles import watch

    for changes in watch(settings.corpus_dir, watch_filter=_may_hold_articles, debounce=DEBOUNCE_MS, step=QUIET_MS,
                         stop_event=stop, recursive=True):
        log.info("corpus changed (%d files); rebuilding the index", len(changes))
        try:
            report = build_index(settings, lock_timeout=600)
            for skipped in report.skipped:
                log.warning("skipped %s: %s", skipped.path, skipped.reason)
            log.info("rebuilt: %s", report.summary())
        except BuildError as exc:
            log.warning("rebuild failed, still serving the previous index: %s", exc)
        except Exception:  # whatever happens, the watcher keeps watching and the server keeps serving
            log.exception("rebuild failed, still serving the previous index")


def start_watcher(settings: Settings) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=watch_and_rebuild, args=(settings, stop), name="corpus-watcher", daemon=True).start()
    return stop

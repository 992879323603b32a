"""The answering service: one loaded index at a time, swapped atomically when a new build appears.

Requests read `service.state` once and keep that object to the end, so a swap never changes the
index under a request in flight. Any process (a `qa index` run, the admin endpoint, the file
watcher, another worker) can publish a new generation; every process notices CURRENT change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property

from cachetools import LRUCache

from qa.answer import answer_question
from qa.config import Settings
from qa.followup import EarlierTurn, resolve
from qa.embed import Embedder, ModelLoadError, load_embedder
from qa.indexer import BuildReport, build_index
from qa.reader.runtime import CARD_NAME, ReaderModelError, ReaderRuntime
from qa.records import Answer, Document
from qa import backend
from qa.files.reader import LoadedIndex
from qa.index_rows import NoIndexError
from qa.timeline import TimelineEvent, TimelineFilter, build_timeline, filter_events, parse_filter
from qa.validation import validate_history, validate_question

log = logging.getLogger(__name__)
RETRY_FAILED_LOAD_S = 30.0


def machine_is_idle() -> bool:
    """True when nothing but the caller is running on the machine (Linux: runnable threads in /proc/loadavg).
    Elsewhere, or if it cannot be read, the answer is False: the safe side."""
    try:
        with open("/proc/loadavg", "rb") as file:
            running = int(file.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return False
    return running <= 1


DATE_TYPES = ("date", "date_range", "decade")  # normalised answer values that have a place on the timeline


def _timeline_url(state: IndexState, answer: Answer) -> str | None:
    """Where a date answer's sentence sits on /timeline; None for other answers."""
    if answer.abstained or not answer.normalized or answer.normalized.get("type") not in DATE_TYPES:
        return None
    event = state.timeline_ids.get((answer.citations[0].doc_id, answer.sentence_start)) if answer.citations else None
    return f"/timeline#{event}" if event else None


def _sum_timings(first: Answer, second: Answer, started: float) -> dict:
    """Timings of a question answered twice (as asked and with its earlier words): each part summed."""
    parts = {key: round(first.timings_ms.get(key, 0.0) + second.timings_ms.get(key, 0.0), 2)
             for key in ("embed", "search", "read")}
    return parts | {"total": round((time.perf_counter() - started) * 1000, 2)}


class ServiceUnavailable(RuntimeError):
    pass


@contextlib.contextmanager
def database_errors():
    """A PostgreSQL store that stops answering mid-request is a 503 that says so, not a stack trace."""
    try:
        yield
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("psycopg", "psycopg_pool"):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ServiceUnavailable(f"the index database did not answer: {first}") from None


@dataclass(frozen=True)
class IndexState:
    index: LoadedIndex  # or a qa.pg.reader.PgIndex: the same fields and methods
    # Answers given from this index, by (question, top_k). A swap to a new index brings an empty cache.
    answers: LRUCache | None = None
    answers_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, settings: Settings, generation: str | None = None) -> IndexState:
        """The named generation (None: the one CURRENT names when read)."""
        index = backend.open_index(settings, generation)
        return cls(index, LRUCache(settings.answer_cache_size) if settings.answer_cache_size else None)

    @cached_property
    def timeline(self) -> list[TimelineEvent]:
        """The index's dated sentences, earliest first; built on first use, once per generation."""
        return build_timeline(self.index)

    @cached_property
    def timeline_ids(self) -> dict[tuple[str, int], str]:
        return {(event.doc_id, event.sentence_start): event.id for event in self.timeline}

    def cached_answer(self, key: tuple[str, int]) -> Answer | None:
        if self.answers is None:
            return None
        with self.answers_lock:
            return self.answers.get(key)

    def remember(self, key: tuple[str, int], answer: Answer) -> None:
        if self.answers is not None:
            with self.answers_lock:
                self.answers[key] = answer


def _by_title(index: LoadedIndex) -> list[Document]:
    return sorted(index.documents.values(), key=lambda d: d.title.lower())


@dataclass(frozen=True)
class TimelineSelection:
    generation: str  # of the index the events come from
    total: int  # events before filtering
    chosen: TimelineFilter
    events: list[TimelineEvent]  # those the filter keeps, earliest first
    documents: list[Document]  # every indexed article, by title (for a filter's choices)


class QAService:
    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 reader: ReaderRuntime | None = None) -> None:
        self.settings = settings
        self._given_embedder = embedder  # tests and `qa eval` bring their own; else the index's model is loaded
        self._reader = reader
        self._reader_lock = threading.Lock()
        self._state: IndexState | None = None
        self._reload_lock = threading.Lock()
        self._checked_at = 0.0
        self._followed = False  # a follower thread checks the store (follow_index)
        self._failed: tuple[str | None, float] = (None, 0.0)  # generation that could not be loaded, and when
        self.last_error: str | None = None
        self.store_error: str | None = None  # the last check could not read the store (a database that is down)
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The model the loaded index was built with (or QA_MODEL's before one is loaded)."""
        return self._embedder_for(self._state)

    def _embedder_for(self, state: IndexState | None) -> Embedder:
        """Questions are searched with the model that embedded the index's passages: another model's vectors
        would find the wrong passages (same size) or fail (another size). A server whose QA_MODEL differs from
        the index's serves the index until the next build, which follows QA_MODEL."""
        if self._given_embedder is not None:
            return self._given_embedder
        built_with = state.index.manifest.get("model") if state is not None else None
        model = built_with or self.settings.model
        try:
            return load_embedder(model, self.settings.embed_threads)
        except ModelLoadError as exc:
            if model == self.settings.model:
                raise ServiceUnavailable(str(exc)) from exc
            raise ServiceUnavailable(f"the index was built with model {model!r}, which is needed to search it: "
                                     f"{exc} Or rebuild the index with `qa index` to use QA_MODEL "
                                     f"({self.settings.model!r}).") from exc

    @property
    def reader(self) -> ReaderRuntime:
        with self._reader_lock:
            if self._reader is None:
                bundled = getattr(self.embedder.model, "runtime", None)  # the bundled e5 model, already loaded
                try:
                    self._reader = ReaderRuntime(self.settings.reader_dir / CARD_NAME,
                                                 e5=bundled.weights if bundled else None,
                                                 tokenizer=bundled.tokenizer if bundled else None)
                except ReaderModelError as exc:
                    raise ServiceUnavailable(str(exc)) from exc
            return self._reader

    def refresh(self, force: bool = False, wait: bool = False) -> None:
        """Swap in the newest complete index if CURRENT points somewhere new.

        Checked at most every settings.reload_check_interval_s (always with force). With no index loaded yet
        the caller loads it; otherwise the new generation loads in a background thread (or in the caller with
        wait=True) while requests keep answering from the current one, so no request pays for the load.
        """
        now = time.monotonic()
        if not force and self._state is not None and (
                now - self._checked_at < self.settings.reload_check_interval_s
                # A store that does not answer is asked again by the follower, not by every request: a request
                # would wait for its check and then for its own query (twice the pool's wait) before its 503.
                or (self._followed and self.store_error)):
            return
        self._checked_at = now
        try:
            name = backend.current_generation(self.settings)
        except Exception as exc:  # the database is unreachable or holds another schema: keep what is loaded
            if str(exc) != self.store_error:  # once per problem, not at every check
                log.warning("cannot check for a new index: %s", exc)
            self.last_error = self.store_error = str(exc)
            return
        finally:
            self._checked_at = time.monotonic()  # a slow check (a database timing out) counts from its end
        self.store_error = None
        if self._state is not None and name == self._state.index.generation:
            self.last_error = None  # the store answers and names the index being served: nothing is wrong
            return
        if self._state is None or wait:
            with self._reload_lock:
                self._load_newest()
        elif self._reload_lock.acquire(blocking=False):  # else another thread is already loading it
            try:
                threading.Thread(target=self._load_in_background, name="index-loader", daemon=True).start()
            except BaseException:
                self._reload_lock.release()
                raise

    def _load_in_background(self) -> None:
        try:
            self._load_newest()
        finally:
            self._reload_lock.release()

    def _load_newest(self) -> None:
        """Load and swap in the generation CURRENT names. The caller holds _reload_lock."""
        try:
            name = backend.current_generation(self.settings)
        except Exception as exc:
            self.last_error = str(exc)
            return
        if self._state is not None and name == self._state.index.generation:
            return
        failed_name, failed_at = self._failed
        if name is not None and name == failed_name and time.monotonic() - failed_at < RETRY_FAILED_LOAD_S:
            return  # do not re-read a damaged generation on every check
        try:
            state = IndexState.load(self.settings, name)  # the generation just checked, not a newer one
        except NoIndexError as exc:
            self.last_error = str(exc)
            return
        except Exception as exc:  # a damaged generation, or one pruned while being read: keep the old index
            self.last_error = f"could not load the new index: {exc}" if self._state is not None else str(exc)
            self._failed = (name, time.monotonic())
            log.warning(self.last_error)
            return
        built_with = state.index.manifest.get("model")
        if built_with and built_with != self.settings.model and self._given_embedder is None:
            log.warning("index generation %s was built with model %r: questions are embedded with it, not with "
                        "QA_MODEL (%r), until the next build", state.index.generation, built_with, self.settings.model)
        self._state = state
        self.last_error = None
        log.info("serving index generation %s", state.index.generation)

    def warm(self) -> None:
        """Load the index and the model before the first request (at startup); problems are only logged."""
        try:
            self.refresh(force=True, wait=True)
            self.embedder.warm()
            for threads in sorted({1, self.embedder.threads}):  # as the embedder: alone, or among other requests
                self.reader.read("warm up", "warm up", threads)
        except Exception as exc:
            log.warning("warm-up failed (requests will retry): %s", exc)

    def follow_index(self, stop: threading.Event) -> None:
        """Until `stop` is set, switch to each new index generation as it appears, without waiting for a request
        to notice it (the first request after a quiet rebuild would otherwise be answered from the old index):
        the store is checked every reload_check_interval_s, and a database also announces each build."""
        def poll() -> None:
            while not stop.wait(max(0.1, self.settings.reload_check_interval_s)):
                self.refresh(force=True, wait=True)  # this thread loads it; requests keep the old one meanwhile
            self._followed = False

        self._followed = True
        threading.Thread(target=poll, name="index-follower", daemon=True).start()
        if backend.uses_database(self.settings):
            from qa.pg.pointer import follow_generations

            threading.Thread(target=follow_generations, name="generation-listener", daemon=True,
                             args=(self.settings.database_url, lambda _: self.refresh(force=True), stop)).start()

    @property
    def state(self) -> IndexState:
        self.refresh()
        if self._state is None:
            if self.store_error is None and backend.build_running(self.settings):  # a silent store: not asked twice
                raise ServiceUnavailable(f"the index in {backend.where(self.settings)} is being built; questions are "
                                         "answered as soon as it is done")
            raise ServiceUnavailable(self.last_error or f"no index in {backend.where(self.settings)}: build it with "
                                                        f"`{backend.index_command(self.settings)}`")
        return self._state

    def validate(self, question: object, top_k: object) -> tuple[str, int]:
        """The question as it is read (white space folded) and top_k, checked against this service's limits."""
        return validate_question(question, top_k, self.settings)

    def validate_history(self, history: object) -> list[EarlierTurn]:
        """The earlier turns of a conversation, oldest first, checked; messages name the turn that is wrong."""
        return validate_history(history, self.settings)

    def ask(self, question: str, top_k: int | None = None, history: object = None) -> Answer:
        """Answer a question; `history` holds the conversation's earlier turns (EarlierTurn or
        {"question", "answer"}), oldest first, that a follow-up question may lean on.

        A question that leans on earlier turns is answered twice, as asked and with the words it leans on, and
        the more confident answer is given: measured on our follow-up conversations (docs/evaluation.md), this
        beats always adding the earlier words, which pull a question that names its own subject off course.
        """
        question, top_k = self.validate(question, self.settings.top_k_default if top_k is None else top_k)
        resolved = resolve(question, self.validate_history(history))
        started = time.perf_counter()
        state = self.state
        answer = self._answer(state, question, top_k)
        if resolved.query != question:
            with_context = self._answer(state, resolved.query, top_k)
            chosen = (dataclasses.replace(with_context, context_used=resolved.context_used)
                      if with_context.confidence > answer.confidence else answer)
            answer = dataclasses.replace(chosen, cached=answer.cached and with_context.cached,
                                         timings_ms=_sum_timings(answer, with_context, started))
        return dataclasses.replace(answer, question=question)

    def _answer(self, state: IndexState, query: str, top_k: int) -> Answer:
        """The answer to `query` as searched and read, from the answer cache when it was asked before."""
        started = time.perf_counter()
        cached = state.cached_answer((query, top_k))
        if cached is not None:
            lookup_ms = round((time.perf_counter() - started) * 1000, 2)
            return dataclasses.replace(cached, cached=True,
                                       timings_ms={"embed": 0.0, "search": 0.0, "read": 0.0, "total": lookup_ms})
        embedder, reader = self._embedder_for(state), self.reader
        with self._in_flight_lock:
            self._in_flight += 1
            alone = self._in_flight == 1
        try:
            # Alone on an idle machine, a question is embedded and read with every core; with company, with one,
            # so that concurrent requests (here or in other workers) share the cores instead of fighting over them.
            threads = embedder.threads if alone and machine_is_idle() else 1
            with database_errors():
                answer = answer_question(state.index, embedder, reader, query, top_k,
                                         self.settings.abstain_threshold, threads=threads)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
        with database_errors():
            answer = dataclasses.replace(answer, timeline_url=_timeline_url(state, answer))
        state.remember((query, top_k), answer)
        return answer

    def documents(self) -> list[Document]:
        with database_errors():
            return _by_title(self.state.index)

    def select_timeline(self, doc_id: str | None, first_year: str | None, last_year: str | None) -> TimelineSelection:
        """The timeline filtered as a query string asks (blank: no filter); TimelineFilterError (UnknownArticle
        for an article not indexed) when a filter is not acceptable."""
        with database_errors():
            state = self.state  # one index for the events and the articles, even while a new one is swapped in
            events = state.timeline
            documents = _by_title(state.index)
        chosen = parse_filter(doc_id, first_year, last_year, {d.doc_id for d in documents})
        return TimelineSelection(state.index.generation, len(events), chosen, filter_events(events, chosen), documents)

    def document(self, doc_id: str) -> Document | None:
        """Looked up in the loaded index only: no path from a request ever reaches the file system."""
        with database_errors():
            return self.state.index.documents.get(doc_id)

    def reindex(self) -> BuildReport:
        report = build_index(self.settings)
        self.refresh(force=True, wait=True)
        return report

    def health(self) -> dict:
        self.refresh(force=True)  # a health check asks the store now, not what it said up to a second ago
        try:
            index = self.state.index
        except ServiceUnavailable as exc:
            return {"status": "unavailable", "detail": str(exc)}
        if self.store_error and backend.uses_database(self.settings):  # its answers need the database too
            return {"status": "unavailable", "detail": f"the index database cannot be used: {self.store_error}",
                    "generation": index.generation}
        health = {
            "status": "ok",
            "generation": index.generation,
            "pid": os.getpid(),  # which worker answered, when several share the index
            "model": index.manifest.get("model"),
            "documents": len(index.documents),
            "passages": len(index.passages),
            "built_at": index.manifest.get("built_at"),
            "corpus_sha256": index.manifest.get("corpus_sha256"),  # servers that agree here serve the same articles
        }
        if self.last_error:  # a newer index could not be loaded: still answering from this one
            health["reload_error"] = self.last_error
        return health

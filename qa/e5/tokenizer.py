"""The bundled model's tokenizer, built from the pieces, scores and normalization table of its model file."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from qa.config import user_cache_dir
from qa.disk_cache import cached_and_loaded
from qa.e5.weights import E5Weights

METASPACE = "\u2581"  # sentencepiece's mark of a word start


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

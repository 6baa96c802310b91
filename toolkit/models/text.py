"""Text models over int64 N×L token ids (padding masked, so it never changes a prediction).

- `bag`: fastText-like: the sublinear-TF-IDF-weighted, L2-normalised sum of token and hashed
  n-gram embeddings, then an MLP head. The n-gram ids and weights are computed inside the graph
  from the token ids, so any ONNX consumer gets them.
- `transformer`: a small pre-norm transformer encoder with learnt positions, masked mean pooling
  and an MLP head.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from toolkit.models.layers import create_activation, mlp_head
from toolkit.models.registry import register_model

#: Rolling n-gram hash: h ← (h·P + id) mod M, both primes. M < 2³¹ and P < 2²¹ keep every step
#: below 2⁵² in int64, so PyTorch and ONNX Runtime never overflow and always agree.
_HASH_P = 1_000_003
_HASH_M = 2_147_483_647


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of N×L×D `x` over the positions where the N×L `mask` is true (0 when none is)."""
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class NgramBag(nn.Module):
    """Sublinear-TF-IDF-weighted sum of the embeddings of every token and hashed n-gram of
    2..`ngrams` tokens, normalised by the weights' L2 norm, then an MLP head.

    With one token per character (`data.tokenizer = "char"`) this is TF-IDF of character
    n-grams, the strongest classic features for short texts in any script, learnt end to end.
    Embeddings start at zero and n-grams never seen in training weigh 0, so they add nothing,
    as in a linear model on a fitted vocabulary. The IDF table is computed from the training
    split by `adapt` and saved with the weights (a buffer), so it is a constant of the exported
    graph.
    """

    def __init__(self, vocab_size: int, pad_id: int, embed_dim: int, ngrams: int, buckets: int,
                 hidden: tuple[int, ...], n_classes: int, activation: str,
                 dropout: float) -> None:
        super().__init__()
        self.vocab_size, self.pad_id, self.ngrams, self.buckets = (
            vocab_size, pad_id, ngrams, buckets)
        rows = vocab_size + (buckets if ngrams > 1 else 0)
        self.embed = nn.Embedding(rows, embed_dim)
        nn.init.zeros_(self.embed.weight)
        self.register_buffer("idf", torch.ones(rows))
        self.head = mlp_head(embed_dim, hidden, n_classes, activation, dropout)

    def features(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids of the tokens and their n-grams (N × ~L·ngrams) and which of them are real."""
        mask = ids != self.pad_id
        all_ids, all_masks = [ids], [mask]
        h, m = ids, mask
        for n in range(2, self.ngrams + 1):
            # The n-gram starting at position i: tokens i .. i+n-1, all real.
            h = (h[:, :-1] * _HASH_P + ids[:, n - 1:]) % _HASH_M
            m = m[:, :-1] & mask[:, n - 1:]
            all_ids.append(self.vocab_size + h % self.buckets)
            all_masks.append(m)
        return torch.cat(all_ids, dim=1), torch.cat(all_masks, dim=1)

    @torch.no_grad()
    def adapt(self, batches: Any) -> None:
        """Set the IDF table from the training texts (batches of token ids): smoothed as
        scikit-learn's, ln((1 + n) / (1 + df)) + 1, and 0 for a row no training text has.

        That 0 drops the n-grams never seen in training, as scikit-learn's vocabulary does:
        they have no learnt embedding, and with the largest IDF they only shrank the known
        n-grams' share of the L2 norm. (A scikit-learn replica on the full Chinese catalogues,
        2^16 buckets, 1-5-grams: 0.774 with them, 0.775 without, since collisions hide most
        unseen n-grams in seen buckets; 1-4-grams without them: 0.790, and 0.799 in 2^17.)"""
        df = torch.zeros_like(self.idf)
        n = 0
        for ids in batches:
            grams, mask = self.features(ids)
            for row, real in zip(grams, mask, strict=True):
                df[row[real].unique()] += 1
            n += len(ids)
        self.idf.copy_(torch.where(df > 0, torch.log((1 + n) / (1 + df)) + 1, 0.0))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        grams, mask = self.features(ids)
        real = mask.to(torch.float32)
        # How often each n-gram occurs in its text (tf): counted over the embedding table's rows,
        # then read back at each of its positions.
        counts = ids.new_zeros((ids.shape[0], self.embed.num_embeddings), dtype=torch.float32)
        tf = counts.scatter_add(1, grams, real).gather(1, grams).clamp(min=1.0)
        # Sublinear tf, as scikit-learn's sublinear_tf: an n-gram seen tf times weighs
        # (1 + ln tf)·idf, not tf·idf, so a word a page repeats does not drown the others
        # (+7.6 points for a linear model on 20 man pages per class). Each of its positions
        # carries 1/tf of that weight, and the L2 norm is over the distinct n-grams, exactly.
        weight = (1 + tf.log()) * self.idf[grams] * real
        norm = (weight.square() / tf).sum(1, keepdim=True).sqrt().clamp(min=1e-6)
        # The sum runs over ~10,000 positions (2048 characters × 5 n-gram orders): in float32,
        # PyTorch and ONNX Runtime add them in different orders and differed by up to 7e-4 in
        # a logit (measured on man pages), past the parity gate. float64 keeps them within 1e-9.
        terms = self.embed(grams).double() * (weight / (tf * norm)).double().unsqueeze(-1)
        return self.head(terms.sum(1).float())


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: masked multi-head self-attention, then a feed-forward MLP."""

    def __init__(self, dim: int, heads: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), create_activation(activation),
                                 nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = (self.qkv(x).view(n, length, 3, self.heads, dim // self.heads)
                   .permute(2, 0, 3, 1, 4))  # 3 × N × heads × L × head_dim
        scores = q @ k.transpose(-2, -1) / math.sqrt(dim // self.heads)
        # Padding keys get a large negative score (not -inf: a text of pads only stays finite).
        scores = scores.masked_fill(~mask[:, None, None, :], -1e4)
        out = scores.softmax(-1) @ v  # N × heads × L × head_dim
        return self.proj(out.transpose(1, 2).reshape(n, length, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attention(self.norm1(x), mask))
        return x + self.drop(self.mlp(self.norm2(x)))


class TextEncoder(nn.Module):
    """Token + position embeddings → encoder blocks → layer norm → masked mean → MLP head."""

    def __init__(self, vocab_size: int, pad_id: int, max_length: int, embed_dim: int,
                 layers: int, heads: int, hidden: tuple[int, ...], n_classes: int,
                 activation: str, dropout: float) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.position = nn.Parameter(torch.zeros(max_length, embed_dim))
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(
            EncoderBlock(embed_dim, heads, activation, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(embed_dim)
        self.head = mlp_head(embed_dim, hidden, n_classes, activation, dropout)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != self.pad_id
        x = self.embed(ids) + self.position[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return self.head(masked_mean(self.norm(x), mask))


@register_model("text", "bag")
def bag(recipe: Any, n_classes: int, preprocess: Any) -> NgramBag:
    m = recipe.model
    return NgramBag(preprocess.vocab_size, preprocess.pad_id, m.embed_dim, m.ngrams, m.buckets,
                    m.hidden, n_classes, m.activation, m.dropout)


@register_model("text", "transformer")
def transformer(recipe: Any, n_classes: int, preprocess: Any) -> TextEncoder:
    m = recipe.model
    return TextEncoder(preprocess.vocab_size, preprocess.pad_id, preprocess.max_length,
                       m.embed_dim, m.layers, m.heads, m.hidden, n_classes, m.activation,
                       m.dropout)

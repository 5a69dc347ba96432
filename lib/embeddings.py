"""Word embeddings: vocabulary, one-hot codes, embedding lookup, cosine similarity, skip-gram.

- An embedding is a one-hot row times a |V| x d matrix: (1 x |V|) (|V| x d) -> (1 x d).
- Cosine similarity: cos(theta) = a . b / (||a|| ||b||).
- Skip-gram with negative sampling: Mikolov et al., "Distributed Representations of Words and
  Phrases and their Compositionality", NeurIPS 2013, Eq. (4):
      -log sigma(u_o . v_c) - sum_{k=1..K} log sigma(-u_k . v_c)
  for a centre word c, a context word o and K negative words drawn from P(w) ~ count(w)^(3/4).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")  # letters; an apostrophe between two letters stays


def tokenize(text: str) -> list[str]:
    """Lower-case words; punctuation and digits are dropped ("Don't stop!" -> ["don't", "stop"])."""
    return _WORD.findall(text.lower())


@dataclass
class Vocab:
    itos: list[str]  # index -> word
    stoi: dict[str, int]  # word -> index
    counts: list[int]  # how often each word occurred (0 for the unknown token)
    unk: str | None = None

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, words: list[str]) -> torch.Tensor:
        """Word indices; unknown words map to ``unk`` or raise a KeyError naming them."""
        if self.unk is None:
            missing = sorted({w for w in words if w not in self.stoi})
            if missing:
                raise KeyError(
                    f"words not in the vocabulary: {missing}; build it with unk='<unk>' to map them"
                )
            return torch.tensor([self.stoi[w] for w in words], dtype=torch.long)
        u = self.stoi[self.unk]
        return torch.tensor([self.stoi.get(w, u) for w in words], dtype=torch.long)

    def decode(self, ids) -> list[str]:
        return [self.itos[i] for i in torch.as_tensor(ids).tolist()]


def build_vocab(sentences: list[list[str]], min_count: int = 1, unk: str | None = None) -> Vocab:
    """Words in order of first appearance (index 0 is ``unk`` when given); rarer than min_count dropped."""
    counts = Counter(w for s in sentences for w in s)
    itos = [unk] if unk is not None else []
    seen = set(itos)
    for s in sentences:
        for w in s:
            if w not in seen and counts[w] >= min_count:
                seen.add(w)
                itos.append(w)
    return Vocab(
        itos, {w: i for i, w in enumerate(itos)}, [counts.get(w, 0) if w != unk else 0 for w in itos], unk
    )


def one_hot(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(...,) indices -> (..., vocab_size) float one-hot rows."""
    ids = torch.as_tensor(ids)
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise IndexError(f"indices must lie in [0, {vocab_size}); got {ids.min().item()}..{ids.max().item()}")
    out = torch.zeros(*ids.shape, vocab_size)
    return out.scatter_(-1, ids.unsqueeze(-1), 1.0)


def embed(ids: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """Embedding as a matrix product: one_hot(ids) (..., |V|) @ E (|V|, d) -> (..., d)."""
    return one_hot(ids, E.shape[0]) @ E


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """a . b / (||a|| ||b||) over the last dimension, broadcasting the others."""
    return (a * b).sum(-1) / (a.norm(dim=-1).clamp_min(eps) * b.norm(dim=-1).clamp_min(eps))


def skipgram_pairs(ids: torch.Tensor, window: int) -> torch.Tensor:
    """(P, 2) (centre, context) pairs: every word with each neighbour at most ``window`` away.

    Ordered by centre position, then by offset -window..-1, 1..window; pairs that would
    fall off either end of the sequence are skipped.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    ids = torch.as_tensor(ids)
    n = ids.shape[0]
    pos = torch.arange(n)
    offsets = torch.tensor([o for o in range(-window, window + 1) if o != 0])
    ctx = pos[:, None] + offsets[None, :]  # (n, 2*window) context positions
    valid = (ctx >= 0) & (ctx < n)
    centre = pos[:, None].expand_as(ctx)[valid]
    return torch.stack([ids[centre], ids[ctx[valid]]], dim=1)


def sgns_loss(v_c: torch.Tensor, u_o: torch.Tensor, u_neg: torch.Tensor) -> torch.Tensor:
    """Mean skip-gram negative-sampling loss, Eq. (4) of Mikolov et al. (2013).

    v_c: (B, d) centre vectors, u_o: (B, d) context vectors, u_neg: (B, K, d) negative vectors.
    """
    pos = F.logsigmoid((v_c * u_o).sum(-1))  # (B,)
    neg = F.logsigmoid(-(u_neg @ v_c.unsqueeze(-1)).squeeze(-1)).sum(-1)  # (B, K) -> (B,)
    return -(pos + neg).mean()


def noise_distribution(counts, power: float = 0.75) -> torch.Tensor:
    """P(w) proportional to count(w)^power, the word2vec noise distribution."""
    p = torch.as_tensor(counts, dtype=torch.float64) ** power
    return (p / p.sum()).float()


class SkipGram(nn.Module):
    """Two embedding tables: v (centre words, the embedding we keep) and u (context words)."""

    def __init__(self, vocab_size: int, d: int):
        super().__init__()
        self.v = nn.Embedding(vocab_size, d)
        self.u = nn.Embedding(vocab_size, d)
        nn.init.uniform_(self.v.weight, -0.5 / d, 0.5 / d)
        nn.init.zeros_(self.u.weight)

    def forward(self, centre: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        return sgns_loss(self.v(centre), self.u(context), self.u(negatives))

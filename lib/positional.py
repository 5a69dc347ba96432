"""Positional encodings.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017, Section 3.5:
    PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
    PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))
Written per element, as the ViT lecture does for patch i and dimension j:
    p(i, j) = sin(i / 10000^(j / d)) for even j,  cos(i / 10000^((j - 1) / d)) for odd j,
which is the same table and is defined for odd d too (the last column is a sine).
The split variant puts all sines first and all cosines second (d_m = d / 2):
    PE(p, i) = sin(p / 10000^(i / d_m)),  PE(p, d_m + i) = cos(p / 10000^(i / d_m)).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def _check(n_positions: int, d_model: int) -> None:
    if n_positions < 1 or d_model < 1:
        raise ValueError(f"need n_positions >= 1 and d_model >= 1, got {n_positions} and {d_model}")


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """(n_positions, d_model) interleaved table: sines in even columns, cosines in odd ones."""
    _check(n_positions, d_model)
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (n, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d/2),) the even columns 2i
    angle = pos / base ** (two_i / d_model)  # (n, ceil(d/2))
    pe = torch.empty(n_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])  # odd d: one sine more than cosines
    return pe.float()


def vit_positional_encoding(n_tokens: int, d: int) -> torch.Tensor:
    """The ViT lecture's per-element loop, p(i, j); equal to :func:`sinusoidal_encoding`."""
    _check(n_tokens, d)
    p = torch.empty(n_tokens, d)
    for i in range(n_tokens):
        for j in range(d):
            p[i, j] = math.sin(i / 10000 ** (j / d)) if j % 2 == 0 else math.cos(i / 10000 ** ((j - 1) / d))
    return p


def split_sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """(n, d) table with sines in the first half and cosines in the second; d_model must be even."""
    _check(n_positions, d_model)
    if d_model % 2:
        raise ValueError(
            f"the split encoding pairs every sine with a cosine, so d_model must be even; got {d_model}"
        )
    d_m = d_model // 2
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    angle = pos / base ** (torch.arange(d_m, dtype=torch.float64) / d_m)  # (n, d_m)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1).float()


def frequencies(d_model: int, base: float = 10000.0) -> torch.Tensor:
    """omega_i = 1 / base^(2i / d_model), one per (sin, cos) column pair."""
    return 1.0 / base ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)


def shift_matrix(k: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """(d, d) matrix M_k with PE[pos + k] = PE[pos] @ M_k for every pos (interleaved table).

    For each pair (sin(w pos), cos(w pos)) the shift by k is a rotation by the angle w k:
        sin(w(pos+k)) = sin(w pos) cos(w k) + cos(w pos) sin(w k)
        cos(w(pos+k)) = cos(w pos) cos(w k) - sin(w pos) sin(w k)
    """
    if d_model % 2:
        raise ValueError(f"shift_matrix needs an even d_model (sine-cosine pairs); got {d_model}")
    M = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i, w in enumerate(frequencies(d_model, base).tolist()):
        c, s = math.cos(w * k), math.sin(w * k)
        # row vector [sin, cos] @ [[c, -s], [s, c]] = [sin c + cos s, -sin s + cos c]
        M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return M.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed table (a buffer, not a parameter) to token rows x (B, N, d_model)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        if N > self.pe.shape[0]:
            raise ValueError(f"sequence of {N} tokens is longer than max_len={self.pe.shape[0]}")
        return x + self.pe[:N]  # (N, D) broadcast over the batch


class LearnedPositionalEmbedding(nn.Module):
    """One learned vector per position (BERT, ViT): a (max_len, d_model) parameter."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.pe = nn.Parameter(torch.randn(max_len, d_model) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        if N > self.pe.shape[0]:
            raise ValueError(f"sequence of {N} tokens is longer than max_len={self.pe.shape[0]}")
        return x + self.pe[:N]

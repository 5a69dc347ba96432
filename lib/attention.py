"""Scaled dot-product attention.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017, Section 3.2.1, Eq. (1):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Shapes follow the lecture's row convention: every token is a row vector, so for one
sequence q is (N, d_k), k is (M, d_k), v is (M, d_v) and the output is (N, d_v). Any
number of leading batch dimensions (batch, heads, ...) is allowed and broadcast.

Masks follow ``torch.nn.functional.scaled_dot_product_attention``: a boolean mask is
True where attention is *allowed*; masked scores become -inf before the softmax.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def causal_mask(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(n, n) boolean mask, True on and below the diagonal: token i may attend to j <= i."""
    if n < 1:
        raise ValueError(f"causal_mask needs n >= 1 tokens, got n={n}")
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()


def _check_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            "q, k and v need at least 2 dimensions (..., tokens, features); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}. "
            "For a single token use x.unsqueeze(0)."
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must share d_k (their last dimension): q has {q.shape[-1]}, k has {k.shape[-1]}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of tokens: k has {k.shape[-2]}, v has {v.shape[-2]}"
        )


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d_k)) v, returning ``(output, weights)``.

    q: (..., N, d_k)   k: (..., M, d_k)   v: (..., M, d_v)
    mask: boolean, broadcastable to (..., N, M), True where attention is allowed.
    Returns output (..., N, d_v) and weights (..., N, M); each row of weights sums to 1.
    A row whose keys are all masked has no defined softmax and comes out as NaN, as in torch.
    """
    _check_shapes(q, k, v)
    d_k = q.shape[-1]
    # (..., N, d_k) @ (..., d_k, M) -> (..., N, M): one score per (query, key) pair
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        if mask.dtype != torch.bool:
            raise TypeError(
                f"mask must be boolean (True = may attend), got dtype {mask.dtype}; "
                "use mask.bool() or build it with a comparison"
            )
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)  # normalise over the keys
    # (..., N, M) @ (..., M, d_v) -> (..., N, d_v): weighted sum of the values
    return weights @ v, weights


def self_attention(
    x: torch.Tensor,
    W_q: torch.Tensor,
    W_k: torch.Tensor,
    W_v: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-head self-attention on token rows x (..., n, d) with W_q, W_k (d, d_k), W_v (d, d_v).

    q_i = x_i W_q, k_i = x_i W_k, v_i = x_i W_v for every token, then Eq. (1).
    """
    d = x.shape[-1]
    for name, W in (("W_q", W_q), ("W_k", W_k), ("W_v", W_v)):
        if W.dim() != 2 or W.shape[0] != d:
            raise ValueError(
                f"{name} must be (d, _) = ({d}, _) to multiply x (..., n, {d}); got {tuple(W.shape)}"
            )
    # (..., n, d) @ (d, d_k) -> (..., n, d_k), and likewise for keys and values
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    return scaled_dot_product_attention(q, k, v, mask)


class SelfAttention(nn.Module):
    """Thin module around :func:`self_attention` holding W_q, W_k, W_v (the lecture's W_Q, W_K, W_V)."""

    def __init__(self, d: int, d_k: int, d_v: int | None = None):
        super().__init__()
        d_v = d_k if d_v is None else d_v
        scale = 1.0 / math.sqrt(d)  # keeps q, k, v at unit scale for unit-scale x
        self.W_q = nn.Parameter(torch.randn(d, d_k) * scale)
        self.W_k = nn.Parameter(torch.randn(d, d_k) * scale)
        self.W_v = nn.Parameter(torch.randn(d, d_v) * scale)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self_attention(x, self.W_q, self.W_k, self.W_v, mask)

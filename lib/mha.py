"""Multi-head attention.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017, Section 3.2.2:
    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_o,  head_i = Attention(Q W_q^i, K W_k^i, V W_v^i)
with d_k = d_v = d_model / h. The h heads are computed at once: project with one d_model x d_model
matrix each, then reshape (B, N, d_model) -> (B, h, N, d_k). No loop over heads.

Masks are boolean and True where attention is allowed (as in lib.attention), broadcastable to
(B, h, N, M). ``nn.MultiheadAttention`` uses the opposite convention (True = blocked).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import scaled_dot_product_attention


def split_heads(x: torch.Tensor, h: int) -> torch.Tensor:
    """(B, N, d_model) -> (B, h, N, d_k), with d_k = d_model / h."""
    B, N, D = x.shape
    if D % h:
        raise ValueError(f"d_model={D} is not divisible by h={h} heads")
    # (B, N, D) -> (B, N, h, d_k): each token's vector cut into h pieces
    # (B, N, h, d_k) -> (B, h, N, d_k): heads become a batch dimension
    return x.view(B, N, h, D // h).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, N, d_k) -> (B, N, h * d_k): the inverse of :func:`split_heads` (Concat)."""
    B, h, N, d_k = x.shape
    # (B, h, N, d_k) -> (B, N, h, d_k) -> (B, N, h * d_k)
    return x.transpose(1, 2).reshape(B, N, h * d_k)


def multi_head_attention(query, key, value, W_q, W_k, W_v, W_o, h: int, mask=None):
    """Multi-head attention with projections W_* (callables such as nn.Linear, d_model -> d_model).

    query (B, N, d_model), key and value (B, M, d_model); mask broadcastable to (B, h, N, M).
    Returns output (B, N, d_model) and per-head weights (B, h, N, M).
    """
    q = split_heads(W_q(query), h)  # (B, N, D) -> (B, h, N, d_k)
    k = split_heads(W_k(key), h)  # (B, M, D) -> (B, h, M, d_k)
    v = split_heads(W_v(value), h)  # (B, M, D) -> (B, h, M, d_k)
    out, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, h, N, d_k), (B, h, N, M)
    return W_o(merge_heads(out)), weights  # (B, N, D)


def padding_mask(lengths: torch.Tensor, M: int) -> torch.Tensor:
    """(B, 1, 1, M) mask, True for the first lengths[b] keys of sequence b (the real tokens)."""
    lengths = torch.as_tensor(lengths)
    return (torch.arange(M, device=lengths.device)[None, :] < lengths[:, None])[:, None, None, :]


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, h: int, bias: bool = True):
        super().__init__()
        if d_model % h:
            raise ValueError(f"d_model={d_model} must be divisible by h={h}")
        self.d_model, self.h, self.d_k = d_model, h, d_model // h
        self.W_q = nn.Linear(d_model, d_model, bias=bias)
        self.W_k = nn.Linear(d_model, d_model, bias=bias)
        self.W_v = nn.Linear(d_model, d_model, bias=bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, query, key=None, value=None, mask=None, need_weights: bool = True):
        """(output (B, N, d_model), weights (B, h, N, M)); with need_weights=False, PyTorch's fused
        kernel computes the same output without storing the weights, which are then None."""
        key = query if key is None else key
        value = key if value is None else value
        if need_weights:
            return multi_head_attention(
                query, key, value, self.W_q, self.W_k, self.W_v, self.W_o, self.h, mask
            )
        if key is query and value is query and self._plain_projections():
            # self-attention: one GEMM for q, k and v, (B, N, D) -> (B, N, 3D), then three views
            W = torch.cat([self.W_q.weight, self.W_k.weight, self.W_v.weight])
            b = None if self.W_q.bias is None else torch.cat([self.W_q.bias, self.W_k.bias, self.W_v.bias])
            q, k, v = (split_heads(t, self.h) for t in F.linear(query, W, b).chunk(3, dim=-1))
        else:
            q, k, v = (
                split_heads(W(t), self.h) for W, t in ((self.W_q, query), (self.W_k, key), (self.W_v, value))
            )
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # bool mask: True = may attend, as here
        return self.W_o(merge_heads(out)), None  # (B, h, N, d_k) -> (B, N, D)

    def _plain_projections(self) -> bool:
        """True when W_q, W_k, W_v are plain nn.Linear layers with alike biases.

        Not when one was replaced (e.g. by LoRA) or carries hooks: then q, k, v are computed one by one.
        """
        Ws = (self.W_q, self.W_k, self.W_v)
        return (
            all(type(W) is nn.Linear and not (W._forward_hooks or W._forward_pre_hooks) for W in Ws)
            and len({W.bias is None for W in Ws}) == 1
        )

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of ``nn.MultiheadAttention`` (packed in_proj) into W_q, W_k, W_v, W_o."""
        D = self.d_model
        for i, W in enumerate((self.W_q, self.W_k, self.W_v)):
            W.weight.copy_(mha.in_proj_weight[i * D : (i + 1) * D])
            if W.bias is not None:
                W.bias.copy_(mha.in_proj_bias[i * D : (i + 1) * D])
        self.W_o.weight.copy_(mha.out_proj.weight)
        if self.W_o.bias is not None:
            self.W_o.bias.copy_(mha.out_proj.bias)
        return self

"""Reference values for notebook 04's hidden tests (lib.mha)."""

import torch

import lib.mha as ref


def test_split_heads():
    g = torch.Generator().manual_seed(41)
    out = []
    for B, N, D, h in [(1, 5, 768, 12), (3, 7, 10, 5), (2, 1, 8, 8)]:
        x = torch.randn(B, N, D, generator=g)
        out.append((x, h, ref.split_heads(x, h)))
    return out


def test_merge_heads():
    g = torch.Generator().manual_seed(42)
    out = []
    for B, h, N, d_k in [(1, 12, 5, 64), (3, 5, 7, 2), (2, 1, 4, 6)]:
        x = torch.randn(B, h, N, d_k, generator=g)
        merged = ref.merge_heads(x)
        out.append((x, merged, ref.split_heads(merged, h)))  # merge_heads must invert split_heads
    return out


def test_shape_answers():
    mha = ref.MultiHeadAttention(768, 12)
    with torch.no_grad():
        out, w = mha(torch.zeros(1, 5, 768))
    return dict(
        per_head_qkv_shape=(1, 5, 12, 64),
        attention_matrix_shape=tuple(w.shape),
        per_head_output_shape=(1, 5, 12, 64),
        merged_output_shape=tuple(out.shape),
    )

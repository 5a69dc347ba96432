"""lib.mha against nn.MultiheadAttention with copied weights."""

import pytest
import torch
import torch.nn as nn

from lib.attention import causal_mask
from lib.mha import MultiHeadAttention, merge_heads, padding_mask, split_heads


def _pair(d_model, h, seed=0):
    torch.manual_seed(seed)
    ref = nn.MultiheadAttention(d_model, h, batch_first=True).double()
    ours = MultiHeadAttention(d_model, h).double().load_from_torch(ref)
    return ours, ref


@pytest.mark.parametrize("B,N,M,d_model,h", [(2, 5, 7, 12, 3), (3, 4, 4, 32, 8), (1, 6, 9, 10, 1)])
def test_matches_torch(B, N, M, d_model, h):
    ours, ref = _pair(d_model, h)
    g = torch.Generator().manual_seed(1)
    q = torch.randn(B, N, d_model, generator=g, dtype=torch.float64)
    kv = torch.randn(B, M, d_model, generator=g, dtype=torch.float64)
    out, w = ours(q, kv, kv)
    ref_out, ref_w = ref(q, kv, kv, average_attn_weights=False)
    assert w.shape == (B, h, N, M)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(w, ref_w)
    _, ref_avg = ref(q, kv, kv)  # torch's default averages the heads
    torch.testing.assert_close(w.mean(1), ref_avg)


def test_causal_and_padding_masks_match_torch():
    ours, ref = _pair(16, 4, seed=2)
    x = torch.randn(3, 6, 16, dtype=torch.float64)
    out, w = ours(x, mask=causal_mask(6))
    ref_out, _ = ref(x, x, x, attn_mask=~causal_mask(6))  # torch: True = blocked
    torch.testing.assert_close(out, ref_out)
    assert torch.equal(w.triu(1), torch.zeros_like(w))
    lengths = torch.tensor([6, 4, 2])
    out, w = ours(x, mask=padding_mask(lengths, 6))
    ref_out, _ = ref(x, x, x, key_padding_mask=~padding_mask(lengths, 6)[:, 0, 0])
    torch.testing.assert_close(out, ref_out)
    assert (w[2, :, :, 2:] == 0).all()


def test_split_merge_shapes_and_inverse():
    x = torch.randn(1, 5, 768)
    heads = split_heads(x, 12)
    assert heads.shape == (1, 12, 5, 64)
    assert torch.equal(heads[0, 1, 2], x[0, 2, 64:128])  # head 1 of token 2 is features 64..127
    assert torch.equal(merge_heads(heads), x)
    with pytest.raises(ValueError, match="not divisible"):
        split_heads(torch.randn(1, 2, 10), 3)


def test_parameter_count_matches_torch():
    ours, ref = _pair(64, 8)
    assert (
        sum(p.numel() for p in ours.parameters())
        == sum(p.numel() for p in ref.parameters())
        == 4 * (64 * 64 + 64)
    )


def test_fused_path_equals_explicit_path_with_a_mask():
    from lib.mha import MultiHeadAttention, padding_mask

    torch.manual_seed(9)
    mha = MultiHeadAttention(12, 3)
    x = torch.randn(2, 5, 12)
    mask = padding_mask(torch.tensor([5, 3]), 5)
    explicit, w = mha(x, mask=mask)
    fused, none = mha(x, mask=mask, need_weights=False)
    assert none is None and w.shape == (2, 3, 5, 5)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)


def test_one_gemm_self_attention_has_torchs_gradients_and_respects_replaced_projections():
    from lib.mha import MultiHeadAttention

    torch.manual_seed(4)
    ours, ref = MultiHeadAttention(16, 4), nn.MultiheadAttention(16, 4, batch_first=True)
    ours.load_from_torch(ref)
    x = torch.randn(3, 7, 16)
    ours(x, need_weights=False)[0].square().sum().backward()  # self-attention: one GEMM for q, k, v
    ref(x, x, x, need_weights=False)[0].square().sum().backward()
    D = 16
    for i, W in enumerate((ours.W_q, ours.W_k, ours.W_v)):
        torch.testing.assert_close(
            W.weight.grad, ref.in_proj_weight.grad[i * D : (i + 1) * D], atol=1e-5, rtol=1e-4
        )
    calls = []
    ours.W_v.register_forward_hook(
        lambda m, i, o: calls.append(o.shape)
    )  # a hooked (or replaced) W_v must run
    out, _ = ours(x, need_weights=False)
    assert calls == [(3, 7, 16)]
    torch.testing.assert_close(out, ref(x, x, x, need_weights=False)[0], atol=1e-5, rtol=1e-5)

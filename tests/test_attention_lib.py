"""lib.attention against torch's own scaled_dot_product_attention."""

import math

import pytest
import torch
import torch.nn.functional as F

from lib.attention import SelfAttention, causal_mask, scaled_dot_product_attention, self_attention

SHAPES = [  # (leading dims, N queries, M keys, d_k, d_v): non-square on purpose
    ((), 5, 7, 3, 2),
    ((3,), 4, 9, 8, 5),
    ((2, 4), 6, 3, 16, 7),
    ((1, 2, 3), 2, 2, 1, 4),
]


def _qkv(lead, N, M, d_k, d_v, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(*lead, N, d_k, generator=g, dtype=torch.float64),
        torch.randn(*lead, M, d_k, generator=g, dtype=torch.float64),
        torch.randn(*lead, M, d_v, generator=g, dtype=torch.float64),
    )


@pytest.mark.parametrize("lead,N,M,d_k,d_v", SHAPES)
def test_matches_torch_without_mask(lead, N, M, d_k, d_v):
    q, k, v = _qkv(lead, N, M, d_k, d_v)
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.shape == (*lead, N, d_v) and w.shape == (*lead, N, M)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    scores = torch.einsum("...nd,...md->...nm", q, k) / math.sqrt(d_k)  # the formula, written out here
    torch.testing.assert_close(w, scores.exp() / scores.exp().sum(-1, keepdim=True))


@pytest.mark.parametrize("lead,N,M,d_k,d_v", SHAPES)
def test_matches_torch_with_boolean_mask(lead, N, M, d_k, d_v):
    q, k, v = _qkv(lead, N, M, d_k, d_v, seed=1)
    mask = torch.rand(*lead, N, M, generator=torch.Generator().manual_seed(2)) < 0.5
    mask[..., 0] = True  # every query keeps at least one key
    out, w = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert (w[~mask] == 0).all(), "masked positions must get exactly zero weight"


def test_mask_broadcasts_over_batch_and_heads():
    q, k, v = _qkv((2, 3), 4, 6, 5, 2)
    mask = torch.rand(4, 6, generator=torch.Generator().manual_seed(3)) < 0.7
    mask[:, 0] = True
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_causal_matches_torch_is_causal():
    q, k, v = _qkv((2, 4), 6, 6, 8, 8)
    out, w = scaled_dot_product_attention(q, k, v, causal_mask(6))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert torch.equal(w.triu(1), torch.zeros_like(w))
    # the first token can only see itself
    torch.testing.assert_close(out[..., 0, :], v[..., 0, :])


def test_causal_mask_values():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    with pytest.raises(ValueError, match="n >= 1"):
        causal_mask(0)


def test_scaling_is_by_sqrt_dk():
    # one query, two keys: weights are softmax([1/sqrt(2), 0]) = [0.6698, 0.3302]
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    _, w = scaled_dot_product_attention(q, k, torch.eye(2))
    e = math.exp(1 / math.sqrt(2))
    torch.testing.assert_close(w, torch.tensor([[e / (e + 1), 1 / (e + 1)]]))


def test_lecture_worked_example():
    query = torch.tensor([[0.6, 0.2, -0.7, 0.3]])
    keys = torch.tensor([[1.0, -0.2, 0.1, -2.0], [0.7, 0.3, -1.1, 0.2], [-1.1, 0.1, 0.3, 1.1]])
    values = torch.tensor([[220.0, 35.0, 7.0], [40.0, 107.0, 50.0], [0.0, 0.0, 127.0]])
    out, w = scaled_dot_product_attention(query, keys, values)
    scores = torch.tensor([-0.11, 1.31, -0.52])  # worked out by hand
    torch.testing.assert_close(w[0], torch.softmax(scores / 2, -1))
    torch.testing.assert_close(out[0], torch.tensor([78.3029, 65.6432, 55.1259]), atol=1e-3, rtol=0)


@pytest.mark.parametrize(
    "bad,match",
    [
        ((torch.ones(3, 4), torch.ones(5, 3), torch.ones(5, 2)), "share d_k"),
        ((torch.ones(3, 4), torch.ones(5, 4), torch.ones(6, 2)), "same number of tokens"),
        ((torch.ones(4), torch.ones(5, 4), torch.ones(5, 2)), "at least 2 dimensions"),
    ],
)
def test_bad_shapes_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(*bad)


def test_non_boolean_mask_is_refused():
    q, k, v = _qkv((), 2, 3, 4, 5)
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(q, k, v, torch.ones(2, 3))


def test_self_attention_and_module():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 5, 10, generator=g)
    W_q, W_k, W_v = (
        torch.randn(10, 3, generator=g),
        torch.randn(10, 3, generator=g),
        torch.randn(10, 4, generator=g),
    )
    out, w = self_attention(x, W_q, W_k, W_v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(x @ W_q, x @ W_k, x @ W_v))
    torch.testing.assert_close(w, torch.softmax((x @ W_q) @ (x @ W_k).transpose(1, 2) / math.sqrt(3), dim=-1))
    m = SelfAttention(10, 3, 4)
    assert m.W_q.shape == (10, 3) and m.W_v.shape == (10, 4)
    assert sum(p.numel() for p in m.parameters()) == 10 * 3 * 2 + 10 * 4
    out, w = m(x, causal_mask(5))
    with torch.no_grad():
        expected = F.scaled_dot_product_attention(x @ m.W_q, x @ m.W_k, x @ m.W_v, is_causal=True)
    torch.testing.assert_close(out.detach(), expected)
    assert (w.triu(1) == 0).all()  # no query looks ahead
    with pytest.raises(ValueError, match="W_k must be"):
        self_attention(x, W_q, torch.randn(9, 3), W_v)

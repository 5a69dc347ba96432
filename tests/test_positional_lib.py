"""lib.positional: the formulas, their properties, odd sizes."""

import math

import pytest
import torch

from lib import positional as P


def _formula(n, d):
    """Vaswani et al. (2017), section 3.5, entry by entry in float64: PE(pos, 2i) = sin(pos / 10000^(2i/d)),
    PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""
    return torch.tensor(
        [
            [
                math.sin(pos / 10000 ** (j / d)) if j % 2 == 0 else math.cos(pos / 10000 ** ((j - 1) / d))
                for j in range(d)
            ]
            for pos in range(n)
        ],
        dtype=torch.float64,
    )


@pytest.mark.parametrize("n,d", [(7, 10), (50, 64), (9, 5)])
def test_matches_formula_and_vit_loop(n, d):
    pe = P.sinusoidal_encoding(n, d)
    assert pe.shape == (n, d) and pe.abs().max() <= 1
    torch.testing.assert_close(pe.double(), _formula(n, d), atol=1e-6, rtol=0)
    torch.testing.assert_close(P.vit_positional_encoding(n, d).double(), _formula(n, d), atol=1e-6, rtol=0)
    assert pe[3, 0].item() == pytest.approx(math.sin(3))
    assert pe[3, 1].item() == pytest.approx(math.cos(3))
    if d > 3:
        assert pe[5, 2].item() == pytest.approx(math.sin(5 / 10000 ** (2 / d)), abs=1e-6)


def test_split_variant():
    pe = P.split_sinusoidal_encoding(6, 8)
    inter = P.sinusoidal_encoding(6, 8)
    # the same sines and cosines, columns reordered: split = [even columns, odd columns]
    torch.testing.assert_close(pe, torch.cat([inter[:, 0::2], inter[:, 1::2]], dim=1))
    with pytest.raises(ValueError, match="must be even"):
        P.split_sinusoidal_encoding(4, 5)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_shift_is_a_fixed_linear_map(k):
    n, d = 40, 16
    pe = P.sinusoidal_encoding(n + k, d).double()
    M = P.shift_matrix(k, d).double()
    torch.testing.assert_close(pe[:n] @ M, pe[k:], atol=1e-5, rtol=0)
    torch.testing.assert_close(M @ M.T, torch.eye(d, dtype=torch.float64), atol=1e-6, rtol=0)  # a rotation


def test_dot_product_depends_only_on_offset():
    pe = P.sinusoidal_encoding(60, 32).double()
    dots = pe @ pe.T
    for k in (0, 1, 5, 17):
        diag = torch.diagonal(dots, offset=k)
        torch.testing.assert_close(diag, diag[0].expand_as(diag), atol=1e-5, rtol=0)
        # sum over the 16 (sin, cos) pairs of sin a sin b + cos a cos b = cos(omega_i k),
        # omega_i = 1 / 10000^(2i/32)
        expected = sum(math.cos(k / 10000 ** (2 * i / 32)) for i in range(16))
        assert diag[0].item() == pytest.approx(expected, abs=1e-5)


def test_modules():
    x = torch.zeros(2, 5, 8)
    fixed = P.SinusoidalPositionalEncoding(8, max_len=16)
    assert "pe" in dict(fixed.named_buffers()) and not list(fixed.parameters())
    torch.testing.assert_close(fixed(x)[1], P.sinusoidal_encoding(5, 8))
    learned = P.LearnedPositionalEmbedding(8, max_len=16)
    assert sum(p.numel() for p in learned.parameters()) == 16 * 8
    with pytest.raises(ValueError, match="longer than max_len"):
        fixed(torch.zeros(1, 17, 8))

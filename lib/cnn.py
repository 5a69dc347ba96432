"""Convolution as the lecture writes it: a sum over input channels and kernel offsets.

Lecture notes (004), "Channel Mixing": for output channel (feature map) f at position (x, y),

    o[f, x, y] = sum_c sum_s sum_t  w[f, c, s, t] * i[c, x + s, y + t]  +  b[f]

Deep-learning "convolution" is this cross-correlation: the kernel is not flipped (a true
convolution would index i[c, x - s, y - t]). With stride S and zero padding p, position (x, y)
reads the padded input at (S*x + s, S*y + t), and an input of n pixels gives

    n_out = floor((n + 2p - k) / S) + 1        (Dumoulin & Visin, "A guide to convolution
                                                arithmetic for deep learning", 2016, Relationship 6)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """Output length along one axis: floor((n + 2*padding - k) / stride) + 1."""
    if k < 1 or stride < 1 or padding < 0:
        raise ValueError(
            f"need k >= 1, stride >= 1, padding >= 0; got k={k}, stride={stride}, padding={padding}"
        )
    if n + 2 * padding < k:
        raise ValueError(f"a kernel of {k} does not fit in {n} pixels with padding {padding}")
    return (n + 2 * padding - k) // stride + 1


def conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """(B, C, H, W) input, (F, C, k, k) weight, (F,) bias -> (B, F, H_out, W_out), as F.conv2d.

    One term of the sum per kernel offset (s, t): the strided window of the padded input that
    offset (s, t) reads at every output position, contracted with w[:, :, s, t] over channels.
    """
    B, C, H, W = x.shape
    F_out, C_w, kh, kw = weight.shape
    if C_w != C:
        raise ValueError(f"the input has {C} channels but the kernel expects {C_w}")
    H_out = conv_output_size(H, kh, stride, padding)
    W_out = conv_output_size(W, kw, stride, padding)
    xp = F.pad(x, (padding, padding, padding, padding))  # zero border: (B, C, H + 2p, W + 2p)
    out = x.new_zeros(B, F_out, H_out, W_out)
    for s in range(kh):
        for t in range(kw):
            # i[c, S*x + s, S*y + t] for every output (x, y): (B, C, H_out, W_out)
            window = xp[
                :, :, s : s + stride * (H_out - 1) + 1 : stride, t : t + stride * (W_out - 1) + 1 : stride
            ]
            # sum over c of w[f, c, s, t] * window[b, c, x, y] -> (B, F, H_out, W_out)
            out = out + torch.einsum("fc,bcxy->bfxy", weight[:, :, s, t], window)
    if bias is not None:
        out = out + bias.view(1, F_out, 1, 1)
    return out

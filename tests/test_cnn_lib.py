"""lib.cnn: the lecture's channel-mixing example by hand, F.conv2d, and the output-size formula."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from lib.cnn import conv2d, conv_output_size

# Lecture notes 004, "Channel Mixing": the top-left corner of an RGB image with its zero border,
# one 3 x 3 kernel per input channel, bias 1.
RED = [
    [0, 0, 0, 0, 0, 0, 0],
    [0, 156, 155, 156, 158, 158, 158],
    [0, 153, 154, 157, 159, 159, 159],
    [0, 149, 151, 155, 158, 159, 159],
    [0, 146, 146, 149, 153, 158, 158],
    [0, 145, 143, 143, 148, 158, 158],
]
GREEN = [
    [0, 0, 0, 0, 0, 0, 0],
    [0, 167, 166, 167, 169, 169, 169],
    [0, 164, 165, 168, 170, 170, 170],
    [0, 160, 162, 166, 169, 170, 170],
    [0, 156, 156, 159, 163, 168, 168],
    [0, 155, 153, 153, 158, 168, 168],
]
BLUE = [
    [0, 0, 0, 0, 0, 0, 0],
    [0, 163, 162, 163, 165, 165, 165],
    [0, 160, 161, 164, 166, 166, 166],
    [0, 156, 158, 162, 165, 166, 166],
    [0, 155, 155, 158, 162, 167, 167],
    [0, 154, 152, 152, 157, 167, 167],
]
KERNELS = [
    [[-1, -1, 1], [0, 1, -1], [0, 1, 1]],
    [[1, 0, 0], [1, -1, -1], [1, 0, -1]],
    [[0, 1, 1], [0, 1, 0], [1, -1, 1]],
]


def test_lecture_channel_mixing_example():
    x = torch.tensor([RED, GREEN, BLUE], dtype=torch.float64)[None]  # (1, 3, 6, 7)
    w = torch.tensor(KERNELS, dtype=torch.float64)[None]  # (1, 3, 3, 3)
    out = conv2d(x, w, torch.tensor([1.0], dtype=torch.float64))
    # the lecture's numbers: per-channel sums 158, -14, 653 at output (1, 2), plus bias 1 = 798
    sums = [conv2d(x[:, c : c + 1], w[:, c : c + 1])[0, 0, 1, 2].item() for c in range(3)]
    assert sums == [158, -14, 653]
    assert out[0, 0, 1, 2].item() == 798
    assert out[0, 0, 0, :4].tolist() == [-25, 466, 466, 475]
    assert out[0, 0, 1, :3].tolist() == [295, 787, 798]


def test_is_cross_correlation_not_convolution():
    # a kernel with a single 1 in its top-left corner reads the pixel up and to the left: no flip
    x = torch.arange(25.0).view(1, 1, 5, 5)
    w = torch.zeros(1, 1, 3, 3)
    w[0, 0, 0, 0] = 1
    assert torch.equal(conv2d(x, w), x[:, :, :3, :3])


@pytest.mark.parametrize(
    "stride,padding,k", [(1, 0, 3), (1, 1, 3), (2, 1, 3), (2, 0, 2), (3, 2, 5), (1, 0, 1)]
)
def test_matches_torch_conv2d(stride, padding, k):
    g = torch.Generator().manual_seed(stride * 10 + padding + k)
    x = torch.randn(2, 3, 11, 9, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, k, k, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        conv2d(x, w, b, stride, padding), F.conv2d(x, w, b, stride=stride, padding=padding)
    )


def test_output_size_formula_matches_torch():
    for n, k, s, p in itertools.product([5, 7, 8, 32], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2]):
        if n + 2 * p < k:
            continue
        expected = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p).shape[-1]
        assert conv_output_size(n, k, s, p) == expected, (n, k, s, p)
    assert conv_output_size(32, 3, 1, 1) == 32  # VGG's 3 x 3 "same" convolution
    assert conv_output_size(32, 2, 2) == 16  # and its 2 x 2 pooling


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(2, 5)
    with pytest.raises(ValueError, match="3 channels but the kernel expects 2"):
        conv2d(torch.zeros(1, 3, 5, 5), torch.zeros(1, 2, 3, 3))

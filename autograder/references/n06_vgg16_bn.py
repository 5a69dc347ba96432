"""Reference values for notebook 06's hidden tests (lib.cnn, lib.batchnorm, lib.early_stopping).

The other tests of notebook 06 compare with torch and torchvision inside the kernel and need no file.
"""

import torch

import lib.batchnorm as ref_bn
import lib.cnn as ref_cnn
import lib.early_stopping as ref_es


def test_conv2d():
    out = []
    for shape, k, stride, padding in [
        ((1, 1, 5, 5), (3, 3), 1, 0),
        ((2, 3, 9, 6), (3, 2), 1, 1),
        ((3, 2, 8, 11), (5, 5), 3, 2),
        ((1, 4, 6, 6), (1, 1), 2, 0),
    ]:
        g = torch.Generator().manual_seed(sum(shape))
        x = torch.randn(*shape, generator=g, dtype=torch.float64)
        w = torch.randn(3, shape[1], *k, generator=g, dtype=torch.float64)
        b = torch.randn(3, generator=g, dtype=torch.float64)
        out.append(
            dict(
                x=x,
                w=w,
                b=b,
                stride=stride,
                padding=padding,
                expected=ref_cnn.conv2d(x, w, b, stride, padding),
                flipped=ref_cnn.conv2d(x, w.flip(-1, -2), b, stride, padding),
            )
        )  # what a true convolution gives
    return out


def test_batch_norm_backward():
    out = []
    for shape in [(2, 3, 4, 5), (7, 1, 2, 2)]:
        g = torch.Generator().manual_seed(shape[0])
        x = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
        gamma = torch.randn(shape[1], generator=g, dtype=torch.float64)
        dy = torch.randn(*shape, generator=g, dtype=torch.float64)
        out.append(dict(x=x, gamma=gamma, dy=dy, expected=tuple(ref_bn.batch_norm_backward(dy, x, gamma))))
    return out


IMPROVED_CASES = [
    (0.6, 0.6, 0.0, "min"),
    (0.6, 0.6, 0.0, "max"),
    (0.55, 0.6, 0.1, "min"),
    (0.45, 0.6, 0.1, "min"),
    (0.65, 0.6, 0.1, "max"),
    (0.75, 0.6, 0.1, "max"),
    (-1.0, 0.0, 0.0, "min"),
    (0.61, 0.6, 0.0, "max"),
]


def test_improved():
    return [(args, ref_es.improved(*args)) for args in IMPROVED_CASES]


# the validation curves test_early_stopper feeds to the student's EarlyStopper
STOPPER_CURVES = [
    [1.0, 0.9, 0.95, 0.85, 0.87, 0.86, 0.88, 0.7],
    [1.0, 0.9, 0.92, 0.91, 0.8, 0.85, 0.84, 0.83],
    [1.0, 0.95, 0.93, 0.92, 0.5],
    [1.0, 0.9, 0.8],
    [0.5, 0.7, 0.6, 0.65],  # val_acc
]


def test_early_stopper():
    """lib's improve rule on every (value, best, min_delta, mode) a stopper can ask about on these curves."""
    values = sorted({v for curve in STOPPER_CURVES for v in curve})
    table = {}
    for value in values:
        for best in [None, *values]:
            for min_delta in (0.0, 0.1):
                for mode in ("min", "max"):
                    table[(value, best, min_delta, mode)] = ref_es.improved(value, best, min_delta, mode)
    return table

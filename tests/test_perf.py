"""course.perf: FLOP counts that can be checked by hand."""
import torch
import torch.nn as nn

from course.perf import matmul_peak_flops, train_flops_per_image


def test_linear_layers_flops_by_hand():
    # forward: 2*in*out per layer; backward: the weight gradient of every layer (2*in*out) and the
    # input gradient of every layer but the first (the images need none)
    model = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 3))
    forward = 2 * 10 * 5 + 2 * 5 * 3
    backward = 2 * 10 * 5 + 2 * (2 * 5 * 3)
    assert train_flops_per_image(model, torch.randn(4, 10)) == forward + backward
    assert model[0].weight.grad is None  # the count leaves no gradients behind


def test_matmul_peak_is_measured():
    assert matmul_peak_flops("cpu", n=256, repeats=2) > 1e8

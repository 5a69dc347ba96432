"""course.perf: FLOP counts that can be checked by hand."""
import torch
import torch.nn as nn

from course.perf import matmul_peak_flops, train_flops_per_image


def test_linear_layer_flops_by_hand():
    # forward 2*in*out per image; backward: grad of input and grad of weight, 2*in*out each
    model = nn.Sequential(nn.Linear(10, 5))
    assert train_flops_per_image(model, torch.randn(4, 10)) == 3 * 2 * 10 * 5
    assert model[0].weight.grad is None  # the count leaves no gradients behind


def test_matmul_peak_is_measured():
    assert matmul_peak_flops("cpu", n=256, repeats=2) > 1e8

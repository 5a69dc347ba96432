"""course.perf: FLOP counts and rates that can be checked by hand (no timing decides a test)."""

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


def test_matmul_peak_is_2n_cubed_over_the_best_time(monkeypatch):
    # a scripted clock: the three timed matmuls take 0.5 s, 0.25 s and 0.4 s; the best one counts
    ticks = iter([10.0, 10.5, 20.0, 20.25, 30.0, 30.4])
    monkeypatch.setattr("course.perf.time.perf_counter", lambda: next(ticks))
    assert matmul_peak_flops("cpu", n=64, repeats=3) == 2 * 64**3 / 0.25

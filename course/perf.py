"""Throughput figures: FLOPs of a training step, the device's measured matmul peak, utilisation."""

from __future__ import annotations

import math
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_flops(
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    n: int | None = None,
    repeats: int = 5,
) -> float:
    """Measured FLOP/s of an n x n matmul on ``device`` (the best of ``repeats``)."""
    device = torch.device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    synchronize(device)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def train_flops_per_image(model: torch.nn.Module, batch: torch.Tensor) -> float:
    """Forward plus backward FLOPs of one training step, per image (PyTorch's FLOP counter)."""
    with FlopCounterMode(display=False) as counter:
        model(batch).sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(batch)

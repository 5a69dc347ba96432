"""Batch normalization of convolutional feature maps.

Ioffe & Szegedy, "Batch Normalization", ICML 2015, Algorithm 1 (the lecture notes, 004), applied
per channel over the mini-batch and every spatial position, m = N * H * W values each:

    mu    = 1/m sum_i x_i                      mini-batch mean
    var   = 1/m sum_i (x_i - mu)^2             mini-batch variance (biased: 1/m)
    x_hat = (x_i - mu) / sqrt(var + eps)       normalise
    y_i   = gamma * x_hat + beta               scale and shift

For inference the paper (Algorithm 2) replaces mu and var by population estimates. PyTorch keeps
them as exponential moving averages updated in training mode,

    running_mean <- (1 - momentum) * running_mean + momentum * mu
    running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)

with the *unbiased* variance (1/(m-1)) for the running estimate, while normalisation uses the
biased one; in evaluation mode it normalises with the running estimates alone.
"""

from __future__ import annotations

import torch


def batch_norm(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H, W), like F.batch_norm; updates running_mean/var in place when training."""
    N, C, H, W = x.shape
    if training:
        m = N * H * W
        if m < 2:
            raise ValueError("batch normalization in training mode needs more than one value per channel")
        mu = x.mean(dim=(0, 2, 3))  # (C,)
        var = ((x - mu.view(1, C, 1, 1)) ** 2).mean(dim=(0, 2, 3))  # (C,), biased: 1/m
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mu.detach())
                running_var.mul_(1 - momentum).add_(momentum * var.detach() * m / (m - 1))  # unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError("evaluation mode normalises with running_mean and running_var: pass both")
        mu, var = running_mean, running_var
    x_hat = (x - mu.view(1, C, 1, 1)) / torch.sqrt(var.view(1, C, 1, 1) + eps)
    return gamma.view(1, C, 1, 1) * x_hat + beta.view(1, C, 1, 1)


def batch_norm_backward(dy: torch.Tensor, x: torch.Tensor, gamma: torch.Tensor, eps: float = 1e-5):
    """Gradients (dx, dgamma, dbeta) of training-mode batch_norm, given dL/dy (the paper, Sec. 3).

    With x_hat and sigma = sqrt(var + eps) from the forward pass, m values per channel:
        dbeta  = sum dy
        dgamma = sum dy * x_hat
        dx     = gamma / (m * sigma) * (m * dy - dbeta - x_hat * dgamma)
    """
    N, C, H, W = x.shape
    m = N * H * W
    mu = x.mean(dim=(0, 2, 3), keepdim=True)
    sigma = torch.sqrt(((x - mu) ** 2).mean(dim=(0, 2, 3), keepdim=True) + eps)  # (1, C, 1, 1)
    x_hat = (x - mu) / sigma
    dbeta = dy.sum(dim=(0, 2, 3))
    dgamma = (dy * x_hat).sum(dim=(0, 2, 3))
    dx = (
        gamma.view(1, C, 1, 1)
        / (m * sigma)
        * (m * dy - dbeta.view(1, C, 1, 1) - x_hat * dgamma.view(1, C, 1, 1))
    )
    return dx, dgamma, dbeta

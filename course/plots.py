"""Plots shared by the notebooks. Each draws on a given Matplotlib axis (or a new one) and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch


def _axis(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def attention_map(weights, x_labels=None, y_labels=None, title="attention weights", ax=None, annotate=True):
    """Heatmap of an (N queries, M keys) weight matrix, rows labelled by query, columns by key."""
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() != 2:
        raise ValueError(
            f"attention_map draws one (N, M) matrix; got shape {tuple(w.shape)}. Index a head or batch first."
        )
    n, m = w.shape
    ax = _axis(ax, (1.0 + 0.7 * m, 0.8 + 0.6 * n))
    im = ax.imshow(w.numpy(), cmap="viridis", vmin=0.0, vmax=max(1e-6, float(w.max())))
    ax.set_xticks(range(m), x_labels if x_labels is not None else range(m), rotation=45, ha="right")
    ax.set_yticks(range(n), y_labels if y_labels is not None else range(n))
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    if annotate and n * m <= 100:
        for i in range(n):
            for j in range(m):
                v = w[i, j].item()
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if v > 0.6 * float(w.max()) else "white",
                )
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def colour_swatches(colours, labels, title=None, ax=None):
    """Draw RGB colours (values 0-255) as labelled squares."""
    c = torch.as_tensor(colours, dtype=torch.float32).reshape(-1, 3).clamp(0, 255) / 255
    ax = _axis(ax, (1.6 * len(c), 1.9))
    for i, (rgb, label) in enumerate(zip(c.tolist(), labels)):
        ax.add_patch(plt.Rectangle((i * 1.2, 0), 1, 1, color=rgb))
        ax.text(i * 1.2 + 0.5, -0.15, label, ha="center", va="top", fontsize=9)
    ax.set_xlim(-0.1, 1.2 * len(c))
    ax.set_ylim(-0.5, 1.05)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def tiles(images, ncols=8, titles=None, title=None, cmap="viridis", tile_size=1.2):
    """Show (N, 3, H, W) images in RGB, or (N, H, W) / (N, 1, H, W) maps with ``cmap``, in a grid.

    Each tile is rescaled to [0, 1] on its own (min to max), as filters and feature maps have
    arbitrary ranges: compare patterns within a tile, not brightness between tiles.
    """
    t = torch.as_tensor(images).detach().float().cpu()
    if t.dim() == 4 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() not in (3, 4) or (t.dim() == 4 and t.shape[1] != 3):
        raise ValueError(f"tiles draws (N, 3, H, W) or (N, H, W) tensors; got shape {tuple(t.shape)}")
    n = len(t)
    lo = t.flatten(1).min(1).values.view(-1, *[1] * (t.dim() - 1))
    hi = t.flatten(1).max(1).values.view(-1, *[1] * (t.dim() - 1))
    t = (t - lo) / (hi - lo).clamp_min(1e-8)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(tile_size * ncols, tile_size * nrows + (0.4 if title else 0)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(
                t[i].permute(1, 2, 0).numpy() if t.dim() == 4 else t[i].numpy(),
                cmap=None if t.dim() == 4 else cmap,
                interpolation="nearest",
            )
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig

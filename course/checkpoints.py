"""Checkpoints of a training run: weights, optimizer state, epoch and history, checked on load."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

from .history import History

FORMAT = "dl-course-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def _signature(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def save_checkpoint(path, model, optimizer, epoch: int, history: History, **extra) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "format": FORMAT,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "epoch": epoch,
            "history": asdict(history),
            "signature": _signature(model),
            **extra,
        },
        tmp,
    )
    tmp.replace(path)  # never leaves a half-written checkpoint


def load_checkpoint(path, model, optimizer=None, map_location="cpu") -> dict:
    """Load weights (and optimizer state) into ``model``; returns the checkpoint dict with a History."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(e).__name__}: {e}); delete it or pass another path"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by course.train.save_checkpoint; pass another path")
    mine, theirs = _signature(model), ckpt["signature"]
    if mine != theirs:
        missing = sorted(set(mine) - set(theirs))[:3]
        extra = sorted(set(theirs) - set(mine))[:3]
        shapes = [
            f"{k}: {theirs[k]} vs {mine[k]}" for k in sorted(set(mine) & set(theirs)) if mine[k] != theirs[k]
        ][:3]
        raise CheckpointError(
            f"{path} holds a different model: missing {missing}, unexpected {extra}, "
            f"shape mismatches {shapes}. "
            "Build the same architecture as the run that saved it, or start without resume."
        )
    model.load_state_dict(ckpt["model"])
    if optimizer is not None and ckpt.get("optimizer") is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    ckpt["history"] = History(**ckpt["history"])
    return ckpt

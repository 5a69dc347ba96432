"""Early stopping that keeps the best model on disk.

Lecture notes (004), "Early Stopping": measure the loss on a validation set, held out from the
training data, and halt when it stops improving, i.e. when overfitting begins; keep the weights
of the best validation epoch (Goodfellow, Bengio & Courville, "Deep Learning", 2016, Sec. 7.8,
Algorithm 7.1: patience p, return the best parameters seen). An epoch improves on the best value
only if it beats it by more than ``min_delta``; ties and smaller gains count as no improvement.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn


def improved(value: float, best: float | None, min_delta: float = 0.0, mode: str = "min") -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` (lower for "min", higher for "max").

    ``best is None`` (nothing seen yet) always counts as an improvement.
    """
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


class EarlyStopper:
    """A training callback: ``stopper(epoch, metrics, model)`` returns True when training should stop.

    On every improvement of ``metrics[monitor]`` it saves ``model.state_dict()`` to ``path``;
    after ``patience`` epochs in a row without one it asks to stop. ``restore(model)`` loads the
    best weights back from ``path``.
    """

    def __init__(
        self, path: str | Path, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0
    ):
        if patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {patience}")
        self.path, self.monitor, self.patience, self.min_delta = Path(path), monitor, patience, min_delta
        self.mode = "max" if monitor.endswith("acc") else "min"  # accuracy goes up, loss goes down
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def __call__(self, epoch: int, metrics: dict, model: nn.Module) -> bool:
        value = metrics[self.monitor]
        if improved(value, self.best, self.min_delta, self.mode):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), self.path)
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best epoch's weights from ``path`` into ``model`` and return it."""
        model.load_state_dict(torch.load(self.path, map_location="cpu", weights_only=True))
        return model

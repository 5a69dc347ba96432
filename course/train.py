"""A small training toolkit shared by the ViT, VGG and LoRA notebooks.

Data stays in uint8 tensors on the device; every batch is converted, augmented (batched, on the
device) and fed to the model, so the loop does little Python work per step. ``fit`` keeps a
validation split, stops early when the monitored value stops improving, restores the best
weights, and saves the best model (weights, optimizer, epoch, history) to a checkpoint that a
later run can resume from.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .session import pick_device


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message says why and what to do."""


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    val_fraction: float = 0.1  # taken from the training set when no validation set is given
    patience: int | None = None  # epochs without improvement before stopping; None = never stop early
    min_delta: float = 0.0  # smallest change that counts as an improvement
    monitor: str = "val_loss"  # or "val_acc"
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to 0
    label_smoothing: float = 0.0
    amp: bool = True  # bf16 autocast on CUDA
    checkpoint: str | Path | None = None  # where the best model is saved
    resume: bool = False  # continue from ``checkpoint`` if it exists
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {self.val_fraction}")
        if self.monitor not in ("val_loss", "val_acc"):
            raise ValueError(f"monitor must be 'val_loss' or 'val_acc', got {self.monitor!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")


@dataclass
class History:
    """Per-epoch figures of one run; ``plot`` draws it, alone or beside other runs."""

    label: str = "run"
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def __getitem__(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs]

    def best(self, key: str = "val_acc") -> float:
        return max(self[key]) if key.endswith("acc") else min(self[key])

    def plot(self, *others: "History", axes=None):
        """Loss and accuracy curves (train dashed, validation solid) of this run and ``others``."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(12, 4))
        for h, colour in zip((self, *others), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
            x = h["epoch"]
            for ax, key in zip(axes, ("loss", "acc")):
                ax.plot(x, h[f"train_{key}"], "--", color=colour, alpha=0.7, label=f"{h.label} train")
                ax.plot(x, h[f"val_{key}"], "-", color=colour, label=f"{h.label} validation")
                if h.best_epoch is not None:
                    ax.axvline(h.best_epoch, color=colour, ls=":", lw=1)
        axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        axes[1].legend(fontsize=8)
        return axes


class EarlyStopping:
    """Tracks the monitored value; ``step`` says whether it improved, ``should_stop`` when to halt."""

    def __init__(self, patience: int | None, min_delta: float = 0.0, mode: str = "min"):
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def step(self, value: float) -> bool:
        better = value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        if better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience


def split_train_val(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int = 0):
    """A random (train, validation) split of tensors: (x_train, y_train, x_val, y_val)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    n = len(x)
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(f"{n} examples cannot be split with val_fraction={val_fraction}: each side needs at least one")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    tr, va = perm[n_val:], perm[:n_val]
    return x[tr], y[tr], x[va], y[va]


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float in [0, 1]."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


def random_shift_flip(x: torch.Tensor, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Batched augmentation on the device: random translation by up to ``pad`` pixels, random flips."""
    B, C, H, W = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (B,), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (B,), device=x.device)
    rows = (dy[:, None] + torch.arange(H, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(W, device=x.device))[:, None, :]  # (B, 1, W)
    b = torch.arange(B, device=x.device)[:, None, None]
    out = xp.permute(0, 2, 3, 1)[b, rows, cols].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
    if flip:
        mirror = torch.rand(B, device=x.device) < 0.5
        out = torch.where(mirror[:, None, None, None], out.flip(-1), out)
    return out


def _signature(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def save_checkpoint(path, model, optimizer, epoch: int, history: History, **extra) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": "dl-course-checkpoint-1", "model": model.state_dict(),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "epoch": epoch, "history": asdict(history), "signature": _signature(model), **extra}, tmp)
    tmp.replace(path)  # never leaves a half-written checkpoint


def load_checkpoint(path, model, optimizer=None, map_location="cpu") -> dict:
    """Load weights (and optimizer state) into ``model``; returns the checkpoint dict with a History."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e}); delete it or pass another path") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != "dl-course-checkpoint-1":
        raise CheckpointError(f"{path} was not written by course.train.save_checkpoint; pass another path")
    mine, theirs = _signature(model), ckpt["signature"]
    if mine != theirs:
        missing = sorted(set(mine) - set(theirs))[:3]
        extra = sorted(set(theirs) - set(mine))[:3]
        shapes = [f"{k}: {theirs[k]} vs {mine[k]}" for k in sorted(set(mine) & set(theirs)) if mine[k] != theirs[k]][:3]
        raise CheckpointError(
            f"{path} holds a different model: missing {missing}, unexpected {extra}, shape mismatches {shapes}. "
            "Build the same architecture as the run that saved it, or start without resume."
        )
    model.load_state_dict(ckpt["model"])
    if optimizer is not None and ckpt.get("optimizer") is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    ckpt["history"] = History(**ckpt["history"])
    return ckpt


@torch.no_grad()
def evaluate(model, x, y, batch_size=512, device=None, transform=to_float, amp=True) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on tensors x, y."""
    if len(x) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    device = device or next(model.parameters()).device
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = transform(x[i:i + batch_size].to(device)), y[i:i + batch_size].to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            logits = model(xb)
        total_loss += F.cross_entropy(logits.float(), yb, reduction="sum").item()
        correct += (logits.argmax(-1) == yb).sum().item()
    return total_loss / len(x), correct / len(x)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, x_val=None, y_val=None,
        device=None, transform: Callable = to_float, augment: Callable | None = None, label: str = "run",
        progress: bool = True) -> History:
    """Train with AdamW, warm-up and cosine decay, early stopping and best-model checkpoints.

    x: (N, C, H, W) uint8 or float images, y: (N,) labels. Without x_val, ``config.val_fraction``
    of x is held out. ``augment`` runs on each float batch on the device (training only).
    """
    if len(x) == 0:
        raise ValueError("the training set is empty: check the data loading step")
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if x_val is None:
        x, y, x_val, y_val = split_train_val(x, y, config.val_fraction, config.seed)
    device = torch.device(device) if device is not None else pick_device()
    model.to(device)
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    total, warm = config.epochs * steps_per_epoch, max(1, int(config.warmup_epochs * steps_per_epoch))
    history, start_epoch = History(label=label), 1
    stopper = EarlyStopping(config.patience, config.min_delta, "min" if config.monitor == "val_loss" else "max")
    if config.resume and config.checkpoint and Path(config.checkpoint).exists():
        ckpt = load_checkpoint(config.checkpoint, model, optimizer, map_location=device)
        history, start_epoch = ckpt["history"], ckpt["epoch"] + 1
        stopper.best = history.best(config.monitor)
        print(f"resumed from {config.checkpoint} after epoch {ckpt['epoch']}")
    done = (start_epoch - 1) * steps_per_epoch  # steps already taken before a resume
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = config.lr
    schedule = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then cosine decay to 0
        optimizer, lambda s: min(1.0, (s + done + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, (s + done) / total))))
    best_state = copy.deepcopy(model.state_dict())
    gen = torch.Generator(device="cpu").manual_seed(config.seed + start_epoch)
    bar = tqdm(range(start_epoch, config.epochs + 1), desc=label, disable=not progress)
    for epoch in bar:
        model.train()
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        for idx in torch.randperm(len(x), generator=gen).to(device).split(config.batch_size):
            xb, yb = transform(x[idx]), y[idx]
            if augment is not None:
                xb = augment(xb)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda"):
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(-1) == yb).sum()
            seen += len(idx)
        val_loss, val_acc = evaluate(model, x_val, y_val, device=device, transform=transform, amp=config.amp)
        row = dict(epoch=epoch, train_loss=loss_sum.item() / seen, train_acc=correct.item() / seen,
                   val_loss=val_loss, val_acc=val_acc, lr=optimizer.param_groups[0]["lr"],
                   time_s=time.perf_counter() - t0, images_per_s=seen / (time.perf_counter() - t0))
        history.epochs.append(row)
        bar.set_postfix(val_acc=f"{val_acc:.4f}", val_loss=f"{val_loss:.4f}")
        if stopper.step(row[config.monitor]):
            history.best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict())
            if config.checkpoint:
                save_checkpoint(config.checkpoint, model, optimizer, epoch, history)
        if stopper.should_stop:
            history.stopped_early = True
            break
    model.load_state_dict(best_state)  # the best epoch's weights, not the last
    return history

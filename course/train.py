"""A small training toolkit shared by the ViT, VGG and LoRA notebooks: the training loop.

Data stays in uint8 tensors on the device; every batch is converted, augmented (batched, on the
device) and fed to the model, so the loop does little Python work per step. ``fit`` keeps a
validation split, stops early when the monitored value stops improving, restores the best
weights, and saves the best model (weights, optimizer, epoch, history) to a checkpoint that a
later run can resume from. The optimizer (AdamW or SGD with momentum, or a factory of your own)
and the learning-rate schedule (warm-up and cosine, one-cycle, step, constant, or a function of
your own) are fields of ``TrainConfig``; ``callbacks`` see every epoch's figures and may stop
the run. With ``time_budget_s`` the schedule is driven by elapsed wall time instead of the step
count (``epochs`` is then an upper bound), so a run ends on time on a slow or busy machine.
The run's figures live in ``course.history``, checkpoints in ``course.checkpoints``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .history import History
from .session import pick_device

__all__ = [
    "CheckpointError",
    "EarlyStopping",
    "History",
    "TrainConfig",
    "evaluate",
    "fit",
    "load_checkpoint",
    "lr_factor",
    "make_optimizer",
    "random_shift_flip",
    "save_checkpoint",
    "split_train_val",
    "to_float",
]

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("warmup_cosine", "onecycle", "step", "constant")

# optimizer factory: (trainable parameters, config) -> optimizer
OptimizerFactory = Callable[[list, "TrainConfig"], torch.optim.Optimizer]
# schedule: (step, total steps) -> factor of the base learning rate
Schedule = Callable[[int, int], float]
# callback: (epoch, that epoch's figures, model) -> True to stop training
Callback = Callable[[int, dict, nn.Module], bool]


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    optimizer: str | OptimizerFactory = "adamw"  # "adamw", "sgd" (with momentum), or a factory
    momentum: float = 0.9  # SGD only
    nesterov: bool = False  # SGD only
    schedule: str | Schedule = "warmup_cosine"  # see SCHEDULES, or a function (step, total) -> factor
    warmup_epochs: float = 1.0  # warm-up length (warmup_cosine), or the rising phase (onecycle)
    step_epochs: int = 30  # "step": multiply the learning rate by step_gamma every step_epochs
    step_gamma: float = 0.1
    val_fraction: float = 0.1  # taken from the training set when no validation set is given
    patience: int | None = None  # epochs without improvement before stopping; None = never stop early
    min_delta: float = 0.0  # smallest change that counts as an improvement
    monitor: str = "val_loss"  # or "val_acc"
    restore_best: bool = True  # end with the best epoch's weights (False: the last epoch's)
    label_smoothing: float = 0.0
    amp: bool = True  # bf16 autocast on CUDA
    channels_last: bool = False  # NHWC memory layout: faster convolutions on GPUs and oneDNN CPUs
    time_budget_s: float | None = (
        None  # wall-time budget of fit: the schedule follows elapsed time, training ends on time
    )
    checkpoint: str | Path | None = None  # where the best model is saved
    resume: bool = False  # continue from ``checkpoint`` if it exists
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {self.val_fraction}")
        if self.monitor not in ("val_loss", "val_acc"):
            raise ValueError(f"monitor must be 'val_loss' or 'val_acc', got {self.monitor!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(
                f"time_budget_s must be a positive number of seconds (or None), got {self.time_budget_s}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if isinstance(self.optimizer, str) and self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer={self.optimizer!r}: use one of {OPTIMIZERS} or a function (params, config) -> optimizer"
            )
        if isinstance(self.schedule, str) and self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule={self.schedule!r}: use one of {SCHEDULES} or a function (step, total_steps) -> factor"
            )


def make_optimizer(params: list, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names (or builds), over ``params``."""
    if callable(config.optimizer):
        return config.optimizer(params, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    """Learning rate at global ``step`` (0-based) of ``total``, as a fraction of ``config.lr``."""
    if callable(config.schedule):
        return config.schedule(step, total)
    warm = max(1, int(config.warmup_epochs * steps_per_epoch))
    if config.schedule == "warmup_cosine":  # linear warm-up, then cosine decay to 0
        return min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
    if config.schedule == "onecycle":  # Smith & Topin 2019, as torch's OneCycleLR: lr/25 -> lr -> lr/25e4

        def anneal(a, b, pct):
            return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)

        start, end = 1 / 25, 1 / 25e4
        top = min(max(1.0, warm - 1.0), total - 2.0)  # the step with the peak rate
        if step <= top:
            return anneal(start, 1.0, step / top)
        return anneal(1.0, end, min(1.0, (step - top) / (total - 1 - top)))
    if config.schedule == "step":
        return config.step_gamma ** (step // (config.step_epochs * steps_per_epoch))
    return 1.0  # constant


class EarlyStopping:
    """Tracks the monitored value; ``step`` says whether it improved, ``should_stop`` when to halt."""

    def __init__(self, patience: int | None, min_delta: float = 0.0, mode: str = "min"):
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0

    def step(self, value: float) -> bool:
        better = (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
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
        raise ValueError(
            f"{n} examples cannot be split with val_fraction={val_fraction}: each side needs at least one"
        )
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


@torch.no_grad()
def evaluate(model, x, y, batch_size=512, device=None, transform=to_float, amp=True) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on tensors x, y."""
    if len(x) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    device = device or next(model.parameters()).device
    model.eval()
    total_loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = transform(x[i : i + batch_size].to(device)), y[i : i + batch_size].to(device)
        with torch.autocast(
            device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"
        ):
            logits = model(xb)
        total_loss += F.cross_entropy(logits.float(), yb, reduction="sum").item()
        correct += (logits.argmax(-1) == yb).sum().item()
    return total_loss / len(x), correct / len(x)


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    x_val=None,
    y_val=None,
    device=None,
    transform: Callable = to_float,
    augment: Callable | None = None,
    label: str = "run",
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> History:
    """Train with the configured optimizer and schedule, early stopping and best-model checkpoints.

    x: (N, C, H, W) uint8 or float images, y: (N,) labels. Without x_val, ``config.val_fraction``
    of x is held out. ``augment`` runs on each float batch on the device (training only). After
    every epoch each callback is called as ``callback(epoch, figures, model)``; training stops
    after an epoch for which any of them returns True. Only parameters with ``requires_grad``
    are optimised.
    """
    if len(x) == 0:
        raise ValueError("the training set is empty: check the data loading step")
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if x_val is None:
        x, y, x_val, y_val = split_train_val(x, y, config.val_fraction, config.seed)
    device = torch.device(device) if device is not None else pick_device()
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
        base_transform = transform
        transform = lambda images: base_transform(images).contiguous(memory_format=torch.channels_last)  # noqa: E731
    x, y = x.to(device), y.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters (every requires_grad is False)")
    optimizer = make_optimizer(trainable, config)
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    total = config.epochs * steps_per_epoch
    history, start_epoch = History(label=label), 1
    stopper = EarlyStopping(
        config.patience, config.min_delta, "min" if config.monitor == "val_loss" else "max"
    )
    if config.resume and config.checkpoint and Path(config.checkpoint).exists():
        ckpt = load_checkpoint(config.checkpoint, model, optimizer, map_location=device)
        history, start_epoch = ckpt["history"], ckpt["epoch"] + 1
        stopper.best = history.best(config.monitor)
        print(f"resumed from {config.checkpoint} after epoch {ckpt['epoch']}")
    done = (start_epoch - 1) * steps_per_epoch  # steps already taken before a resume
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = config.lr
    t_start, budget = time.perf_counter(), config.time_budget_s

    def factor(step: int) -> float:
        """The schedule at ``step``; under a time budget, the total is projected from the elapsed time."""
        if budget is None or step == done:
            return lr_factor(config, step, total, steps_per_epoch)
        progress = (time.perf_counter() - t_start) / budget  # fraction of this call's budget spent
        # steps before a resume count as done; the ones of this call are projected from their pace
        projected = (
            done + max(step - done + 1, math.ceil((step - done) / progress)) if progress > 0 else total
        )
        return lr_factor(config, step, min(projected, total), steps_per_epoch)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: factor(s + done))
    val_s = 0.0  # the last validation pass's duration: under a time budget, kept free for the final one
    best_state = copy.deepcopy(model.state_dict())
    gen = torch.Generator(device="cpu").manual_seed(config.seed + start_epoch)
    bar = tqdm(range(start_epoch, config.epochs + 1), desc=label, disable=not progress)
    for epoch in bar:
        model.train()
        t0, seen, loss_sum, correct, out_of_time = time.perf_counter(), 0, 0.0, 0, False
        for idx in torch.randperm(len(x), generator=gen).to(device).split(config.batch_size):
            xb, yb = transform(x[idx]), y[idx]
            if augment is not None:
                xb = augment(xb)
            with torch.autocast(
                device_type=device.type, dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda"
            ):
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(-1) == yb).sum()
            seen += len(idx)
            out_of_time = budget is not None and time.perf_counter() - t_start + val_s >= budget
            if out_of_time:
                break
        train_s = time.perf_counter() - t0
        t_val = time.perf_counter()
        val_loss, val_acc = evaluate(model, x_val, y_val, device=device, transform=transform, amp=config.amp)
        val_s = time.perf_counter() - t_val
        row = dict(
            epoch=epoch,
            train_loss=loss_sum.item() / seen,
            train_acc=correct.item() / seen,
            val_loss=val_loss,
            val_acc=val_acc,
            lr=optimizer.param_groups[0]["lr"],
            time_s=time.perf_counter() - t0,
            images=seen,
            images_per_s=seen / train_s,
        )
        history.epochs.append(row)
        bar.set_postfix(val_acc=f"{val_acc:.4f}", val_loss=f"{val_loss:.4f}")
        if budget is not None and not out_of_time:  # the epochs the rest of the budget will take
            left = budget - (time.perf_counter() - t_start)
            bar.total = min(config.epochs, epoch + max(1, math.ceil(left / row["time_s"])))
            bar.refresh()
        if stopper.step(row[config.monitor]):
            history.best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict())
            if config.checkpoint:
                save_checkpoint(config.checkpoint, model, optimizer, epoch, history)
        asked_to_stop = [
            bool(cb(epoch, dict(row), model)) for cb in callbacks
        ]  # every callback sees every epoch
        if stopper.should_stop or any(asked_to_stop):
            history.stopped_early = True
            break
        if out_of_time:
            break
    if config.restore_best:
        model.load_state_dict(best_state)  # the best epoch's weights, not the last
    return history

"""A small training toolkit shared by the ViT, VGG and LoRA notebooks: the training loop.

Data stays in uint8 tensors on the device; every batch is converted, augmented (batched, on the
device) and fed to the model, so the loop does little Python work per step. ``fit`` keeps a
validation split, restores the best weights, and saves the best model (weights, optimizer, epoch,
history) to a checkpoint that a later run can resume from. The optimizer (AdamW or SGD with
momentum, or a factory of your own) and the learning-rate schedule (warm-up and cosine, one-cycle,
step, constant, or a function of your own) are fields of ``TrainConfig``. Callbacks see every
epoch's figures and may stop the run; that is the only way a run stops early, and the config's
patience is one of them (an ``EarlyStopping``, run first). With ``time_budget_s`` the schedule is
driven by elapsed wall time instead of the step count (``epochs`` is then an upper bound), so a
run ends on time on a slow or busy machine.
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
                f"optimizer={self.optimizer!r}: use one of {OPTIMIZERS} "
                "or a function (params, config) -> optimizer"
            )
        if isinstance(self.schedule, str) and self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule={self.schedule!r}: use one of {SCHEDULES} "
                "or a function (step, total_steps) -> factor"
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
    """Early stopping, as a training callback: the one way ``fit`` stops on a stalled validation figure.

    Goodfellow, Bengio & Courville, "Deep Learning", 2016, Sec. 7.8, Algorithm 7.1: ``step(value)``
    says whether the monitored value beat the best so far by more than ``min_delta``; ``should_stop``
    is True after ``patience`` epochs in a row without an improvement (never when patience is None).
    As a callback, ``stopper(epoch, figures, model)`` steps on ``figures[monitor]``, calls
    ``on_improve(epoch, model)`` when it improved, and returns ``should_stop``. ``fit`` builds one from
    ``TrainConfig`` (patience, min_delta, monitor) and runs it before the callbacks it is given.
    """

    def __init__(
        self,
        patience: int | None,
        min_delta: float = 0.0,
        mode: str = "min",
        monitor: str = "val_loss",
        on_improve: Callable[[int, nn.Module], None] | None = None,
    ):
        self.patience, self.min_delta, self.mode, self.monitor = patience, min_delta, mode, monitor
        self.on_improve = on_improve
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

    def __call__(self, epoch: int, figures: dict, model: nn.Module) -> bool:
        if self.step(figures[self.monitor]) and self.on_improve is not None:
            self.on_improve(epoch, model)
        return self.should_stop


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


@dataclass
class _Run:
    """One call of ``fit``: the model, its data on the device, the optimizer, the schedule and the clock."""

    model: nn.Module
    config: TrainConfig
    device: torch.device
    transform: Callable
    augment: Callable | None
    x: torch.Tensor
    y: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR | None = None
    t_start: float = 0.0  # when training began (perf_counter), for the time budget
    # the last validation pass's duration: under a time budget, kept free for the final one
    val_s: float = 0.0

    def out_of_time(self) -> bool:
        budget = self.config.time_budget_s
        return budget is not None and time.perf_counter() - self.t_start + self.val_s >= budget


def _channels_last(transform: Callable) -> Callable:
    def to_nhwc(images: torch.Tensor) -> torch.Tensor:
        return transform(images).contiguous(memory_format=torch.channels_last)

    return to_nhwc


def _setup(model, x, y, config: TrainConfig, x_val, y_val, device, transform, augment) -> _Run:
    """Check the data, hold out a validation split if none is given, move model and data to the device."""
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
        transform = _channels_last(transform)
    x, y = x.to(device), y.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters (every requires_grad is False)")
    optimizer = make_optimizer(trainable, config)
    return _Run(model, config, device, transform, augment, x, y, x_val, y_val, optimizer)


def _start(run: _Run, label: str) -> tuple[History, int, float | None]:
    """(history, first epoch, best monitored value): a new run, or the checkpoint's when resuming."""
    config = run.config
    if not (config.resume and config.checkpoint and Path(config.checkpoint).exists()):
        return History(label=label), 1, None
    ckpt = load_checkpoint(config.checkpoint, run.model, run.optimizer, map_location=run.device)
    history = ckpt["history"]
    best = history.best(config.monitor)
    print(f"resumed from {config.checkpoint} after epoch {ckpt['epoch']}")
    return history, ckpt["epoch"] + 1, best


class _KeepBest:
    """What ``fit``'s EarlyStopping calls on every improvement: it keeps the best epoch's weights.

    In memory, for ``restore_best``, and in ``config.checkpoint`` (weights, optimizer, epoch, history).
    """

    def __init__(self, run: _Run, history: History):
        self.run, self.history = run, history
        self.state = copy.deepcopy(run.model.state_dict())

    def __call__(self, epoch: int, model: nn.Module) -> None:
        self.history.best_epoch = epoch
        self.state = copy.deepcopy(model.state_dict())
        if self.run.config.checkpoint:
            save_checkpoint(self.run.config.checkpoint, model, self.run.optimizer, epoch, self.history)


def _early_stopping(config: TrainConfig, on_improve: _KeepBest, best: float | None) -> EarlyStopping:
    mode = "min" if config.monitor == "val_loss" else "max"
    stopper = EarlyStopping(config.patience, config.min_delta, mode, config.monitor, on_improve)
    if best is not None:  # resumed: improvements are counted against the checkpoint's best
        stopper.best = best
    return stopper


def _schedule(run: _Run, done: int, total: int, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The learning rate of ``config.schedule`` from step ``done`` on; starts the clock of the time budget."""
    config, budget = run.config, run.config.time_budget_s
    for group in run.optimizer.param_groups:
        group["lr"] = group["initial_lr"] = config.lr
    run.t_start = time.perf_counter()

    def factor(s: int) -> float:
        """The schedule at ``step``; under a time budget, the total is projected from the elapsed time."""
        step = s + done
        if budget is None or step == done:
            return lr_factor(config, step, total, steps_per_epoch)
        spent = (time.perf_counter() - run.t_start) / budget  # fraction of this call's budget spent
        # steps before a resume count as done; the ones of this call are projected from their pace
        projected = done + max(step - done + 1, math.ceil((step - done) / spent)) if spent > 0 else total
        return lr_factor(config, step, min(projected, total), steps_per_epoch)

    return torch.optim.lr_scheduler.LambdaLR(run.optimizer, factor)


def _train_batches(run: _Run, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    """One pass over the shuffled training set, or until the time budget runs out.

    Returns (summed loss, correct predictions, images seen, whether the budget ran out).
    """
    config, device = run.config, run.device
    seen, loss_sum, correct, out_of_time = 0, 0.0, 0, False
    for idx in torch.randperm(len(run.x), generator=gen).to(device).split(config.batch_size):
        xb, yb = run.transform(run.x[idx]), run.y[idx]
        if run.augment is not None:
            xb = run.augment(xb)
        with torch.autocast(
            device_type=device.type, dtype=torch.bfloat16, enabled=config.amp and device.type == "cuda"
        ):
            logits = run.model(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.schedule.step()
        loss_sum += loss.detach() * len(idx)
        correct += (logits.argmax(-1) == yb).sum()
        seen += len(idx)
        out_of_time = run.out_of_time()
        if out_of_time:
            break
    return loss_sum, correct, seen, out_of_time


def _epoch(run: _Run, epoch: int, gen: torch.Generator) -> tuple[dict, bool]:
    """Train one epoch, then validate: (the epoch's row of figures, whether the time budget ran out)."""
    run.model.train()
    t0 = time.perf_counter()
    loss_sum, correct, seen, out_of_time = _train_batches(run, gen)
    train_s = time.perf_counter() - t0
    t_val = time.perf_counter()
    val_loss, val_acc = evaluate(
        run.model, run.x_val, run.y_val, device=run.device, transform=run.transform, amp=run.config.amp
    )
    run.val_s = time.perf_counter() - t_val
    row = dict(
        epoch=epoch,
        train_loss=loss_sum.item() / seen,
        train_acc=correct.item() / seen,
        val_loss=val_loss,
        val_acc=val_acc,
        lr=run.optimizer.param_groups[0]["lr"],
        time_s=time.perf_counter() - t0,
        images=seen,
        images_per_s=seen / train_s,
    )
    return row, out_of_time


def _show(bar, run: _Run, epoch: int, row: dict, out_of_time: bool) -> None:
    """The epoch's validation figures on the progress bar; under a time budget, the epochs still to come."""
    bar.set_postfix(val_acc=f"{row['val_acc']:.4f}", val_loss=f"{row['val_loss']:.4f}")
    budget = run.config.time_budget_s
    if budget is not None and not out_of_time:  # the epochs the rest of the budget will take
        left = budget - (time.perf_counter() - run.t_start)
        bar.total = min(run.config.epochs, epoch + max(1, math.ceil(left / row["time_s"])))
        bar.refresh()


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
    after an epoch for which any of them returns True. The first callback is always the
    :class:`EarlyStopping` built from ``config.patience``, ``min_delta`` and ``monitor``, which also
    keeps the best epoch's weights. A ``config.time_budget_s`` that runs out ends the run as well
    (that is not early stopping). Only parameters with ``requires_grad`` are optimised.
    """
    run = _setup(model, x, y, config, x_val, y_val, device, transform, augment)
    history, start_epoch, best = _start(run, label)
    keep_best = _KeepBest(run, history)
    callbacks = (_early_stopping(config, keep_best, best), *callbacks)
    steps_per_epoch = math.ceil(len(run.x) / config.batch_size)
    done = (start_epoch - 1) * steps_per_epoch  # steps already taken before a resume
    run.schedule = _schedule(run, done, config.epochs * steps_per_epoch, steps_per_epoch)
    gen = torch.Generator(device="cpu").manual_seed(config.seed + start_epoch)
    bar = tqdm(range(start_epoch, config.epochs + 1), desc=label, disable=not progress)
    for epoch in bar:
        row, out_of_time = _epoch(run, epoch, gen)
        history.epochs.append(row)
        _show(bar, run, epoch, row, out_of_time)
        if any([bool(cb(epoch, dict(row), model)) for cb in callbacks]):  # every callback sees every epoch
            history.stopped_early = True
            break
        if out_of_time:
            break
    if config.restore_best:
        model.load_state_dict(keep_best.state)  # the best epoch's weights, not the last
    return history

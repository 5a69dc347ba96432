"""course.train: early stopping, best weights, checkpoints and resume, bad input."""

import matplotlib
import pytest
import torch
import torch.nn as nn

from course import data
from course.train import (
    CheckpointError,
    EarlyStopping,
    History,
    TrainConfig,
    evaluate,
    fit,
    load_checkpoint,
    lr_factor,
    make_optimizer,
    random_shift_flip,
    save_checkpoint,
    split_train_val,
)

matplotlib.use("Agg")


def _mlp(hidden=64, n_in=28 * 28):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def test_learns_real_mnist_sample():
    train, test = data.load("mnist", "train", verbose=False), data.load("mnist", "test", verbose=False)
    model = _mlp()
    cfg = TrainConfig(epochs=5, batch_size=64, lr=3e-3)
    h = fit(model, train.images, train.labels, cfg, device="cpu", progress=False)
    _, acc = evaluate(model, test.images, test.labels)
    assert acc > 0.85, f"an MLP on {len(train):,} MNIST digits should pass 85% test accuracy, got {acc:.3f}"
    assert len(h.epochs) == 5 and h["train_loss"][-1] < h["train_loss"][0]
    x_train, _, x_val, _ = split_train_val(train.images, train.labels, cfg.val_fraction, cfg.seed)
    assert len(x_train) + len(x_val) == len(train) and len(x_val) > 0
    assert all(
        e["images"] == len(x_train) for e in h.epochs
    )  # each training image once per epoch, no validation image
    # the rate counts the training pass only: the epoch's time also holds the validation pass
    assert all(e["images_per_s"] >= e["images"] / e["time_s"] for e in h.epochs)


def test_early_stopping_restores_best_weights():
    # random labels: the training set gets memorised and validation loss climbs after a few epochs
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(600, 1, 8, 8, generator=g), torch.randint(0, 10, (600,), generator=g)
    model = _mlp(256, 64)
    cfg = TrainConfig(epochs=60, batch_size=32, lr=3e-3, weight_decay=0, patience=3, warmup_epochs=0)
    h = fit(model, x, y, cfg, device="cpu", progress=False)
    assert h.stopped_early and len(h.epochs) < 60
    assert h.best_epoch == min(h.epochs, key=lambda e: e["val_loss"])["epoch"] < h.epochs[-1]["epoch"]
    _, _, x_val, y_val = split_train_val(x, y, cfg.val_fraction, cfg.seed)
    val_loss, _ = evaluate(model, x_val, y_val)
    assert val_loss == pytest.approx(h.best("val_loss"), rel=1e-5), (
        "the model must hold the best epoch's weights"
    )


def test_early_stopping_unit():
    s = EarlyStopping(patience=2, min_delta=0.1, mode="min")
    assert s.step(1.0) and not s.step(0.95) and not s.should_stop  # 0.05 is below min_delta
    assert not s.step(0.99) and s.should_stop
    up = EarlyStopping(patience=None, mode="max")
    assert up.step(0.5) and not up.step(0.4) and not up.should_stop


def test_checkpoint_and_resume(tmp_path, capsys):
    train = data.load("mnist", "train", verbose=False)
    x, y = train.images[:600], train.labels[:600]
    ckpt = tmp_path / "best.pt"
    first = fit(_mlp(), x, y, TrainConfig(epochs=2, checkpoint=ckpt), device="cpu", progress=False)
    saved = load_checkpoint(ckpt, _mlp(), torch.optim.AdamW(_mlp().parameters()))
    assert saved["epoch"] == first.best_epoch and saved["history"].epochs == first.epochs[: first.best_epoch]
    more = fit(
        _mlp(), x, y, TrainConfig(epochs=4, checkpoint=ckpt, resume=True), device="cpu", progress=False
    )
    assert "resumed from" in capsys.readouterr().out
    assert [e["epoch"] for e in more.epochs] == list(range(1, 5))
    assert more.epochs[: first.best_epoch] == first.epochs[: first.best_epoch]


def test_bad_checkpoints_are_named(tmp_path):
    model = _mlp()
    save_checkpoint(tmp_path / "a.pt", model, None, 1, History())
    with pytest.raises(CheckpointError, match="different model.*shape mismatches"):
        load_checkpoint(tmp_path / "a.pt", _mlp(hidden=32))
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt", model)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not written by course.train"):
        load_checkpoint(tmp_path / "other.pt", model)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt", model)
    assert (tmp_path / "bad.pt").read_bytes() == b"garbage"  # nothing deleted


def test_bad_input():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        TrainConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        split_train_val(torch.zeros(10), torch.zeros(10), 0)
    with pytest.raises(ValueError, match="training set is empty"):
        fit(
            _mlp(), torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long), TrainConfig(), progress=False
        )
    with pytest.raises(ValueError, match="cannot be split"):
        split_train_val(torch.zeros(1), torch.zeros(1), 0.5)
    with pytest.raises(ValueError, match="empty dataset"):
        evaluate(_mlp(), torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long))


def test_batched_augmentation():
    x = torch.rand(16, 3, 8, 8)
    assert torch.equal(random_shift_flip(x, pad=0, flip=False), x)
    out = random_shift_flip(x, pad=2)
    assert out.shape == x.shape
    # a single bright pixel in the middle moves by at most 2 pixels, and is never lost
    dot = torch.zeros(64, 1, 9, 9)
    dot[:, :, 4, 4] = 1
    moved = random_shift_flip(dot, pad=2, flip=False)
    assert torch.equal(moved.sum((1, 2, 3)), torch.ones(64))
    pos = moved[:, 0].flatten(1).argmax(1)
    assert ((pos // 9 - 4).abs() <= 2).all() and ((pos % 9 - 4).abs() <= 2).all()
    assert len(set(pos.tolist())) > 5  # and really moves


def test_history_plots_several_runs():
    a = History("a", [dict(epoch=1, train_loss=1, val_loss=1, train_acc=0.5, val_acc=0.5)], best_epoch=1)
    b = History("b", [dict(epoch=1, train_loss=2, val_loss=2, train_acc=0.4, val_acc=0.4)])
    axes = a.plot(b)
    assert len(axes[0].lines) == 2 * 2 + 1  # train and validation per run, and the best-epoch marker


def test_sgd_with_onecycle_matches_torchs_onecycle_lr():
    model = nn.Linear(4, 2)
    cfg = TrainConfig(
        epochs=5,
        batch_size=10,
        lr=0.4,
        optimizer="sgd",
        momentum=0.9,
        weight_decay=5e-4,
        schedule="onecycle",
        warmup_epochs=1.5,
    )
    opt = make_optimizer(list(model.parameters()), cfg)
    assert (
        isinstance(opt, torch.optim.SGD)
        and opt.defaults["momentum"] == 0.9
        and opt.defaults["weight_decay"] == 5e-4
    )
    steps_per_epoch, total = 10, 50
    ref_opt = torch.optim.SGD(nn.Linear(4, 2).parameters(), lr=0.4)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        ref_opt, max_lr=0.4, total_steps=total, pct_start=15 / 50, cycle_momentum=False
    )
    for step in range(total):
        assert 0.4 * lr_factor(cfg, step, total, steps_per_epoch) == pytest.approx(
            ref_opt.param_groups[0]["lr"], rel=1e-6
        ), step
        ref_opt.step()
        ref.step()


def test_step_and_constant_schedules_and_factories():
    cfg = TrainConfig(schedule="step", step_epochs=2, step_gamma=0.5)
    assert [lr_factor(cfg, s, 100, 10) for s in (0, 19, 20, 40)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_factor(TrainConfig(schedule="constant"), 7, 10, 1) == 1.0
    made = []
    cfg = TrainConfig(
        epochs=2,
        batch_size=50,
        optimizer=lambda params, c: made.append(1) or torch.optim.RMSprop(params, lr=c.lr),
        schedule=lambda step, total: 1 - step / total,
    )
    h = fit(
        _mlp(16, 8),
        torch.randn(100, 1, 2, 4),
        torch.randint(0, 10, (100,)),
        cfg,
        device="cpu",
        progress=False,
    )
    # 90 training images in batches of 50: 2 steps per epoch, 4 in all; lr = 1e-3 * (1 - steps taken / 4)
    assert made == [1] and h["lr"] == [pytest.approx(0.5e-3), pytest.approx(0.0)]
    with pytest.raises(ValueError, match="optimizer='lion'"):
        TrainConfig(optimizer="lion")
    with pytest.raises(ValueError, match="schedule='cyclic'"):
        TrainConfig(schedule="cyclic")


def test_callbacks_see_every_epoch_and_can_stop(tmp_path):
    seen = []

    def stop_at_three(epoch, figures, model):
        seen.append((epoch, sorted(figures)))
        return epoch == 3

    x, y = torch.randn(200, 1, 2, 4), torch.randint(0, 10, (200,))
    h = fit(
        _mlp(16, 8),
        x,
        y,
        TrainConfig(epochs=10, batch_size=50),
        device="cpu",
        progress=False,
        callbacks=[stop_at_three, lambda e, f, m: False],
    )
    assert [e for e, _ in seen] == [1, 2, 3] and h.stopped_early and len(h.epochs) == 3
    assert {"val_loss", "val_acc", "train_loss", "train_acc"} <= set(seen[0][1])


def test_restore_best_false_keeps_the_last_weights():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(600, 1, 8, 8, generator=g), torch.randint(0, 10, (600,), generator=g)
    cfg = TrainConfig(epochs=12, batch_size=32, lr=3e-3, weight_decay=0, warmup_epochs=0, restore_best=False)
    model = _mlp(256, 64)
    h = fit(model, x, y, cfg, device="cpu", progress=False)
    _, _, x_val, y_val = split_train_val(x, y, cfg.val_fraction, cfg.seed)
    assert h.best_epoch < 12  # random labels: validation loss climbs once memorising starts
    assert evaluate(model, x_val, y_val)[0] == pytest.approx(h.epochs[-1]["val_loss"], rel=1e-5)


def test_channels_last_trains_a_conv_net():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
    h = fit(
        model,
        torch.rand(64, 3, 8, 8),
        torch.randint(0, 10, (64,)),
        TrainConfig(epochs=1, batch_size=16, channels_last=True),
        device="cpu",
        progress=False,
    )
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last) and len(h.epochs) == 1


def test_history_at_reads_one_epoch():
    h = History("a", [dict(epoch=1, val_acc=0.1), dict(epoch=2, val_acc=0.2)])
    assert h.at(2)["val_acc"] == 0.2
    with pytest.raises(KeyError, match="has no epoch 3"):
        h.at(3)


class _Clock:
    """A fake clock for course.train: every forward pass of the wrapped model costs ``cost`` seconds."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


def test_time_budget_drives_the_schedule_and_ends_on_time(monkeypatch):
    import math
    import time as real_time
    import types

    import course.train

    clock = _Clock()
    monkeypatch.setattr(
        course.train, "time", types.SimpleNamespace(perf_counter=clock.perf_counter, sleep=real_time.sleep)
    )

    class Costly(nn.Module):  # 0.1 s per batch, training or validation
        def __init__(self):
            super().__init__()
            self.net = _mlp(8, 8)

        def forward(self, x):
            clock.now += 0.1
            return self.net(x)

    lrs = []
    cfg = TrainConfig(
        epochs=1000,
        batch_size=10,
        lr=1.0,
        warmup_epochs=0.01,
        val_fraction=0.1,
        time_budget_s=5.0,
        schedule=lambda step, total: (
            lrs.append((step, total, clock.now)) or 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
        ),
    )
    h = fit(
        Costly(), torch.randn(200, 1, 2, 4), torch.randint(0, 10, (200,)), cfg, device="cpu", progress=False
    )
    # 180 training images = 18 steps an epoch, 0.1 s each; 20 validation images = 1 batch (0.1 s) per epoch
    assert clock.now <= 5.0 + 0.1 + 1e-9  # the budget holds (one validation batch may finish past it)
    steps = sum(e["images"] for e in h.epochs) // 10
    assert 45 <= steps <= 48  # ~50 batches fit in 5 s, less the validation passes
    # the schedule saw the total it would take at the speed so far: step / total = elapsed / budget
    for step, total, now in lrs[1:]:
        assert step / total == pytest.approx(now / 5.0, abs=0.03), (step, total, now)
    assert h["lr"][-1] < 0.02  # the cosine reached (nearly) zero when the time ran out
    with pytest.raises(ValueError, match="time_budget_s"):
        TrainConfig(time_budget_s=0)


@pytest.mark.parametrize(
    "monitor, values, patience, min_delta, stop_epoch, best_epoch",
    [
        # val_loss, patience 3, min_delta 0.02. By hand: 1 and 2 improve (best 0.80); 0.85 is worse (1 bad
        # epoch); 0.79 gains only 0.01 <= min_delta (2); 0.795 (3 = patience): stop after epoch 5, best 2.
        ("val_loss", [1.0, 0.8, 0.85, 0.79, 0.795, 0.80, 0.5], 3, 0.02, 5, 2),
        # val_acc, patience 2: 1, 2 improve; 0.6 ties (1 bad epoch); 0.65 improves (0); 0.61 (1),
        # 0.64 (2): stop after epoch 6, best 4.
        ("val_acc", [0.5, 0.6, 0.6, 0.65, 0.61, 0.64, 0.9], 2, 0.0, 6, 4),
    ],
)
def test_config_patience_is_the_first_callback_and_stops_on_a_hand_worked_curve(
    monkeypatch, tmp_path, monitor, values, patience, min_delta, stop_epoch, best_epoch
):
    import course.train

    curve = iter(values)

    def scripted_evaluate(*args, **kwargs):  # the validation figures of each epoch, in order
        v = next(curve)
        return (v, 0.0) if monitor == "val_loss" else (1.0, v)

    monkeypatch.setattr(course.train, "evaluate", scripted_evaluate)
    seen, weights = [], {}

    def record(epoch, figures, model):
        seen.append(epoch)
        weights[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        return False

    model, ckpt = _mlp(16, 8), tmp_path / "best.pt"
    cfg = TrainConfig(
        epochs=len(values),
        batch_size=50,
        patience=patience,
        min_delta=min_delta,
        monitor=monitor,
        checkpoint=ckpt,
    )
    h = fit(
        model,
        torch.randn(100, 1, 2, 4),
        torch.randint(0, 10, (100,)),
        cfg,
        device="cpu",
        progress=False,
        callbacks=[record],
    )
    assert h.stopped_early and len(h.epochs) == stop_epoch and h.best_epoch == best_epoch
    assert seen == list(range(1, stop_epoch + 1))  # the stopping epoch still reaches every callback
    assert load_checkpoint(ckpt, _mlp(16, 8))["epoch"] == best_epoch
    for k, v in model.state_dict().items():  # restore_best: the weights after the best epoch
        assert torch.equal(v, weights[best_epoch][k]), k

"""Benchmark: VGG16 on CIFAR-10, lib's reference against torchvision, with and without batch norm.

In one run, on one machine:

1. training throughput (images/s) of ``lib.vgg.VGG16(batch_norm=True)`` and torchvision's
   ``vgg16_bn(num_classes=10)`` on the same batches with the same SGD step, and their ratio
   (lib / torchvision; target >= 1.0);
2. achieved GFLOP/s of lib's model (PyTorch's FLOP counter, forward and backward) and its
   fraction of the float32 matmul peak measured in the same run (target >= 35% on a CPU with
   channels_last);
3. test accuracy of VGG16 and VGG16-BN after the same fixed wall-time budget of training each,
   on the data at hand (``$COURSE_DATA_DIR``: the offline 4,660-image subset, or the full set).
   The one-cycle schedule is driven by elapsed time, so each run ends on its budget even on a
   busy machine.

    python benchmarks/vgg_cifar.py                      # full width, 120 s per variant
    python benchmarks/vgg_cifar.py --budget-s 60 --width 0.25
    python benchmarks/vgg_cifar.py --device cuda --budget-s 300   # on a GPU (bf16 autocast)
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from torchvision.models import vgg16_bn

from course import data
from course.perf import matmul_peak_flops, synchronize, train_flops_per_image
from course.session import seed_everything
from course.train import TrainConfig, evaluate, lr_factor, random_shift_flip, split_train_val, to_float
from lib.vgg import VGG16

ONE_CYCLE = TrainConfig(schedule="onecycle", warmup_epochs=0.3)  # rising over the first 30% of the budget


def sgd(model, lr):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)


def autocast(device):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def train_step(model, opt, x, y, device):
    with autocast(device):
        loss = F.cross_entropy(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def throughput(model, batches, device, warmup=2) -> float:
    """Training images per second over ``batches`` (after ``warmup`` untimed steps)."""
    model.to(device, memory_format=torch.channels_last).train()
    opt = sgd(model, 0.01)
    for x, y in batches[:warmup]:
        train_step(model, opt, x, y, device)
    synchronize(device)
    t0 = time.perf_counter()
    for x, y in batches[warmup:]:
        train_step(model, opt, x, y, device)
    synchronize(device)
    return sum(len(x) for x, _ in batches[warmup:]) / (time.perf_counter() - t0)


def train_for(model, x, y, budget_s, batch_size, lr, device, seed=0) -> dict:
    """SGD, one-cycle schedule, for ``budget_s`` seconds of wall time (the schedule follows the clock)."""
    model.to(device, memory_format=torch.channels_last).train()
    opt = sgd(model, lr)
    gen = torch.Generator().manual_seed(seed)
    start, steps, seen = time.perf_counter(), 0, 0
    while True:
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            frac = (time.perf_counter() - start) / budget_s
            if frac >= 1:
                return dict(
                    steps=steps, images=seen, epochs=seen / len(x), train_s=time.perf_counter() - start
                )
            for (
                group
            ) in opt.param_groups:  # the elapsed fraction of the budget, read as 10,000 schedule steps
                group["lr"] = lr * lr_factor(ONE_CYCLE, int(frac * 10_000), 10_000, steps_per_epoch=10_000)
            xb = random_shift_flip(to_float(x[idx].to(device)), pad=4, flip=True).contiguous(
                memory_format=torch.channels_last
            )
            train_step(model, opt, xb, y[idx].to(device), device)
            steps, seen = steps + 1, seen + len(idx)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--budget-s", type=float, default=120.0, help="training wall time per variant for the accuracy part"
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--width", type=float, default=1.0, help="channel multiplier of lib's VGG16 in the accuracy part"
    )
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--steps", type=int, default=8, help="timed steps per model in the throughput part")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    seed_everything(0)
    train, test = data.load("cifar10", "train"), data.load("cifar10", "test")
    peak = matmul_peak_flops(device, torch.bfloat16 if device.type == "cuda" else torch.float32) / 1e9

    # 1. throughput: the same batches, the same SGD step, channels_last for both
    g = torch.Generator().manual_seed(0)
    batches = [
        (
            to_float(train.images[i].to(device)).contiguous(memory_format=torch.channels_last),
            train.labels[i].to(device),
        )
        for i in torch.randperm(len(train), generator=g)[: (args.steps + 2) * args.batch_size].split(
            args.batch_size
        )
    ]
    ours, theirs = VGG16(batch_norm=True), vgg16_bn(num_classes=10)
    lib_ips = throughput(ours, batches, device)
    tv_ips = throughput(theirs, batches, device)
    probe = batches[0][0][:16]
    flops = train_flops_per_image(ours, probe)
    tv_flops = train_flops_per_image(theirs, probe)
    gflops = lib_ips * flops / 1e9
    print(
        f"throughput, batch {args.batch_size}, {device}: lib VGG16-BN {lib_ips:.1f} images/s, "
        f"torchvision vgg16_bn {tv_ips:.1f} images/s -> ratio {lib_ips / tv_ips:.2f} (target >= 1.0)"
    )
    print(
        f"lib VGG16-BN: {flops / 1e9:.3f} GFLOP per training image (torchvision's: {tv_flops / 1e9:.3f}), "
        f"{gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f}% of the {peak:.0f} GFLOP/s matmul peak "
        "(target >= 35%)"
    )
    del ours, theirs, batches

    # 2. accuracy after the same wall-time budget, with and without batch normalization
    x_tr, y_tr, x_val, y_val = split_train_val(train.images, train.labels, 0.1)
    runs = {}
    for name, use_bn in (("VGG16", False), ("VGG16-BN", True)):
        seed_everything(0)
        model = VGG16(batch_norm=use_bn, width=args.width, dropout=0.0)
        stats = train_for(model, x_tr, y_tr, args.budget_s, args.batch_size, args.lr, device)
        _, val_acc = evaluate(model, x_val, y_val, device=device)
        _, test_acc = evaluate(model, test.images, test.labels, device=device)
        runs[name] = dict(stats, val_accuracy=val_acc, test_accuracy=test_acc)
        print(
            f"{name:9s} width {args.width:g}: {stats['epochs']:.2f} epochs ({stats['steps']} steps) in "
            f"{stats['train_s']:.0f} s -> validation {val_acc:.4f}, test {test_acc:.4f}"
        )

    figures = dict(
        device=str(device),
        threads=torch.get_num_threads(),
        batch_size=args.batch_size,
        lib_images_per_s=lib_ips,
        torchvision_images_per_s=tv_ips,
        ratio=lib_ips / tv_ips,
        gflop_per_train_image=flops / 1e9,
        torchvision_gflop_per_train_image=tv_flops / 1e9,
        achieved_gflops=gflops,
        matmul_peak_gflops=peak,
        fraction_of_peak=gflops / peak,
        train_images=len(x_tr),
        test_images=len(test),
        budget_s=args.budget_s,
        width=args.width,
        runs=runs,
        wall_s=time.perf_counter() - start,
    )
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()

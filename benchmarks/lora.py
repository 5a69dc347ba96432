"""Benchmark: LoRA r=8 against full fine-tuning of the offline pretrained ViT (notebook 07's base model).

The base model is ``course.pretrained.load_small_vit()``: torchvision's ``VisionTransformer`` (4 layers,
96 dimensions) pretrained on CIFAR-10 classes 0-4; the target task is classes 5-9. In one run, for full
fine-tuning and for LoRA r=8 on the packed q and v projections (``lib.lora.add_lora_packed``), it prints

* the trainable-parameter fraction;
* the training step: median time (forward, backward, AdamW step) and memory, split into weights,
  gradients, optimizer state and the activations autograd saves for the backward pass (on a GPU,
  also ``torch.cuda.max_memory_allocated``);
* target-task test accuracy after the same wall-time budget (``TrainConfig.time_budget_s``);
* inference time of the merged LoRA model (``lib.lora.merge_lora``) against the base model, and of
  the unmerged one: merging folds (alpha/r) B A into W_0, so the ratio should be 1.0.

    python benchmarks/lora.py                      # data from $COURSE_DATA_DIR, 60 s of training per method
    python benchmarks/lora.py --budget-s 20 --json results/lora.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from course import data
from course.perf import synchronize
from course.pretrained import TARGET_CLASSES, classes_subset, load_small_vit
from course.session import pick_device, seed_everything
from course.train import TrainConfig, evaluate, fit, random_shift_flip, to_float
from lib.lora import add_lora_packed, freeze_except_lora, merge_lora

METHODS = ("full fine-tuning", "LoRA r=8")
LR = {"full fine-tuning": 5e-4, "LoRA r=8": 3e-3}  # as in notebook 07


def prepare(method: str) -> nn.Module:
    torch.manual_seed(0)
    model = load_small_vit(verbose=False)
    model.heads.head = nn.Linear(model.hidden_dim, len(TARGET_CLASSES))  # a new head for the new classes
    if method.startswith("LoRA"):
        add_lora_packed(model, r=8, alpha=16)  # q and v blocks of every in_proj_weight
        freeze_except_lora(model, trainable=("heads",))
    return model


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def step_figures(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, repeats: int) -> dict:
    """Median time of a training step and its memory: weights, gradients, AdamW state, saved activations."""
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    saved = []

    def pack(t):  # every tensor autograd keeps for the backward pass, counted once per step
        saved.append(t.numel() * t.element_size())
        return t

    def step(record: bool = False):
        if record:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = F.cross_entropy(model(x), y)
        else:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up; creates the optimizer state
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    step(record=True)
    mb = 1e6
    figures = dict(
        step_ms=1e3 * statistics.median(times),
        weights_mb=tensor_bytes(model.parameters()) / mb,
        gradients_mb=tensor_bytes(p.grad for p in params) / mb,
        optimizer_mb=tensor_bytes(t for s in opt.state.values() for t in s.values()) / mb,
        activations_mb=sum(saved) / mb,
    )
    figures["step_memory_mb"] = sum(
        figures[k] for k in ("weights_mb", "gradients_mb", "optimizer_mb", "activations_mb")
    )
    if device.type == "cuda":
        figures["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / mb
    opt.zero_grad(set_to_none=True)
    return figures


@torch.no_grad()
def inference_ms(models: dict, x: torch.Tensor, device, repeats: int) -> dict:
    """Median forward time of each model on x, measured interleaved so that machine noise hits all alike."""
    times = {name: [] for name in models}
    for m in models.values():
        m.to(device).eval()
        m(x)
    for _ in range(repeats):
        for name, m in models.items():
            synchronize(device)
            t0 = time.perf_counter()
            m(x)
            synchronize(device)
            times[name].append(time.perf_counter() - t0)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-s", type=float, default=60.0, help="training wall time per method")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=20, help="timed repeats of a step and of inference")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    device = pick_device()
    seed_everything(0)
    train, test = data.load("cifar10", "train"), data.load("cifar10", "test")
    x, y = classes_subset(train.images, train.labels, TARGET_CLASSES)
    x_test, y_test = classes_subset(test.images, test.labels, TARGET_CLASSES)
    print(
        f"{device}; target task: {len(x):,} training and {len(x_test):,} test images of "
        f"{', '.join(train.classes[c] for c in TARGET_CLASSES)} ({train.source})",
        flush=True,
    )

    batch = to_float(x[: args.batch_size]).to(device), y[: args.batch_size].to(device)
    figures = dict(
        device=str(device),
        threads=torch.get_num_threads(),
        budget_s=args.budget_s,
        batch_size=args.batch_size,
        methods={},
    )
    trained = {}
    for method in METHODS:
        model = prepare(method)
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        n_all = sum(p.numel() for p in model.parameters())
        row = dict(trainable=n_train, parameters=n_all, trainable_fraction=n_train / n_all)
        row.update(step_figures(model, *batch, device, args.repeats))
        model = prepare(method)  # a fresh copy for the accuracy run
        config = TrainConfig(
            epochs=1000,
            time_budget_s=args.budget_s,
            batch_size=args.batch_size,
            lr=LR[method],
            weight_decay=0.01,
            warmup_epochs=1,
        )
        history = fit(
            model,
            x,
            y,
            config,
            device=device,
            label=method,
            augment=lambda b: random_shift_flip(b, pad=4, flip=True),
        )
        row["test_accuracy"] = evaluate(model, x_test, y_test)[1]
        row["epochs"] = round(sum(e["images"] for e in history.epochs) / (0.9 * len(x)), 2)
        figures["methods"][method] = row
        trained[method] = model
        print(
            f"{method}: {row['test_accuracy']:.4f} test accuracy after {row['epochs']} epochs; "
            f"{100 * row['trainable_fraction']:.2f}% trainable; step {row['step_ms']:.1f} ms, "
            f"{row['step_memory_mb']:.1f} MB",
            flush=True,
        )

    x_inf = to_float(x_test[:256]).to(device)
    base = prepare("full fine-tuning").to(device)  # plain weights: the cost that merging must match
    unmerged = prepare("LoRA r=8").to(device)
    unmerged.load_state_dict(trained["LoRA r=8"].state_dict())
    merged = merge_lora(trained["LoRA r=8"])  # W_0 + (alpha/r) B A, in place: plain in_proj weights again
    with torch.no_grad():
        max_diff = (merged.to(device).eval()(x_inf) - unmerged.eval()(x_inf)).abs().max().item()
    ms = inference_ms(dict(base=base, unmerged=unmerged, merged=merged), x_inf, device, args.repeats)
    figures["inference"] = dict(
        batch=len(x_inf),
        base_ms=ms["base"],
        lora_unmerged_ms=ms["unmerged"],
        lora_merged_ms=ms["merged"],
        merged_over_base=ms["merged"] / ms["base"],
        unmerged_over_base=ms["unmerged"] / ms["base"],
        merged_vs_unmerged_max_diff=max_diff,
    )
    print(json.dumps(figures, indent=2))
    full, lo = figures["methods"]["full fine-tuning"], figures["methods"]["LoRA r=8"]
    inf = figures["inference"]
    print(
        f"LoRA r=8 trains {100 * lo['trainable_fraction']:.2f}% of the parameters; step time "
        f"{lo['step_ms'] / full['step_ms']:.2f}x, "
        f"step memory {lo['step_memory_mb'] / full['step_memory_mb']:.2f}x "
        f"(optimizer state {lo['optimizer_mb'] / full['optimizer_mb']:.3f}x) of full fine-tuning; "
        f"accuracy after {args.budget_s:.0f} s: LoRA {100 * lo['test_accuracy']:.1f}% "
        f"vs full {100 * full['test_accuracy']:.1f}%; "
        f"merged inference / base = {inf['merged_over_base']:.2f} (unmerged {inf['unmerged_over_base']:.2f})"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()

"""Pretrained Vision Transformers for the fine-tuning notebook (07): a small offline one, and ViT-B/16.

Both are torchvision ``VisionTransformer``s, so nothing depends on a student's notebook 05, and both
keep q, k and v packed in ``nn.MultiheadAttention.in_proj_weight``, as real pretrained ViTs do.

* ``load_small_vit()``: a 4-layer ViT for 32 x 32 images, pretrained on the *source task*, CIFAR-10
  classes 0-4 (airplane, automobile, bird, cat, deer), and shipped with this package (about 1 MB),
  so fine-tuning works offline, in CI and under grading. The *target task* is classes 5-9 (dog,
  frog, horse, ship, truck). The weights were made by

      python -m course.pretrained --out course/weights/vit_small_cifar5.pt

  on whatever CIFAR-10 ``course.data`` finds (the shipped file: the offline 4,660-image subset;
  with internet or a full mirror, the 50,000-image set gives better features). The file records
  how it was made (data, epochs, accuracy), and ``load_small_vit`` prints it.
* ``load_vit_b_16(pretrained=True)``: torchvision's ViT-B/16 with ImageNet-1k weights through the
  weights API (downloads about 330 MB once; needs internet). ``pretrained=False`` builds the same
  architecture with random weights, which is what the offline tests use.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn as nn
from torchvision.models import VisionTransformer

WEIGHTS = Path(__file__).parent / "weights" / "vit_small_cifar5.pt"
SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
SMALL = dict(image_size=32, patch_size=4, num_layers=4, num_heads=4, hidden_dim=96, mlp_dim=192)


def small_vit(num_classes: int = len(SOURCE_CLASSES)) -> VisionTransformer:
    """The small ViT's architecture (65 tokens of 96 dimensions, 4 layers, 4 heads), randomly initialised."""
    return VisionTransformer(**SMALL, num_classes=num_classes)


def load_small_vit(path: str | Path = WEIGHTS, verbose: bool = True) -> VisionTransformer:
    """The small ViT with its source-task weights (its head has 5 outputs, one per source class)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no pretrained weights at {path}; make them with `python -m course.pretrained --out {path}`"
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = small_vit(len(ckpt["meta"]["classes"]))
    model.load_state_dict(ckpt["model"])
    if verbose:
        m = ckpt["meta"]
        print(
            f"small ViT pretrained on CIFAR-10 classes {m['classes']} "
            f"({m['train_images']:,} images from {m['source']}, {m['epochs']} epochs): "
            f"source-task test accuracy {m['test_accuracy']:.3f}"
        )
    return model.eval()


def load_vit_b_16(pretrained: bool = True, num_classes: int | None = None) -> VisionTransformer:
    """torchvision's ViT-B/16, with ImageNet-1k weights (IMAGENET1K_V1) when ``pretrained``.

    With ``num_classes``, a new head of that many outputs.
    """
    from torchvision.models import ViT_B_16_Weights, vit_b_16

    model = vit_b_16(weights=ViT_B_16_Weights.IMAGENET1K_V1 if pretrained else None)
    if num_classes is not None:
        model.heads.head = nn.Linear(model.heads.head.in_features, num_classes)
    return model


def classes_subset(images: torch.Tensor, labels: torch.Tensor, classes) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of ``classes`` only, relabelled 0..len(classes)-1 in the order given."""
    classes = torch.as_tensor(classes)
    keep = (labels[:, None] == classes[None, :]).any(1)
    relabel = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    relabel[classes] = torch.arange(len(classes))
    return images[keep], relabel[labels[keep]]


def pretrain(out: Path, epochs: int = 60, seed: int = 0) -> dict:
    """Train the small ViT on the source task and save weights and how they were made."""
    from . import data
    from .session import seed_everything
    from .train import TrainConfig, evaluate, fit, random_shift_flip

    seed_everything(seed)
    train, test = data.load("cifar10", "train"), data.load("cifar10", "test")
    x, y = classes_subset(train.images, train.labels, SOURCE_CLASSES)
    x_test, y_test = classes_subset(test.images, test.labels, SOURCE_CLASSES)
    model = small_vit()
    config = TrainConfig(
        epochs=epochs,
        batch_size=64,
        lr=1e-3,
        weight_decay=0.05,
        warmup_epochs=3,
        label_smoothing=0.1,
        val_fraction=0.1,
        seed=seed,
    )
    history = fit(
        model, x, y, config, augment=lambda b: random_shift_flip(b, pad=4, flip=True), label="pretrain"
    )
    _, acc = evaluate(model, x_test, y_test)
    meta = dict(
        classes=[train.classes[c] for c in SOURCE_CLASSES],
        source=train.source,
        train_images=len(x),
        epochs=len(history.epochs),
        test_accuracy=acc,
        config=SMALL,
        seed=seed,
        torch=str(torch.__version__),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.to(torch.float32).clone() for k, v in model.cpu().state_dict().items()}
    torch.save({"model": state, "meta": meta}, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB): source-task test accuracy {acc:.3f}")
    return meta


def main(argv=None):
    p = argparse.ArgumentParser(description="Pretrain the small ViT of notebook 07 on CIFAR-10 classes 0-4.")
    p.add_argument("--out", type=Path, default=WEIGHTS)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    pretrain(args.out, args.epochs, args.seed)


if __name__ == "__main__":
    main()

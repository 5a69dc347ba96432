"""Make the small real data samples bundled in ``course/data_samples`` from a full data mirror."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from course import data

# images per class: small enough to commit, enough for a smoke run to learn something
PER_CLASS = {
    ("mnist", "train"): 200,
    ("mnist", "test"): 50,
    ("cifar10", "train"): 100,
    ("cifar10", "test"): 30,
}


def make_samples(mirror: Path, dest: Path = data.SAMPLES_DIR) -> list[Path]:
    written = []
    for (name, split), per_class in PER_CLASS.items():
        full = data.load(name, split, root=mirror, download=False, require_full=True)
        images, labels = data.make_sample(full.images, full.labels, per_class, seed=0)
        path = dest / f"{name}-{split}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, images=images.permute(0, 2, 3, 1).numpy(), labels=labels.numpy())
        print(f"{path}: {len(labels)} images, {per_class} per class, from {full.path}")
        written.append(path)
    return written

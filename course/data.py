"""MNIST and CIFAR-10 as uint8 tensors in memory.

``load(name, split)`` tries these sources in order and says which one it used:

1. ``mirror``: ``<data dir>/<name>/<split>.npz`` (``images`` uint8 (N, H, W, C), ``labels`` int64),
   the layout of the course's offline data mirror;
2. ``cache``: ``<data dir>/cache/<name>-<split>.npz``, written after a torchvision load;
3. ``torchvision``: the files torchvision keeps in ``<data dir>`` (``MNIST/raw/``,
   ``cifar-10-batches-py/``), read without downloading;
4. ``download``: torchvision downloads them into ``<data dir>`` (skipped when
   ``COURSE_OFFLINE=1``);
5. ``sample``: a small real sample bundled with this package, so that a smoke run works
   anywhere. A full run (``require_full=True``) refuses it and names the files it needs.

The data dir is ``$COURSE_DATA_DIR``, else ``$XDG_CACHE_HOME/dl-course/data``
(``~/.cache/dl-course/data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import settings
from .settings import ENV_DATA_DIR, ENV_OFFLINE, offline

SAMPLES_DIR = Path(__file__).parent / "data_samples"
SPLITS = ("train", "test")
SOURCES = ("mirror", "cache", "torchvision", "download", "sample")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # (C, H, W)
    full_size: dict[str, int]
    torchvision_files: tuple[str, ...]  # relative to the data dir, as torchvision lays them out


DATASETS = {
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST",
        classes=tuple(str(i) for i in range(10)),
        shape=(1, 28, 28),
        full_size={"train": 60_000, "test": 10_000},
        torchvision_files=tuple(
            f"MNIST/raw/{f}"
            for f in (
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte",
            )
        ),
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        title="CIFAR-10",
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        shape=(3, 32, 32),
        full_size={"train": 50_000, "test": 10_000},
        torchvision_files=tuple(
            f"cifar-10-batches-py/{f}"
            for f in (
                "data_batch_1",
                "data_batch_2",
                "data_batch_3",
                "data_batch_4",
                "data_batch_5",
                "test_batch",
                "batches.meta",
            )
        ),
    ),
}


class DataUnavailableError(RuntimeError):
    """The requested data cannot be found or fetched; the message says where to put it."""


@dataclass
class ImageData:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    info: DatasetInfo
    split: str
    source: str  # one of SOURCES
    path: Path

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.info.classes

    @property
    def is_sample(self) -> bool:
        return self.source == "sample"

    def describe(self) -> str:
        note = (
            f" (of {self.info.full_size[self.split]:,} in the full set)"
            if len(self) < self.info.full_size[self.split]
            else ""
        )
        return f"{self.info.title} {self.split}: {len(self):,} images{note} from {self.source}: {self.path}"


def data_dir() -> Path:
    """Where datasets are looked for and downloaded to."""
    return settings.data_dir()


def _info(name: str) -> DatasetInfo:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[key]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")


def read_npz(path: Path, info: DatasetInfo) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) uint8 and labels (N,) int64 from an npz in the mirror layout."""
    try:
        with np.load(path) as f:
            images, labels = f["images"], f["labels"]
    except (OSError, ValueError, KeyError) as e:
        raise DataUnavailableError(
            f"{path} is not a readable dataset file ({type(e).__name__}: {e}). It must be an .npz "
            "with 'images' uint8 (N, H, W, C) and 'labels' int64 (N,); replace or delete it."
        ) from e
    c, h, w = info.shape
    if images.dtype != np.uint8 or images.shape[1:] != (h, w, c) or labels.shape != images.shape[:1]:
        raise DataUnavailableError(
            f"{path} holds images {images.dtype} {images.shape} and labels {labels.shape}; "
            f"{info.title} needs uint8 (N, {h}, {w}, {c}) and (N,). Replace or delete the file."
        )
    # (N, H, W, C) -> (N, C, H, W), the layout of torch's conv layers
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(
        labels.astype(np.int64)
    )


def write_npz(path: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Save (N, C, H, W) uint8 images in the mirror layout (N, H, W, C)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, images=images.permute(0, 2, 3, 1).numpy(), labels=labels.numpy())
    tmp.replace(path)


def _torchvision(info: DatasetInfo, split: str, root: Path, download: bool):
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[info.name]
    ds = cls(root=str(root), train=(split == "train"), download=download)
    images = torch.as_tensor(np.asarray(ds.data), dtype=torch.uint8)
    if images.dim() == 3:  # MNIST: (N, H, W) -> (N, 1, H, W)
        images = images.unsqueeze(1)
    else:  # CIFAR-10: (N, H, W, C) -> (N, C, H, W)
        images = images.permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)


def _has_torchvision_files(info: DatasetInfo, root: Path) -> bool:
    return all((root / f).is_file() for f in info.torchvision_files)


def _missing_message(info: DatasetInfo, root: Path, tried: list[str]) -> str:
    files = "\n".join(f"  {root / f}" for f in info.torchvision_files)
    return (
        f"The full {info.title} is needed but could not be found or downloaded.\n"
        f"Tried: {'; '.join(tried)}.\n"
        f"Fix one of these:\n"
        f"- connect to the internet and run again: torchvision downloads it into {root};\n"
        f"- put torchvision's files there:\n{files}\n"
        f"- or put {root / info.name / 'train.npz'} and {root / info.name / 'test.npz'} there "
        f"(the course's mirror layout);\n"
        f"- or set {ENV_DATA_DIR} to a directory that already has them.\n"
        f"For a quick run on the small bundled sample instead, use the smoke profile (COURSE_PROFILE=smoke)."
    )


def load(
    name: str,
    split: str = "train",
    *,
    require_full: bool = False,
    download: bool | None = None,
    root: str | Path | None = None,
    verbose: bool = True,
) -> ImageData:
    """Load a dataset split as uint8 tensors, from the first source that has it (see module doc).

    require_full: refuse the bundled sample and raise :class:`DataUnavailableError` instead.
    download: allow torchvision to download; default True unless ``COURSE_OFFLINE=1``.
    """
    info = _info(name)
    _check_split(split)
    root = Path(root).expanduser() if root is not None else data_dir()
    if download is None:
        download = not offline()
    tried: list[str] = []

    def done(images, labels, source, path):
        data = ImageData(images, labels, info, split, source, Path(path))
        if verbose:
            print(data.describe())
        return data

    mirror = root / info.name / f"{split}.npz"
    if mirror.is_file():
        return done(*read_npz(mirror, info), "mirror", mirror)
    tried.append(f"no mirror file {mirror}")

    cache = root / "cache" / f"{info.name}-{split}.npz"
    if cache.is_file():
        try:
            return done(*read_npz(cache, info), "cache", cache)
        except DataUnavailableError:
            tried.append(f"cache {cache} unreadable, rebuilt")
    else:
        tried.append(f"no cache {cache}")

    loaded = None
    if _has_torchvision_files(info, root):
        try:
            loaded = _torchvision(info, split, root, download=False), "torchvision"
        except RuntimeError as e:  # torchvision's integrity check failed
            raise DataUnavailableError(
                f"torchvision could not read the {info.title} files in {root} ({e}). They are "
                f"incomplete or corrupt: delete them so they are downloaded again, or replace them."
            ) from e
    else:
        tried.append(f"no torchvision files in {root}")
        if download:
            try:
                loaded = _torchvision(info, split, root, download=True), "download"
            except Exception as e:  # no network, server error, disk full...: fall back below
                tried.append(f"download failed ({type(e).__name__}: {e})")
        else:
            tried.append(f"download disabled ({ENV_OFFLINE}=1 or download=False)")
    if loaded is not None:
        (images, labels), source = loaded
        try:
            write_npz(cache, images, labels)
        except OSError as e:  # a read-only data dir still works, only slower next time
            if verbose:
                print(f"(not cached: cannot write {cache}: {e.strerror or e})")
        return done(images, labels, source, root)

    if require_full:
        raise DataUnavailableError(_missing_message(info, root, tried))
    sample = SAMPLES_DIR / f"{info.name}-{split}.npz"
    if not sample.is_file():
        raise DataUnavailableError(_missing_message(info, root, tried + [f"no bundled sample {sample}"]))
    return done(*read_npz(sample, info), "sample", sample)


def make_sample(images: torch.Tensor, labels: torch.Tensor, per_class: int, seed: int = 0):
    """A class-balanced random subset: ``per_class`` images of every label, in a shuffled order."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().squeeze(1)
        if len(idx) < per_class:
            raise ValueError(f"class {c} has only {len(idx)} images, fewer than per_class={per_class}")
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    order = torch.cat(picks)[torch.randperm(per_class * len(picks), generator=g)]
    return images[order], labels[order]

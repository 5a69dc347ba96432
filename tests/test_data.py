"""course.data: every source in its order, on real data."""

import pickle
import shutil

import numpy as np
import pytest
import torch
import torchvision

from course import data


def _idx_count(path) -> int:
    """The number of items an MNIST idx file declares: a big-endian int32 after the magic number."""
    with open(path, "rb") as f:
        return int.from_bytes(f.read(8)[4:], "big")


def test_mirror_npz(mirror):
    # sizes from the mirror's own files (the full MNIST and a CIFAR-10 subset here; another mirror may differ)
    n_mnist = _idx_count(mirror / "MNIST" / "raw" / "t10k-labels-idx1-ubyte")
    n_cifar = len(np.load(mirror / "cifar10" / "test.npz")["labels"])
    d = data.load("mnist", "test", root=mirror)
    assert d.source == "mirror" and len(d) == n_mnist
    assert d.images.dtype == torch.uint8 and d.images.shape == (n_mnist, 1, 28, 28)
    assert d.labels.dtype == torch.int64 and set(d.labels.unique().tolist()) == set(range(10))
    c = data.load("cifar10", "test", root=mirror)
    assert c.source == "mirror" and c.images.shape == (n_cifar, 3, 32, 32)
    # the README of the mirror: the first test labels are cat, ship, ship, airplane, frog, ...
    assert [c.classes[i] for i in c.labels[:5]] == ["cat", "ship", "ship", "airplane", "frog"]


def test_torchvision_mnist_loader_then_cache(mirror, tmp_path, capsys):
    (tmp_path / "MNIST").symlink_to(mirror / "MNIST")  # torchvision's raw layout, nothing else
    d = data.load("mnist", "train", root=tmp_path, download=False)
    assert d.source == "torchvision" and d.images.shape == (
        _idx_count(mirror / "MNIST" / "raw" / "train-labels-idx1-ubyte"),
        1,
        28,
        28,
    )
    ref = data.load("mnist", "train", root=mirror, verbose=False)
    assert torch.equal(d.images[:500], ref.images[:500]) and torch.equal(d.labels, ref.labels)
    assert (tmp_path / "cache" / "mnist-train.npz").is_file()
    again = data.load("mnist", "train", root=tmp_path, download=False)
    assert again.source == "cache" and torch.equal(again.labels, d.labels)
    assert "from cache" in capsys.readouterr().out  # it says which source it used


def test_torchvision_cifar_layout(mirror, tmp_path, monkeypatch):
    # Build torchvision's cifar-10-batches-py from the real subset (the official archive is not here).
    f = np.load(mirror / "cifar10" / "test.npz")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    flat = f["images"].transpose(0, 3, 1, 2).reshape(len(f["images"]), -1)  # CIFAR's row layout
    for name in (
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ):
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": flat, "labels": f["labels"].tolist()}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": list(data.DATASETS["cifar10"].classes)}, fh)
    # torchvision checks the official archive's md5 sums, which a subset cannot match
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    d = data.load("cifar10", "test", root=tmp_path, download=False)
    assert d.source == "torchvision"
    assert torch.equal(d.images, torch.from_numpy(f["images"]).permute(0, 3, 1, 2))


def test_download_path_uses_torchvision_download(mirror, tmp_path, monkeypatch):
    def fake_download(self):  # what torchvision's download leaves on disk, without a network
        raw = tmp_path / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for p in (mirror / "MNIST" / "raw").iterdir():
            shutil.copy(p, raw / p.name)

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    d = data.load("mnist", "test", root=tmp_path, download=True)
    assert d.source == "download" and len(d) == _idx_count(
        mirror / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    )


def test_offline_falls_back_to_bundled_sample(tmp_path, monkeypatch):
    def no_network(self):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    d = data.load("mnist", "train", root=tmp_path, download=True)
    assert d.source == "sample" and d.is_sample
    assert d.images.shape == (2000, 1, 28, 28)
    assert torch.bincount(d.labels).tolist() == [200] * 10  # class-balanced
    c = data.load("cifar10", "test", root=tmp_path, download=False)
    assert c.source == "sample" and c.images.shape == (300, 3, 32, 32)


def test_full_run_without_data_names_the_files(tmp_path):
    with pytest.raises(data.DataUnavailableError) as e:
        data.load("cifar10", "train", root=tmp_path, download=False, require_full=True)
    msg = str(e.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in msg
    assert str(tmp_path / "cifar10" / "train.npz") in msg
    assert "COURSE_DATA_DIR" in msg and "download disabled" in msg


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv("COURSE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_dir() == tmp_path / "xdg" / "dl-course" / "data"


def test_corrupt_mirror_file_is_named(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "test.npz").write_bytes(b"not an npz")
    with pytest.raises(data.DataUnavailableError, match="test.npz is not a readable dataset file"):
        data.load("mnist", "test", root=tmp_path)
    assert (tmp_path / "mnist" / "test.npz").read_bytes() == b"not an npz"  # nothing deleted


def test_wrong_shape_mirror_file_is_named(tmp_path):
    (tmp_path / "mnist").mkdir()
    np.savez(
        tmp_path / "mnist" / "test.npz",
        images=np.zeros((3, 32, 32, 3), np.uint8),
        labels=np.zeros(3, np.int64),
    )
    with pytest.raises(data.DataUnavailableError, match=r"needs uint8 \(N, 28, 28, 1\)"):
        data.load("mnist", "test", root=tmp_path)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.load("imagenet")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        data.load("mnist", "val")


def test_make_sample_is_balanced_and_reproducible():
    labels = torch.arange(10).repeat_interleave(30)
    images = torch.arange(300, dtype=torch.uint8).view(300, 1, 1, 1)
    a = data.make_sample(images, labels, per_class=7, seed=1)
    b = data.make_sample(images, labels, per_class=7, seed=1)
    assert torch.equal(a[0], b[0]) and torch.bincount(a[1]).tolist() == [7] * 10
    with pytest.raises(ValueError, match="fewer than per_class"):
        data.make_sample(images, labels, per_class=31)

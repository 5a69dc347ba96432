"""course.pretrained: the shipped small ViT, the class split, and ViT-B/16 built offline."""

import torch
import torch.nn as nn
from torchvision.models import VisionTransformer

from course import data
from course.pretrained import (
    SOURCE_CLASSES,
    TARGET_CLASSES,
    classes_subset,
    load_small_vit,
    load_vit_b_16,
    small_vit,
)
from course.train import evaluate


def test_shipped_weights_load_into_torchvisions_vit(capsys):
    model = load_small_vit()
    assert isinstance(model, VisionTransformer) and model.heads.head.out_features == len(SOURCE_CLASSES)
    assert (
        "pretrained on CIFAR-10 classes ['airplane', 'automobile', 'bird', 'cat', 'deer']"
        in capsys.readouterr().out
    )
    fresh = small_vit()
    assert not torch.equal(fresh.conv_proj.weight, model.conv_proj.weight)  # really trained weights
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    # trained means better than chance (1 in 5) on real CIFAR-10 test images of the five source classes
    test = data.load("cifar10", "test", verbose=False)
    x, y = classes_subset(test.images, test.labels, SOURCE_CLASSES)
    _, acc = evaluate(model, x, y)
    assert len(y) >= 100 and acc > 0.45, f"{acc:.3f} on {len(y)} images"


def test_classes_subset_relabels_in_order():
    labels = torch.tensor([5, 0, 9, 6, 5, 3])
    images = torch.arange(6)[:, None]
    x, y = classes_subset(images, labels, TARGET_CLASSES)
    assert x.flatten().tolist() == [0, 2, 3, 4] and y.tolist() == [0, 4, 1, 0]


def test_vit_b_16_builds_offline_with_a_new_head():
    model = load_vit_b_16(
        pretrained=False, num_classes=10
    )  # the same code path as the pretrained one, no download
    assert isinstance(model.heads.head, nn.Linear) and model.heads.head.out_features == 10
    assert model.encoder.layers[0].self_attention.in_proj_weight.shape == (3 * 768, 768)


def test_lora_r8_on_vit_b_16_trains_under_one_percent():
    from lib.lora import add_lora_packed, freeze_except_lora

    model = load_vit_b_16(pretrained=False, num_classes=10)
    n_base = sum(p.numel() for p in model.parameters())
    add_lora_packed(model, r=8, alpha=16)
    trainable, n_all = freeze_except_lora(model, trainable=("heads",))
    # by hand: per layer, q and v each get A (8 x 768) and B (768 x 8); 12 layers; plus the 768 -> 10 head
    lora = 12 * 2 * (8 * 768 + 768 * 8)
    assert n_all == n_base + lora and trainable == lora + 768 * 10 + 10
    assert trainable / n_all < 0.01  # the target; PEFT's ViT LoRA example trains 0.77%

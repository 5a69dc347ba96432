"""VGG16 as data, for 32 x 32 images (CIFAR-10).

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015, Table 1, configuration D: thirteen 3 x 3 convolutions (stride 1, padding 1, so they
keep the size) in five blocks, each block closed by a 2 x 2 max-pooling that halves it. The
architecture is a list, as in torchvision's ``vgg.py``: a number is a convolution with that many
output channels, "M" a pooling. ``make_layers`` lays the list out exactly like torchvision's
``features`` (Conv2d, [BatchNorm2d,] ReLU per number), so a torchvision state_dict loads into it.

Batch normalization (Ioffe & Szegedy, 2015) goes between each convolution and its ReLU, as in
torchvision's ``vgg16_bn``. For 32 x 32 inputs the five poolings leave 512 x 1 x 1, so the
classifier is small (512 -> 512 -> classes) instead of ImageNet's 25,088 -> 4,096 -> 4,096 -> 1,000.
"""

from __future__ import annotations

import torch.nn as nn

CFG_D: list[int | str] = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
]


def scaled(cfg: list[int | str], width: float) -> list[int | str]:
    """The same architecture with every channel count multiplied by ``width`` (at least 1)."""
    return [v if v == "M" else max(1, round(v * width)) for v in cfg]


def make_layers(cfg: list[int | str], batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """Conv2d(3x3, padding 1) [+ BatchNorm2d] + ReLU per number, MaxPool2d(2) per "M"."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


class VGG16(nn.Module):
    """VGG16 (configuration D) for 32 x 32 images, optionally width-reduced for CPU runs."""

    def __init__(
        self, batch_norm: bool = False, n_classes: int = 10, width: float = 1.0, dropout: float = 0.5
    ):
        super().__init__()
        cfg = scaled(CFG_D, width)
        c = cfg[-2]  # channels of the last convolution
        self.features = make_layers(cfg, batch_norm)  # (B, 3, 32, 32) -> (B, c, 1, 1)
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, c, 1, 1) -> (B, c)
            nn.Linear(c, c),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(c, n_classes),
        )
        for m in self.modules():  # torchvision's initialisation for VGG
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.features(x))

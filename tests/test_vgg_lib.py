"""lib.vgg against torchvision: layer layout, parameter counts, activations with copied weights."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import vgg as tv

from lib.vgg import CFG_D, VGG16, make_layers, scaled


def _count(m):
    return sum(p.numel() for p in m.parameters())


def test_configuration_d_is_torchvisions():
    assert CFG_D == tv.cfgs["D"]
    assert sum(v != "M" for v in CFG_D) == 13 and CFG_D.count("M") == 5


@pytest.mark.parametrize("batch_norm,expected", [(False, 14_714_688), (True, 14_723_136)])
def test_parameter_counts_equal_torchvisions_features(batch_norm, expected):
    features = make_layers(CFG_D, batch_norm)
    assert _count(features) == expected == _count(tv.make_layers(tv.cfgs["D"], batch_norm))
    layout = [type(m) for m in features]
    assert layout == [type(m) for m in tv.make_layers(tv.cfgs["D"], batch_norm)]
    if batch_norm:  # normalisation between each convolution and its ReLU
        assert layout[:3] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]


@pytest.mark.parametrize("batch_norm", [False, True])
def test_torchvision_weights_give_the_same_activations(batch_norm):
    torch.manual_seed(0)
    ref = tv.make_layers(tv.cfgs["D"], batch_norm).eval()
    if batch_norm:
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    mine = make_layers(CFG_D, batch_norm).eval()
    mine.load_state_dict(ref.state_dict())  # the same keys and shapes
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), ref(x))
        assert mine(x).shape == (2, 512, 1, 1)  # five poolings: 32 -> 1


def test_vgg16_for_cifar():
    torch.manual_seed(0)
    model = VGG16(batch_norm=True, n_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    ref = tv.make_layers(tv.cfgs["D"], batch_norm=True).eval()
    ref.load_state_dict(model.features.state_dict())
    fc1, fc2 = model.classifier[1], model.classifier[4]
    for fc in (
        fc1,
        fc2,
    ):  # weights large enough that a missing ReLU or a swapped layer shows at float precision
        nn.init.normal_(fc.weight, 0, 0.1)
        nn.init.normal_(fc.bias, 0, 0.1)
    with torch.no_grad():  # torchvision's features, then the CIFAR head written out: 512 -> 512 -> 10
        expected = F.linear(F.relu(F.linear(ref(x).flatten(1), fc1.weight, fc1.bias)), fc2.weight, fc2.bias)
        torch.testing.assert_close(model(x), expected)
    assert expected.shape == (2, 10) and expected.abs().max() > 0.1
    assert _count(model) == 14_723_136 + (512 * 512 + 512) + (512 * 10 + 10)
    small = VGG16(batch_norm=False, width=1 / 8)
    assert scaled(CFG_D, 1 / 8)[:3] == [8, 8, "M"] and small(torch.randn(1, 3, 32, 32)).shape == (1, 10)

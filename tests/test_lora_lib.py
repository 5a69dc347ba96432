"""lib.lora against loralib (copied weights), torchvision's ViT, and the paper's properties."""

import loralib
import pytest
import torch
import torch.nn as nn
from torchvision.models import VisionTransformer

from lib.lora import (
    LoRALinear,
    LoRAPacked,
    add_lora,
    add_lora_packed,
    freeze_except_lora,
    load_lora_state_dict,
    lora_state_dict,
    merge_lora,
)
from lib.mha import MultiHeadAttention


def _random_lora(layer, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.B.copy_(torch.randn(layer.B.shape, generator=g))  # B is zero at first: make the update visible
    return layer


def test_lora_linear_equals_loralib_linear():
    torch.manual_seed(0)
    base = nn.Linear(12, 7)
    mine = _random_lora(LoRALinear(base, r=4, alpha=8))
    ref = loralib.Linear(12, 7, r=4, lora_alpha=8)
    ref.load_state_dict({"weight": base.weight, "bias": base.bias, "lora_A": mine.A, "lora_B": mine.B})
    x = torch.randn(5, 3, 12)
    ref.train()  # loralib merges on eval(); compare the unmerged path first
    torch.testing.assert_close(mine(x), ref(x))
    ref.eval()  # loralib's merged weights
    mine.merge()
    torch.testing.assert_close(mine.base.weight, ref.weight)
    torch.testing.assert_close(mine(x), ref(x))


def test_starts_equal_to_the_base_and_only_a_b_train():
    torch.manual_seed(1)
    base = nn.Linear(6, 4)
    x = torch.randn(3, 6)
    expected = base(x)
    layer = LoRALinear(base, r=2, alpha=4, dropout=0.5)
    assert torch.equal(layer.B, torch.zeros(4, 2)) and layer.A.abs().sum() > 0
    assert torch.equal(layer.eval()(x), expected), "B = 0: the adapted layer starts exactly equal to the base"
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["A", "B"]
    assert layer.scaling == 2.0  # alpha / r


def test_merge_unmerge_round_trip_and_idempotent():
    torch.manual_seed(2)
    layer = _random_lora(LoRALinear(nn.Linear(8, 8), r=3, alpha=6)).double()
    w0 = layer.base.weight.clone()
    x = torch.randn(4, 8, dtype=torch.float64)
    unmerged = layer(x)
    layer.merge()
    layer.merge()  # a second merge changes nothing
    torch.testing.assert_close(layer(x), unmerged)
    torch.testing.assert_close(layer.base.weight, w0 + 2.0 * layer.B @ layer.A)
    layer.unmerge()
    layer.unmerge()
    torch.testing.assert_close(layer.base.weight, w0)
    torch.testing.assert_close(layer(x), unmerged)


def test_add_lora_by_name_on_lib_attention():
    torch.manual_seed(3)
    model = nn.Sequential(MultiHeadAttention(16, 4), nn.Linear(16, 3))
    names = add_lora(model, ("W_q", "W_v"), r=2, alpha=2)
    assert (
        names == ["0.W_q", "0.W_v"]
        and isinstance(model[0].W_q, LoRALinear)
        and isinstance(model[0].W_k, nn.Linear)
    )
    n_train, n_all = freeze_except_lora(model, trainable=("1",))
    assert n_train == 2 * (2 * 16 + 16 * 2) + (16 * 3 + 3) and n_all == 4 * (16 * 16 + 16) + 2 * 64 + 51
    with pytest.raises(ValueError, match=r"no nn.Linear named \['query'\].*'W_k'"):
        add_lora(model, "query")


def test_packed_q_v_equals_loralib_merged_linear():
    torch.manual_seed(4)
    D, r = 12, 2
    mha = nn.MultiheadAttention(D, 3, batch_first=True)
    base_w = mha.in_proj_weight.detach().clone()
    add_lora_packed(mha, r=r, alpha=4)
    p = mha.parametrizations.in_proj_weight[0]
    with torch.no_grad():
        p.B.normal_()
    ref = loralib.MergedLinear(D, 3 * D, r=r, lora_alpha=4, enable_lora=[True, False, True])
    ref.train()  # unmerged (loralib's train() returns None)
    ref.load_state_dict(
        {
            "weight": base_w,
            "bias": mha.in_proj_bias.detach(),
            "lora_A": p.A.reshape(2 * r, D),
            "lora_B": p.B.reshape(2 * D, r),
        }
    )
    x = torch.randn(2, 5, D)
    torch.testing.assert_close(nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias), ref(x))
    k_rows = slice(D, 2 * D)  # the key block is not adapted
    torch.testing.assert_close(mha.in_proj_weight[k_rows], base_w[k_rows])


def test_torchvision_vit_gets_lora_without_rewriting_and_merges():
    torch.manual_seed(5)
    vit = VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
    )
    x = torch.randn(3, 3, 32, 32)
    before = vit.eval()(x)
    assert add_lora_packed(vit, r=4, alpha=8) == [
        "encoder.layers.encoder_layer_0.self_attention",
        "encoder.layers.encoder_layer_1.self_attention",
    ]
    n_train, n_all = freeze_except_lora(vit, trainable=("heads",))
    assert n_train == 2 * 2 * (4 * 32 + 32 * 4) + (32 * 10 + 10)
    torch.testing.assert_close(vit(x), before)  # B = 0
    vit.train()
    loss = nn.functional.cross_entropy(vit(x), torch.tensor([0, 1, 2]))
    loss.backward()
    assert all((p.grad is not None) == p.requires_grad for p in vit.parameters())
    with torch.no_grad():
        for m in vit.modules():
            if isinstance(m, LoRAPacked):
                m.B.normal_()
    adapted = vit.eval()(x)
    merged = merge_lora(vit)
    assert not any(isinstance(m, LoRAPacked) for m in merged.modules())
    torch.testing.assert_close(merged(x), adapted, atol=1e-5, rtol=1e-5)


def test_adapter_checkpoint_round_trip(tmp_path):
    torch.manual_seed(6)

    def model():
        torch.manual_seed(6)
        m = nn.Sequential(MultiHeadAttention(8, 2), nn.Linear(8, 2))
        add_lora(m, ("W_q", "W_v"), r=2, alpha=2)
        return m

    a = model()
    for layer in (a[0].W_q, a[0].W_v):
        _random_lora(layer)
    adapter = lora_state_dict(a, extra=("1",))
    assert sorted(adapter) == ["0.W_q.A", "0.W_q.B", "0.W_v.A", "0.W_v.B", "1.bias", "1.weight"]
    torch.save(adapter, tmp_path / "adapter.pt")
    b = model()
    load_lora_state_dict(b, torch.load(tmp_path / "adapter.pt"))
    x = torch.randn(2, 3, 8)
    torch.testing.assert_close(b[1](b[0](x)[0]), a[1](a[0](x)[0]))
    with pytest.raises(KeyError, match="apply add_lora"):
        load_lora_state_dict(nn.Sequential(MultiHeadAttention(8, 2), nn.Linear(8, 2)), adapter)

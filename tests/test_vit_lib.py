"""lib.vit: patch order, the linear projection as a convolution, shapes, parameter counts."""

import pytest
import torch
import torch.nn as nn

from lib.positional import sinusoidal_encoding
from lib.vit import EncoderBlock, PatchEmbedding, ViT, ViTConfig, n_parameters, patchify


def test_patch_order_by_hand():
    img = torch.arange(16.0).view(1, 1, 4, 4)  # rows 0-3, 4-7, 8-11, 12-15
    p = patchify(img, 2)
    assert p.shape == (1, 4, 4)
    assert p[0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    with pytest.raises(ValueError, match="not divisible"):
        patchify(torch.zeros(1, 1, 5, 4), 2)


def test_patchify_matches_unfold_on_colour_images():
    x = torch.randn(2, 3, 12, 8)
    expected = nn.functional.unfold(x, kernel_size=4, stride=4).transpose(1, 2)  # (B, N, C*P*P)
    torch.testing.assert_close(patchify(x, 4), expected)


def test_linear_projection_equals_strided_conv():
    torch.manual_seed(0)
    embed = PatchEmbedding(4, 3, 24)
    x = torch.randn(2, 3, 16, 12)
    conv = embed.as_conv()
    torch.testing.assert_close(embed(x), conv(x).flatten(2).transpose(1, 2))


def test_block_equals_torchs_pre_norm_transformer_encoder_layer():
    # the independent reference: nn.TransformerEncoderLayer(norm_first=True) with the same weights
    torch.manual_seed(1)
    D, h = 16, 4
    block = EncoderBlock(D, h).eval()
    ref = nn.TransformerEncoderLayer(
        D, h, dim_feedforward=2 * D, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    ).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(
            torch.cat([block.attn.W_q.weight, block.attn.W_k.weight, block.attn.W_v.weight])
        )
        ref.self_attn.in_proj_bias.copy_(
            torch.cat([block.attn.W_q.bias, block.attn.W_k.bias, block.attn.W_v.bias])
        )
        ref.self_attn.out_proj.load_state_dict(block.attn.W_o.state_dict())
        ref.norm1.load_state_dict(block.ln1.state_dict())
        ref.norm2.load_state_dict(block.ln2.state_dict())
        ref.linear1.load_state_dict(block.mlp[0].state_dict())
        ref.linear2.load_state_dict(block.mlp[3].state_dict())
    x = torch.randn(2, 7, D)
    with torch.no_grad():
        y, w = block(x, need_weights=True)
        y_fast, _ = block(x)  # the fused attention path
        expected = ref(x)
        _, expected_w = ref.self_attn(ref.norm1(x), ref.norm1(x), ref.norm1(x), average_attn_weights=False)
    torch.testing.assert_close(w, expected_w, atol=1e-6, rtol=1e-5)  # (B, h, N, N): attention of LN1(x)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y_fast, expected, atol=1e-5, rtol=1e-5)
    post = nn.TransformerEncoderLayer(D, h, 2 * D, 0.0, "gelu", batch_first=True, norm_first=False).eval()
    post.load_state_dict(ref.state_dict())
    with torch.no_grad():
        assert not torch.allclose(y, post(x), atol=1e-3)  # the check can tell pre-norm from post-norm


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
def test_vit_shapes_and_parameter_count(positional):
    cfg = ViTConfig(
        image_size=32,
        patch_size=8,
        in_channels=3,
        n_classes=10,
        d_model=48,
        depth=2,
        h=3,
        mlp_ratio=2,
        positional=positional,
    )
    model = ViT(cfg)
    x = torch.randn(5, 3, 32, 32)
    logits, maps = model(x, return_attention=True)
    assert logits.shape == (5, 10) and len(maps) == 2 and maps[0].shape == (5, 3, 17, 17)
    torch.testing.assert_close(
        maps[1].sum(-1), torch.ones(5, 3, 17)
    )  # every query's weights are a distribution
    D, N = 48, 16
    per_block = 2 * 2 * D + (D * 3 * D + 3 * D) + (D * D + D) + (D * 2 * D + 2 * D) + (2 * D * D + D)
    expected = (3 * 64 * D + D) + D + 2 * per_block + 2 * D + (D * 10 + 10)  # embed, cls, blocks, ln, head
    expected += (N + 1) * D if positional == "learned" else 0
    assert n_parameters(model) == expected
    if positional == "sinusoidal":
        torch.testing.assert_close(model.pos[0], sinusoidal_encoding(N + 1, D))
        assert "pos" not in dict(model.named_parameters())


def test_class_token_is_what_gets_classified():
    torch.manual_seed(2)
    model = ViT(ViTConfig(depth=1))
    x = torch.randn(3, 1, 28, 28)
    z = model.tokens(x)
    assert z.shape == (3, 50, 64)
    torch.testing.assert_close(z[:, 0], (model.cls[0, 0] + model.pos[0, 0]).expand(3, -1))


def test_attention_is_libs_multi_head_attention_and_matches_torch():
    torch.manual_seed(3)
    block = EncoderBlock(16, 4)
    torch_mha = nn.MultiheadAttention(16, 4, batch_first=True)
    block.attn.load_from_torch(torch_mha)
    x = torch.randn(2, 9, 16)
    expected, expected_w = torch_mha(x, x, x, average_attn_weights=False)
    for need in (True, False):
        out, w = block.attention(x, need_weights=need)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(block.attention(x, need_weights=True)[1], expected_w)
    assert {n for n, _ in block.attn.named_children()} == {"W_q", "W_k", "W_v", "W_o"}


def test_as_conv_keeps_dtype_and_device():
    embed = PatchEmbedding(4, 3, 8).double()
    conv = embed.as_conv()
    assert conv.weight.dtype == torch.float64 and conv.weight.device == embed.proj.weight.device
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(conv(x).flatten(2).transpose(1, 2), embed(x))


def test_lora_targets_the_vits_query_and_value_by_name():
    from lib.lora import add_lora

    torch.manual_seed(4)
    model = ViT(ViTConfig(depth=2, d_model=32, h=4)).eval()
    x = torch.randn(2, 1, 28, 28)
    before = model(x)
    names = add_lora(model, ("W_q", "W_v"), r=4, alpha=8)
    assert names == ["blocks.0.attn.W_q", "blocks.0.attn.W_v", "blocks.1.attn.W_q", "blocks.1.attn.W_v"]
    torch.testing.assert_close(model(x), before)  # B = 0: unchanged until trained

"""Reference values for notebook 05's hidden tests (lib.vit, lib.positional).

Modules cross the sandbox as their state_dict and the outputs they give on fixed inputs; the hidden
tests rebuild them from torch's own layers (nn.LayerNorm, nn.MultiheadAttention, nn.Linear).
"""

import torch

import lib.positional as ref_pos
import lib.vit as ref


def test_patchify():
    g = torch.Generator().manual_seed(51)
    out = []
    for shape, P in [((1, 1, 28, 28), 7), ((3, 3, 32, 32), 4), ((2, 2, 6, 9), 3)]:
        x = torch.randn(*shape, generator=g)
        out.append((x, P, ref.patchify(x, P)))
    return out


def test_conv_from_linear():
    g = torch.Generator().manual_seed(52)
    out = []
    for P, C, D, H in [(4, 3, 24, 32), (7, 1, 10, 28), (2, 2, 5, 6)]:
        torch.manual_seed(P)
        emb = ref.PatchEmbedding(P, C, D)
        x = torch.randn(3, C, H, H, generator=g)
        with torch.no_grad():
            out.append(dict(P=P, C=C, D=D, proj=emb.proj.state_dict(), x=x, expected=emb(x)))
    return out


def test_class_token():
    return [(n, d, ref_pos.sinusoidal_encoding(n, d)) for n, d in [(17, 64), (50, 12), (3, 5)]]


def test_encoder_and_classifier():
    torch.manual_seed(7)
    blk = ref.EncoderBlock(12, 3)
    x = torch.randn(2, 6, 12)
    with torch.no_grad():
        expected, weights = blk(x, need_weights=True)
        mid = blk.ln1(x + blk.attention(x)[0])  # what a post-norm block computes, for the failure message
        post_norm = blk.ln2(mid + blk.mlp(mid))
    block = dict(state=blk.state_dict(), x=x, expected=expected, weights=weights, post_norm=post_norm)
    models = []
    for kw in [
        dict(image_size=28, patch_size=7, in_channels=1, d_model=32, depth=2, h=4),
        dict(image_size=32, patch_size=4, in_channels=3, d_model=24, depth=3, h=3),
    ]:
        torch.manual_seed(11)
        model = ref.ViT(ref.ViTConfig(**kw, mlp_ratio=2)).eval()
        images = torch.randn(4, kw["in_channels"], kw["image_size"], kw["image_size"])
        with torch.no_grad():
            models.append(
                dict(
                    kw=kw,
                    state=model.state_dict(),
                    n_parameters=ref.n_parameters(model),
                    images=images,
                    logits=model(images),
                )
            )
    return dict(block=block, models=models)

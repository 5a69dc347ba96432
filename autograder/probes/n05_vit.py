"""Probes for notebook 05's hidden tests (patches, the projection as a convolution, class token and
positions, the encoder block and the classifier).

Dosovitskiy et al. (2021), eqs. 1-4: z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos,
z'_l = MSA(LN(z_{l-1})) + z_{l-1}, z_l = MLP(LN(z'_l)) + z'_l, y = LN(z_L^0). The expected values come
from lib.vit and lib.positional (outside only); the modules the tests pass in (layer norms, torch's
multi-head attention, MLPs, the notebook's whole model) get their weights from the probe's generator.
"""

import contextlib
import math
import types

import torch
from torch import nn

from course.grading import mistake, standin

PATCH_CASES = [((1, 1, 28, 28), 7), ((3, 3, 32, 32), 4), ((2, 2, 6, 9), 3)]  # (B, C, H, W), P
CONV_CASES = [(4, 3, 24, 32), (7, 1, 10, 28), (2, 2, 5, 6)]  # P, C, D, H = W
POSITION_CASES = [(17, 64), (50, 12), (3, 5)]  # n_tokens, d
MODELS = [
    dict(image_size=28, patch_size=7, in_channels=1, d_model=32, depth=2, h=4),
    dict(image_size=32, patch_size=4, in_channels=3, d_model=24, depth=3, h=3),
]
MLP_RATIO = 2  # the notebook's VisionTransformer default

BLOCK = "the encoder block differs from the pre-norm block z' = z + MSA(LN1(z)), out = z' + MLP(LN2(z'))"
POST_NORM = (
    "the encoder block differs from the reference. It is post-norm: apply the layer norms to the "
    "sub-layers' inputs, inside the residual branch (pre-norm)."
)


def reference() -> dict:
    """lib's objects under the notebook's names (outside the sandbox only)."""
    import lib.positional as ref_pos
    import lib.vit as ref

    def conv_from_linear(linear, patch_size, in_channels):
        with torch.random.fork_rng(devices=[]):
            emb = ref.PatchEmbedding(patch_size, in_channels, linear.out_features)
        emb.proj.load_state_dict(linear.state_dict())
        return emb.as_conv()

    def add_class_token(tokens, cls, pos):  # lib's ViT.tokens with the patches already embedded
        return ref.ViT.tokens(types.SimpleNamespace(embed=lambda t: t, cls=cls, pos=pos), tokens)

    def encoder_block(z, ln1, attn, ln2, mlp):  # lib's EncoderBlock.forward with the given sub-layers
        parts = types.SimpleNamespace(ln1=ln1, ln2=ln2, mlp=mlp, attention=lambda t, need_weights: attn(t))
        return ref.EncoderBlock.forward(parts, z, need_weights=True)

    def classify(z, ln, head):  # lib's ViT.forward reads the class token's output: head(LN(z_L^0))
        return head(ln(z[:, 0]))

    class VisionTransformer(nn.Module):
        """lib's ViT, loading weights laid out as the notebook's model (packed q, k, v in msa)."""

        def __init__(self, **kw):
            super().__init__()
            with torch.random.fork_rng(devices=[]):
                self.vit = ref.ViT(ref.ViTConfig(**kw, mlp_ratio=MLP_RATIO))

        def forward(self, images):
            return self.vit(images)

        def load_state_dict(self, state, strict=True):
            return self.vit.load_state_dict(_lib_state(state, self.vit.cfg.d_model), strict=strict)

    return {
        "patchify": ref.patchify,
        "conv_from_linear": conv_from_linear,
        "vit_positional_encoding": ref_pos.sinusoidal_encoding,
        "add_class_token": add_class_token,
        "encoder_block": encoder_block,
        "classify": classify,
        "VisionTransformer": VisionTransformer,
    }


def _lib_state(state, D):
    """The notebook's VisionTransformer state_dict (packed q, k, v in msa) under lib's ViT's names."""
    mine = {"embed.proj." + k[5:]: v for k, v in state.items() if k.startswith("proj.")}
    for k, v in state.items():
        if k.startswith("blocks."):
            i, rest = k.split(".", 2)[1:]
            p = f"blocks.{i}."
            if rest.startswith("msa.in_proj_"):
                kind = rest.removeprefix("msa.in_proj_")
                for j, n in enumerate("qkv"):
                    mine[f"{p}attn.W_{n}.{kind}"] = v[j * D : (j + 1) * D]
            elif rest.startswith("msa.out_proj."):
                mine[f"{p}attn.W_o.{rest.removeprefix('msa.out_proj.')}"] = v
            elif rest.startswith("mlp.2."):
                mine[f"{p}mlp.3.{rest.removeprefix('mlp.2.')}"] = v
            else:
                mine[p + rest] = v
        elif not k.startswith("proj."):
            mine[k] = v
    return mine


# ----------------------------------------------------------- stand-ins for the earlier parts, mistakes
@standin("patchify")
def _patchify(images, P):
    """The stand-in for Part 1 while the whole model is tested: (B, C, H, W) -> (B, N, C*P*P)."""
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, (H // P) * (W // P), C * P * P)


@standin("add_class_token")
def _add_class_token(tokens, cls, pos):
    return torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens], dim=1) + pos


@standin("vit_positional_encoding")
def _positions(n, d):
    """sin(i / 10000^(j/d)) for even j, cos(i / 10000^((j-1)/d)) for odd j."""
    i, j = torch.arange(n, dtype=torch.float64)[:, None], torch.arange(d)
    angle = i / 10000 ** ((j - j % 2) / d)
    return torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


@mistake
def _patchify_channels_last(images, P):
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // P) * (W // P), C * P * P)


@mistake
def _patchify_plain_reshape(images, P):
    B, C, H, W = images.shape
    return images.reshape(B, (H // P) * (W // P), C * P * P)


@mistake
def _conv_channels_last(linear, P, C, x):
    D = linear.out_features
    weight = linear.weight.view(D, P, P, C).permute(0, 3, 1, 2)
    return torch.nn.functional.conv2d(x, weight, linear.bias, stride=P).flatten(2).transpose(1, 2)


@mistake
def _positions_odd_exponent(n, d):
    i, j = torch.arange(n, dtype=torch.float64)[:, None], torch.arange(d)
    angle = i / 10000 ** (j / d)
    return torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


@mistake
def _positions_swapped(n, d):
    i, j = torch.arange(n, dtype=torch.float64)[:, None], torch.arange(d)
    angle = i / 10000 ** ((j - j % 2) / d)
    return torch.where(j % 2 == 0, torch.cos(angle), torch.sin(angle)).float()


@mistake
def _class_token_last(tokens, cls, pos):
    return torch.cat([tokens, cls.expand(tokens.shape[0], -1, -1)], dim=1) + pos


@mistake
def _class_token_without_position(tokens, cls, pos):
    return torch.cat([cls.expand(tokens.shape[0], -1, -1), tokens + pos[:, 1:]], dim=1)


@mistake
def _post_norm(z, ln1, attn, ln2, mlp):
    z = ln1(z + attn(z)[0])
    return ln2(z + mlp(z))


@mistake
def _no_mlp_residual(z, ln1, attn, ln2, mlp):
    z = z + attn(ln1(z))[0]
    return mlp(ln2(z))


@mistake
def _no_attention_residual(z, ln1, attn, ln2, mlp):
    z = attn(ln1(z))[0]
    return z + mlp(ln2(z))


@mistake
def _no_ln1(z, ln1, attn, ln2, mlp):
    z = z + attn(z)[0]
    return z + mlp(ln2(z))


@mistake
def _classify_mean(z, ln, head):
    return head(ln(z.mean(dim=1)))


@mistake
def _classify_without_ln(z, ln, head):
    return head(z[:, 0])


# ------------------------------------------------------------------------------------- the modules
@contextlib.contextmanager
def _torch_rng_untouched():
    """Building the tests' modules must not move the notebook's global RNG (their weights come from p)."""
    with torch.random.fork_rng(devices=[]):
        yield


def _fill(p, module, dtype):
    """Every parameter of ``module`` from the probe's generator, scaled like an initialisation."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(_draw(p, name, param.shape, dtype))
    return module


def _draw(p, name, shape, dtype):
    leaf = name.rsplit(".", 1)[-1]
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if len(shape) == 1 and leaf in ("weight",):  # a LayerNorm's scale
        return (1 + 0.1 * p.randn(*shape)).to(dtype)
    if leaf.endswith("bias"):
        return (0.1 * p.randn(*shape)).to(dtype)
    return (p.randn(*shape) / math.sqrt(shape[-1])).to(dtype)


def _notebook_state(p, kw):
    """Weights for the notebook's VisionTransformer(**kw), under its state_dict's names."""
    P, C, D, depth = kw["patch_size"], kw["in_channels"], kw["d_model"], kw["depth"]
    shapes = {"proj.weight": (D, C * P * P), "proj.bias": (D,), "cls": (1, 1, D)}
    for i in range(depth):
        b = f"blocks.{i}."
        shapes |= {b + "ln1.weight": (D,), b + "ln1.bias": (D,), b + "ln2.weight": (D,), b + "ln2.bias": (D,)}
        shapes |= {b + "msa.in_proj_weight": (3 * D, D), b + "msa.in_proj_bias": (3 * D,)}
        shapes |= {b + "msa.out_proj.weight": (D, D), b + "msa.out_proj.bias": (D,)}
        shapes |= {b + "mlp.0.weight": (MLP_RATIO * D, D), b + "mlp.0.bias": (MLP_RATIO * D,)}
        shapes |= {b + "mlp.2.weight": (D, MLP_RATIO * D), b + "mlp.2.bias": (D,)}
    shapes |= {"ln.weight": (D,), "ln.bias": (D,), "head.weight": (10, D), "head.bias": (10,)}
    return {name: _draw(p, name, shape, torch.float32) for name, shape in shapes.items()}


# ---------------------------------------------------------------------------------------- the tests
def test_patchify(p):
    patchify = p.get("patchify")
    for shape, P in PATCH_CASES:
        x = p.randn(*shape)
        key = f"patchify, images {shape}, P={P}"
        p.call(
            key,
            patchify,
            x,
            P,
            msg="the patches differ: read them left to right, top to bottom, each flattened in (C, P, P) order",
        )
        p.mistake(
            key,
            "a patch's values are in (P, P, C) order: permute to (B, H/P, W/P, C, P, P), channels before rows and columns",
            _patchify_channels_last,
            x,
            P,
        )
        p.mistake(
            key,
            "a plain reshape mixes rows of different patches: cut rows and columns into blocks of P, "
            "permute the patch grid first, then reshape",
            _patchify_plain_reshape,
            x,
            P,
        )


def test_conv_from_linear(p):
    conv_from_linear = p.get("conv_from_linear")

    def describe(linear, P, C):
        with _torch_rng_untouched():
            conv = conv_from_linear(linear, P, C)
        return (isinstance(conv, nn.Conv2d), tuple(conv.kernel_size), tuple(conv.stride))

    def tokens(linear, P, C, x):
        with _torch_rng_untouched():
            conv = conv_from_linear(linear, P, C)
        with torch.no_grad():
            return conv(x).flatten(2).transpose(1, 2)  # (B, D, H/P, W/P) -> (B, N, D)

    for P, C, D, H in CONV_CASES:
        with _torch_rng_untouched():
            linear = torch.nn.utils.skip_init(nn.Linear, C * P * P, D)
        _fill(p, linear, torch.float32)
        x = p.randn(3, C, H, H, dtype=torch.float32)
        case = f"P={P}, C={C}, D={D}"
        p.call(
            f"the layer, {case}",
            describe,
            linear,
            P,
            C,
            exact=True,
            msg="conv_from_linear must return an nn.Conv2d whose kernel and stride are both the patch size",
        )
        key = f"the convolution's tokens, {case}"
        p.call(
            key,
            tokens,
            linear,
            P,
            C,
            x,
            atol=1e-5,
            msg="the convolution differs from the linear projection of the flattened patches: "
            "view the weight as (D, C, P, P) and copy the bias",
        )
        p.mistake(
            key,
            "the weight is read as (D, P, P, C): a flattened patch is in (C, P, P) order, so view it as (D, C, P, P)",
            _conv_channels_last,
            linear,
            P,
            C,
            x,
        )


def test_class_token(p):
    vit_positional_encoding = p.get("vit_positional_encoding")
    for n, d in POSITION_CASES:
        key = f"vit_positional_encoding({n}, {d})"
        p.call(
            key,
            vit_positional_encoding,
            n,
            d,
            atol=1e-5,
            msg="the positional encoding differs from sin(i / 10000^(j/d)) for even j, cos(i / 10000^((j-1)/d)) for odd j",
        )
        p.mistake(
            key,
            "the positional encoding's odd columns use the exponent j/d: a cosine shares its frequency "
            "with the sine before it, 10000^((j-1)/d)",
            _positions_odd_exponent,
            n,
            d,
        )
        p.mistake(
            key,
            "sine and cosine are swapped: sines in the even columns, cosines in the odd ones",
            _positions_swapped,
            n,
            d,
        )
    add_class_token = p.get("add_class_token")
    x, cls, pos = p.randn(4, 9, 6), p.randn(1, 1, 6), p.randn(1, 10, 6)
    p.call(
        "add_class_token",
        add_class_token,
        x,
        cls,
        pos,
        msg="z_0 = [x_class; patches] + E_pos, shape (B, N + 1, D)",
    )
    p.mistake(
        "add_class_token",
        "the class token goes first, plus position 0",
        _class_token_last,
        x,
        cls,
        pos,
    )
    p.mistake(
        "add_class_token",
        "the class token goes first, plus position 0: add the positions after the concatenation",
        _class_token_without_position,
        x,
        cls,
        pos,
    )


def _encoder_sublayers(p, D, h):
    """LN1, torch's multi-head attention (as attn), LN2 and the MLP, weights from the probe's generator."""
    with _torch_rng_untouched():
        ln1, ln2 = nn.LayerNorm(D, dtype=torch.float64), nn.LayerNorm(D, dtype=torch.float64)
        msa = nn.MultiheadAttention(D, h, batch_first=True, dtype=torch.float64)
        mlp = nn.Sequential(
            nn.Linear(D, MLP_RATIO * D, dtype=torch.float64),
            nn.GELU(),
            nn.Linear(MLP_RATIO * D, D, dtype=torch.float64),
        )
    for module in (ln1, ln2, msa, mlp):
        _fill(p, module, torch.float64)

    def attn(t):
        return msa(t, t, t, need_weights=True, average_attn_weights=False)

    return ln1, attn, ln2, mlp


def _check_encoder_block(p, encoder_block, z, ln1, attn, ln2, mlp):
    def block_output(z):
        with torch.no_grad():
            return encoder_block(z, ln1, attn, ln2, mlp)[0]

    p.call("encoder block", block_output, z, msg=BLOCK)
    for message, fn in (
        (POST_NORM, _post_norm),
        ("the MLP sub-layer needs its residual: out = z' + MLP(LN2(z'))", _no_mlp_residual),
        ("the attention sub-layer needs its residual: z' = z + MSA(LN1(z))", _no_attention_residual),
        ("LN1 is missing: normalise z before the attention, z' = z + MSA(LN1(z))", _no_ln1),
    ):
        p.mistake("encoder block", message, lambda z, fn=fn: fn(z, ln1, attn, ln2, mlp), z)


def _check_classify(p, classify, z, D):
    with _torch_rng_untouched():
        ln, head = nn.LayerNorm(D, dtype=torch.float64), nn.Linear(D, 10, dtype=torch.float64)
    _fill(p, ln, torch.float64)
    _fill(p, head, torch.float64)

    def logits(z):
        with torch.no_grad():
            return classify(z, ln, head)

    p.call("classify", logits, z, msg="the classifier reads the class token's output: y = head(LN(z_L^0))")
    p.mistake(
        "classify",
        "the classifier averages the tokens: it reads the class token's output (row 0) only",
        lambda z: _classify_mean(z, ln, head),
        z,
    )
    p.mistake(
        "classify",
        "the final LayerNorm is missing: y = head(LN(z_L^0))",
        lambda z: _classify_without_ln(z, ln, head),
        z,
    )


def _check_model(p, VisionTransformer, kw):
    """One of MODELS: the notebook's whole ViT, its parameter count and its logits with p's weights."""
    state = _notebook_state(p, kw)
    images = p.randn(4, kw["in_channels"], kw["image_size"], kw["image_size"], dtype=torch.float32)

    def count():
        with _torch_rng_untouched():
            return sum(q.numel() for q in VisionTransformer(**kw).parameters())

    def model_logits(images):
        with _torch_rng_untouched():
            model = VisionTransformer(**kw).eval()
        model.load_state_dict(state)
        with torch.no_grad():
            return model(images)

    p.call(
        f"parameters of the ViT {kw}",
        count,
        exact=True,
        msg="parameter count differs from the reference ViT",
    )
    p.call(
        f"the ViT's logits {kw}",
        model_logits,
        images,
        atol=1e-4,
        msg="the whole model's logits differ from the reference ViT's (your encoder block and classifier in it)",
    )


def test_encoder_and_classifier(p):
    encoder_block, classify = p.get("encoder_block"), p.get("classify")
    D, h = 12, 3
    ln1, attn, ln2, mlp = _encoder_sublayers(p, D, h)
    z = p.randn(2, 6, D)
    _check_encoder_block(p, encoder_block, z, ln1, attn, ln2, mlp)
    _check_classify(p, classify, z, D)

    # the whole model, with reference versions of Parts 1-3 standing in for yours: this test grades the
    # encoder block and the classifier only (one mistake, one loss)
    VisionTransformer = p.get("VisionTransformer")
    with (
        p.standin("patchify", _patchify),
        p.standin("add_class_token", _add_class_token),
        p.standin("vit_positional_encoding", _positions),
    ):
        for kw in MODELS:
            _check_model(p, VisionTransformer, kw)

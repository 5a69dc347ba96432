"""Vision Transformer.

Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021, Eqs. (1)-(4):
    z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos        (patches, linear projection, class token)
    z'_l = MSA(LN(z_{l-1})) + z_{l-1}                      (pre-norm attention, residual)
    z_l = MLP(LN(z'_l)) + z'_l                             (pre-norm MLP, residual)
    y = LN(z_L^0)                                          (the class token's output, then a linear head)
Patches are read left to right, top to bottom; each is flattened in (C, P, P) order, so the
linear projection E equals a Conv2d with kernel and stride P whose weight is E reshaped. The
attention is ``lib.mha.MultiHeadAttention`` with separate W_q, W_k, W_v, W_o, so that they can be
addressed by name (LoRA adapts W_q and W_v: ``lib.lora.add_lora(vit, ("W_q", "W_v"))``).

Where this differs from torchvision's ``VisionTransformer``: LayerNorm eps is PyTorch's default 1e-5
(torchvision uses 1e-6); positions are the fixed sinusoidal table by default (torchvision learns
them; ``positional="learned"`` does too); the projection is a Linear on patches (torchvision's is
the equivalent strided Conv2d, see ``PatchEmbedding.as_conv``); q, k and v are separate layers
(torchvision packs them in ``nn.MultiheadAttention.in_proj_weight``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .mha import MultiHeadAttention
from .positional import sinusoidal_encoding


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C*P*P) with N = (H/P)(W/P), patches in row-major order."""
    B, C, H, W = images.shape
    P = patch_size
    if H % P or W % P:
        raise ValueError(f"image size {H}x{W} is not divisible by patch_size={P}")
    # (B, C, H, W) -> (B, C, H/P, P, W/P, P): cut rows and columns into patches
    x = images.reshape(B, C, H // P, P, W // P, P)
    # (B, C, H/P, P, W/P, P) -> (B, H/P, W/P, C, P, P): patch grid first, pixels of a patch last
    x = x.permute(0, 2, 4, 1, 3, 5)
    # (B, H/P, W/P, C, P, P) -> (B, N, C*P*P)
    return x.reshape(B, (H // P) * (W // P), C * P * P)


@dataclass
class ViTConfig:
    image_size: int = 28
    patch_size: int = 4
    in_channels: int = 1
    n_classes: int = 10
    d_model: int = 64
    depth: int = 4
    h: int = 4
    mlp_ratio: int = 2
    dropout: float = 0.0
    positional: str = "sinusoidal"  # or "learned"

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class PatchEmbedding(nn.Module):
    """Flattened patches times E (a Linear layer): (B, C, H, W) -> (B, N, d_model)."""

    def __init__(self, patch_size: int, in_channels: int, d_model: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(in_channels * patch_size**2, d_model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(patchify(images, self.patch_size))

    def as_conv(self) -> nn.Conv2d:
        """The same map as a strided convolution (kernel = stride = patch size)."""
        P, D = self.patch_size, self.proj.out_features
        C = self.proj.in_features // P**2
        conv = nn.Conv2d(
            C, D, kernel_size=P, stride=P, dtype=self.proj.weight.dtype, device=self.proj.weight.device
        )
        with torch.no_grad():
            conv.weight.copy_(self.proj.weight.view(D, C, P, P))
            conv.bias.copy_(self.proj.bias)
        return conv


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: MSA and MLP, each with a residual connection."""

    def __init__(self, d_model: int, h: int, mlp_ratio: int = 2, dropout: float = 0.0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, h)  # W_q, W_k, W_v, W_o
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_ratio * d_model, d_model),
            nn.Dropout(dropout),
        )

    def attention(self, x: torch.Tensor, need_weights: bool = False):
        """Multi-head self-attention of x (B, N, D); the fused kernel when the weights are not needed."""
        return self.attn(x, need_weights=need_weights)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        a, weights = self.attention(self.ln1(x), need_weights)
        x = x + a
        x = x + self.mlp(self.ln2(x))
        return x, weights


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image_size={cfg.image_size} is not divisible by patch_size={cfg.patch_size}")
        if cfg.positional not in ("sinusoidal", "learned"):
            raise ValueError(f"positional must be 'sinusoidal' or 'learned', got {cfg.positional!r}")
        self.cfg = cfg
        D, N = cfg.d_model, cfg.n_patches
        self.embed = PatchEmbedding(cfg.patch_size, cfg.in_channels, D)
        self.cls = nn.Parameter(torch.zeros(1, 1, D))  # the learnable class token
        if cfg.positional == "sinusoidal":  # one row per token: class token at 0, patches 1..N
            self.register_buffer("pos", sinusoidal_encoding(N + 1, D)[None], persistent=False)
        else:
            self.pos = nn.Parameter(torch.randn(1, N + 1, D) * 0.02)
        self.blocks = nn.ModuleList(
            EncoderBlock(D, cfg.h, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.depth)
        )
        self.ln = nn.LayerNorm(D)
        self.head = nn.Linear(D, cfg.n_classes)

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """z_0: (B, C, H, W) -> (B, N + 1, D), the class token first."""
        x = self.embed(images)  # (B, N, D)
        cls = self.cls.expand(x.shape[0], -1, -1)  # (1, 1, D) -> (B, 1, D)
        return torch.cat([cls, x], dim=1) + self.pos  # (B, N + 1, D)

    def forward(self, images: torch.Tensor, return_attention: bool = False):
        x = self.tokens(images)
        maps = []
        for block in self.blocks:
            x, w = block(x, need_weights=return_attention)
            maps.append(w)
        logits = self.head(self.ln(x[:, 0]))  # classify from the class token's output
        return (logits, maps) if return_attention else logits


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""Low-rank adaptation (LoRA) of a pretrained model's linear maps.

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022, Eq. (3): a frozen
pretrained weight W_0 (out x in) is adapted by a trainable low-rank update,

    h = W_0 x + Delta W x = W_0 x + (alpha / r) * B A x,     A: r x in (random), B: out x r (zero),

so the adapted model starts exactly equal to the pretrained one, and only r * (in + out) numbers
per adapted matrix are trained. After training, B A * alpha / r folds into W_0 (``merge``), and the
model runs at exactly the base model's cost. The paper adapts the attention's query and value
projections (Sec. 7.1); for a packed q/k/v projection, as in ``nn.MultiheadAttention``'s
``in_proj_weight``, ``LoRAPacked`` adapts chosen row blocks only (loralib's ``MergedLinear`` with
``enable_lora=[True, False, True]``), as a ``torch.nn.utils.parametrize`` parametrization so that
models such as torchvision's ``VisionTransformer`` need no rewriting.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.nn.utils import parametrize

# The low-rank factors' names, one spelling everywhere: A and B, the paper's letters (W0 + (alpha/r) B A),
# in LoRALinear and LoRAPacked alike (loralib and peft call them A and B).
LORA_FACTORS = ("A", "B")


def _is_lora_factor(name: str) -> bool:
    """Whether a parameter or state_dict name ("blocks.0.attn.W_q.A", "...in_proj_weight.0.B") is one."""
    return name.rpartition(".")[2] in LORA_FACTORS


def _init_A(A: torch.Tensor) -> None:
    nn.init.kaiming_uniform_(A, a=math.sqrt(5))  # as nn.Linear and loralib initialise A


class LoRALinear(nn.Module):
    """A drop-in replacement for an existing ``nn.Linear``: base(x) + (alpha/r) B A dropout(x)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if r < 1:
            raise ValueError(f"the rank r must be at least 1, got {r}")
        self.base, self.r, self.alpha, self.scaling = base, r, alpha, alpha / r
        for p in base.parameters():
            p.requires_grad_(False)  # W_0 and its bias stay frozen
        kw = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.A = nn.Parameter(torch.empty(r, base.in_features, **kw))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, **kw))  # zero: starts equal to the base
        _init_A(self.A)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()  # on the LoRA path only
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """(alpha / r) B A, shaped like W_0 (out x in)."""
        return self.scaling * (self.B @ self.A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.merged:
            return y
        # (..., in) -> (..., r) -> (..., out)
        return y + self.scaling * (self.dropout(x) @ self.A.T @ self.B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into W_0. Idempotent: merging a merged layer changes nothing."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of W_0 (to train further). Idempotent too."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def add_lora(
    model: nn.Module, target_modules=("W_q", "W_v"), r: int = 8, alpha: float = 16, dropout: float = 0.0
) -> list[str]:
    """Replace every ``nn.Linear`` whose name ends in one of ``target_modules`` by a LoRALinear.

    Works in place; returns the names it adapted. Raises if nothing matches, naming what exists.
    """
    targets = (target_modules,) if isinstance(target_modules, str) else tuple(target_modules)
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(n == t or n.endswith("." + t) for t in targets)
    ]
    if not names:
        linear = sorted({n.rpartition(".")[2] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(
            f"no nn.Linear named {list(targets)} in the model; its linear layers are called {linear}"
        )
    for n in names:
        parent, child = _parent(model, n)
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha, dropout))
    return names


def freeze_except_lora(model: nn.Module, trainable=("head",)) -> tuple[int, int]:
    """Freeze every parameter except LoRA's A and B and the modules named in ``trainable``.

    Returns (trainable parameters, all parameters).
    """
    keep = tuple(trainable)
    for name, p in model.named_parameters():
        in_kept = any(name == k or name.startswith(k + ".") or f".{k}." in name for k in keep)
        p.requires_grad_(_is_lora_factor(name) or in_kept)
    n_all = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), n_all


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every LoRALinear by a plain nn.Linear holding W_0 + (alpha/r) B A.

    The result has the base model's shape and cost; packed parametrizations are folded in as well.
    """
    for name, m in list(model.named_modules()):
        if isinstance(m, LoRALinear):
            m.merge()
            parent, child = _parent(model, name)
            setattr(parent, child, m.base)
    for m in list(model.modules()):
        if parametrize.is_parametrized(m):
            for tensor_name in list(m.parametrizations):
                parametrize.remove_parametrizations(m, tensor_name, leave_parametrized=True)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


class LoRAPacked(nn.Module):
    """A parametrization of a packed (n_blocks * out, in) weight: W + (alpha/r) B_i A_i on chosen blocks.

    For ``nn.MultiheadAttention.in_proj_weight`` the blocks are q, k, v; ``enable=(True, False, True)``
    adapts q and v only.
    """

    def __init__(self, weight: torch.Tensor, r: int, alpha: float, enable=(True, False, True)):
        super().__init__()
        rows, cols = weight.shape
        if rows % len(enable):
            raise ValueError(f"a weight of {rows} rows cannot be cut into {len(enable)} equal blocks")
        self.block, self.enable, self.r, self.scaling = rows // len(enable), tuple(enable), r, alpha / r
        n = sum(self.enable)
        kw = dict(dtype=weight.dtype, device=weight.device)
        self.A = nn.Parameter(torch.empty(n, r, cols, **kw))  # one A (r x in) per adapted block
        self.B = nn.Parameter(torch.zeros(n, self.block, r, **kw))  # one B (out x r) per adapted block
        for block in self.A:
            _init_A(block)

    def delta_weight(self) -> torch.Tensor:
        blocks, i = [], 0
        for on in self.enable:
            if on:
                blocks.append(self.scaling * (self.B[i] @ self.A[i]))  # (out, r) @ (r, in)
                i += 1
            else:
                blocks.append(self.A.new_zeros(self.block, self.A.shape[-1]))
        return torch.cat(blocks)  # (n_blocks * out, in)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta_weight()


def add_lora_packed(model: nn.Module, r: int = 8, alpha: float = 16, enable=(True, False, True)) -> list[str]:
    """Adapt the q and v blocks of every ``nn.MultiheadAttention``'s packed in_proj_weight, in place."""
    names = []
    for name, m in model.named_modules():
        if isinstance(m, nn.MultiheadAttention):
            if not m._qkv_same_embed_dim:
                raise ValueError(
                    f"{name}: q, k and v have separate weights here; use add_lora on them instead"
                )
            m.in_proj_weight.requires_grad_(False)
            parametrize.register_parametrization(
                m, "in_proj_weight", LoRAPacked(m.in_proj_weight, r, alpha, enable)
            )
            names.append(name)
    if not names:
        raise ValueError("the model has no nn.MultiheadAttention to adapt")
    return names


def lora_state_dict(model: nn.Module, extra=("head",)) -> dict[str, torch.Tensor]:
    """Only what fine-tuning changed, for a small adapter file: LoRA's factors and the ``extra`` modules."""

    def wanted(k: str) -> bool:
        return _is_lora_factor(k) or any(k.startswith(e + ".") or f".{e}." in k for e in extra)

    return {k: v.detach().clone() for k, v in model.state_dict().items() if wanted(k)}


def load_lora_state_dict(model: nn.Module, adapter: dict[str, torch.Tensor]) -> None:
    """Load an adapter made by ``lora_state_dict`` into a model prepared the same way (add_lora first)."""
    own = model.state_dict()
    missing = sorted(set(adapter) - set(own))
    if missing:
        raise KeyError(
            f"the adapter has {missing[:3]} but the model has no such weights: "
            "apply add_lora (or add_lora_packed) with the same targets and rank first"
        )
    model.load_state_dict(adapter, strict=False)

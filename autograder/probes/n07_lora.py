"""Probes for notebook 07's hidden tests (LoRA: the layer, merging, injection, packed q/k/v, adapters).

Hu et al. (2021), eq. 3: h = W_0 x + (alpha / r) B A x, A (r x in) random, B (out x r) zero at the start.
The expected outputs of the LoRA layer and of the packed projection come from loralib (``loralib.Linear``
and ``loralib.MergedLinear(enable_lora=[True, False, True])`` with the same weights), the rest from lib;
both are imported in ``reference()`` only, outside the kernel. Every parameter the checks depend on is
set from the probe's generator, so both runs see the same numbers.
"""

import functools
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.grading import mistake, standin

LINEAR_CASES = [(12, 7, 4, 8), (5, 9, 1, 1), (16, 16, 8, 32)]  # (in, out, r, alpha)
LORA_OUTPUT = "the output differs from base(x) + (alpha / r) x Aᵀ Bᵀ (loralib.Linear with the same weights)"
SCALING = "scaling = alpha / r, so that changing the rank does not change the size of the update"
B_ZERO = (
    "B must start at zero so that the model starts exactly equal to the pretrained one; A is the random one"
)
MERGED = "merge must set W_0 + (alpha / r) B A"


def reference() -> dict:
    """lib's objects under the notebook's names (outside the sandbox only); the layer's and the packed
    projection's outputs are loralib's."""
    import loralib

    import lib.lora as ref

    class LoRALinear(ref.LoRALinear):
        """lib's layer (attributes, initialisation, freezing) whose output is loralib.Linear's."""

        def forward(self, x):
            if self.merged:
                return self.base(x)
            base = self.base
            drop = self.dropout.p if isinstance(self.dropout, nn.Dropout) else 0.0
            other = loralib.Linear(
                base.in_features,
                base.out_features,
                r=self.r,
                lora_alpha=self.alpha,
                lora_dropout=drop,
                merge_weights=False,
                dtype=base.weight.dtype,
            )
            other.load_state_dict(
                {"weight": base.weight, "bias": base.bias, "lora_A": self.A, "lora_B": self.B}
            )
            other.train(self.training)
            return other(x)

    class LoRAPacked(ref.LoRAPacked):
        """lib's parametrization whose update is loralib.MergedLinear's (enable_lora = enable)."""

        def forward(self, weight):
            rows, cols = weight.shape
            n = sum(self.enable)
            other = loralib.MergedLinear(
                cols,
                rows,
                r=self.r,
                lora_alpha=self.scaling * self.r,
                enable_lora=list(self.enable),
                merge_weights=False,
                dtype=weight.dtype,
            )
            other.lora_A.data = self.A.detach().reshape(n * self.r, cols)
            other.lora_B.data = self.B.detach().reshape(n * self.block, self.r)
            return weight + other.merge_AB() * other.scaling

    return {
        "LoRALinear": LoRALinear,
        "merge": ref.LoRALinear.merge,  # lib's methods, as functions of a layer
        "unmerge": ref.LoRALinear.unmerge,
        "add_lora": ref.add_lora,
        "freeze_except_lora": ref.freeze_except_lora,
        "LoRAPacked": LoRAPacked,
        "lora_state_dict": ref.lora_state_dict,
    }


# ------------------------------------------------------------------------------- stand-ins and inputs
@standin("LoRALinear")
class _LoRALayer(nn.Module):
    """A LoRA layer with Part 1's attributes (base, r, alpha, scaling, A, B, dropout, merged): the stand-in
    for the student's LoRALinear while later parts are tested, so one bug in Part 1 costs points once."""

    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__()
        self.base, self.r, self.alpha, self.scaling = base, r, alpha, alpha / r
        for q in base.parameters():
            q.requires_grad_(False)
        kw = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.A = nn.Parameter(torch.empty(r, base.in_features, **kw))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, **kw))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self):
        return self.scaling * (self.B @ self.A)

    def forward(self, x):
        y = self.base(x)
        return y if self.merged else y + self.scaling * (self.dropout(x) @ self.A.T @ self.B.T)


class _Projections(nn.Module):
    """An attention layer's projections by name, as in notebook 04."""

    def __init__(self, d):
        super().__init__()
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x):
        return self.W_o(self.W_q(x) * self.W_k(x) + self.W_v(x)), None


def _linear(p, n_in, n_out, dtype=torch.float32):
    """An nn.Linear whose weight and bias come from the probe's generator (the same in both runs)."""
    layer = nn.Linear(n_in, n_out).to(dtype)
    _fill(p, layer)
    return layer


def _fill(p, module):
    with torch.no_grad():
        for q in module.parameters():
            fan_in = q.shape[-1] if q.dim() > 1 else 1
            q.copy_(p.randn(*q.shape, dtype=q.dtype) / math.sqrt(fan_in))


def _with_factors(layer, A, B, x):
    """Set the layer's A and B, then run it on x (the same A and B in both runs)."""
    with torch.no_grad():
        layer.A.copy_(A)
        layer.B.copy_(B)
    return layer(x)


@mistake
def _lora_formula(scaling, base_w, base_b, A, B, x):
    """LoRA's output with the given scaling and base weights (the mistakes pass a wrong one)."""
    return F.linear(x, base_w, base_b) + scaling * (x @ A.T @ B.T)


def _run(p, key, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, keeping what it returns (a module, a dict of tensors) here; only whether it
    raised is recorded, under ``key``, so a later check says what is wrong with the result."""
    kept = []

    def run(*a, **k):
        kept.append(fn(*a, **k))
        return True

    p.call(key, run, *args, exact=True, **kwargs)
    return kept[0] if kept else None


def _eval_with_factors(layer, A, B, x):
    layer.eval()
    return _with_factors(layer, A, B, x)


def _is_lora(module) -> bool:
    return (
        isinstance(getattr(module, "base", None), nn.Linear) and hasattr(module, "A") and hasattr(module, "B")
    )


def _own_rng(test):
    """Building modules draws from torch's global generator (their default initialisation, overwritten
    from ``p`` at once): the test leaves the notebook's generator as it found it."""

    @functools.wraps(test)
    def run(p):
        with torch.random.fork_rng(devices=[]):
            return test(p)

    return run


# ------------------------------------------------------------------------------------------- tests
def _linear_case(p, LoRALinear, n_in, n_out, r, alpha) -> bool:
    """One (in, out, r, alpha) case of test_lora_linear; False when the layer cannot be built."""
    case = f"in={n_in}, out={n_out}, r={r}, alpha={alpha}"
    base = _linear(p, n_in, n_out)
    x = p.randn(2, 3, n_in, dtype=torch.float32)
    base_out = base(x).detach()
    w0, b0 = base.weight.detach().clone(), base.bias.detach().clone()
    layer = _run(p, f"LoRALinear({case})", LoRALinear, base, r=r, alpha=alpha)
    if layer is None:
        return False
    p.call(
        f"shapes of A and B ({case})",
        lambda: (tuple(layer.A.shape), tuple(layer.B.shape)),
        exact=True,
        msg="A must have shape (r, in) and B shape (out, r)",
    )
    p.call(f"B at the start ({case})", lambda: layer.B, atol=0.0, rtol=0.0, msg=B_ZERO)
    p.call(f"output at the start ({case})", layer, x, atol=1e-5, rtol=1e-4, msg=B_ZERO)
    p.call(
        f"A is random ({case})",
        lambda: bool((layer.A != 0).any()),
        exact=True,
        msg="A must be random (kaiming_uniform_), or B's gradient is zero and nothing ever trains",
    )
    p.call(
        f"W_0 and bias frozen ({case})",
        lambda: (bool(base.weight.requires_grad), bool(base.bias.requires_grad)),
        exact=True,
        msg="W_0 and its bias must be frozen (requires_grad False): only A and B train",
    )
    p.call(f"scaling ({case})", lambda: layer.scaling, atol=1e-12, rtol=1e-12, msg=SCALING)
    p.mistake(f"scaling ({case})", f"{SCALING}; it is not alpha", lambda: float(alpha))
    A = p.randn(r, n_in, dtype=torch.float32) / math.sqrt(n_in)
    B = p.randn(n_out, r, dtype=torch.float32) / math.sqrt(r)
    key = f"output with trained A and B ({case})"
    p.call(key, _with_factors, layer, A, B, x, atol=1e-5, rtol=1e-4, msg=LORA_OUTPUT)
    p.mistake(key, f"the update is scaled by alpha: {SCALING}", _lora_formula, alpha, w0, b0, A, B, x)
    p.mistake(key, "the update lacks the scaling alpha / r", _lora_formula, 1.0, w0, b0, A, B, x)
    p.mistake(
        key,
        "the pretrained output base(x) is missing: add the update to it",
        _lora_formula,
        alpha / r,
        torch.zeros_like(w0),
        torch.zeros_like(b0),
        A,
        B,
        x,
    )
    p.mistake(key, "the update is missing: add (alpha / r) x Aᵀ Bᵀ to base(x)", lambda: base_out)
    return True


@_own_rng
def test_lora_linear(p):
    LoRALinear = p.get("LoRALinear")
    for case in LINEAR_CASES:
        if not _linear_case(p, LoRALinear, *case):
            return

    base = _linear(p, 4, 4)
    layer = _run(p, "LoRALinear with dropout", LoRALinear, base, r=2, alpha=2, dropout=0.5)
    if layer is None:
        return
    A, B, x = (
        p.randn(2, 4, dtype=torch.float32),
        p.randn(4, 2, dtype=torch.float32),
        p.randn(8, 4, dtype=torch.float32),
    )
    p.call(
        "output with dropout, in evaluation mode",
        _eval_with_factors,
        layer,
        A,
        B,
        x,
        atol=1e-5,
        rtol=1e-4,
        msg="dropout acts in training only, on the LoRA path: in eval mode the layer is base(x) + (alpha / r) x Aᵀ Bᵀ",
    )


@_own_rng
def test_merge(p):
    merge, unmerge = p.get("merge"), p.get("unmerge")
    n_in, n_out, r, alpha = 7, 6, 3, 4
    # the probe's own layer (not your LoRALinear), merged and unmerged by your functions
    layer = _LoRALayer(_linear(p, n_in, n_out, torch.float64), r=r, alpha=alpha)
    with torch.no_grad():
        layer.A.copy_(p.randn(r, n_in) / math.sqrt(n_in))
        layer.B.copy_(p.randn(n_out, r))
    w0, A, B = layer.base.weight.detach().clone(), layer.A.detach().clone(), layer.B.detach().clone()
    x = p.randn(4, n_in)

    _run(p, "merge(layer)", merge, layer)
    p.put("W after merge", layer.base.weight, atol=1e-10, rtol=1e-8, msg=MERGED)
    p.mistake("W after merge", "merge added B A without the scaling alpha / r", lambda: w0 + B @ A)
    p.mistake(
        "W after merge",
        "merge did not change W_0: add (alpha / r) B A to layer.base.weight in place",
        lambda: w0,
    )
    p.put("merged after merge", layer.merged, exact=True, msg="merge must set layer.merged = True")
    # outputs and weights go out as tensors, compared outside with lib's merge on the same layer
    p.put("output after merge", layer(x), atol=1e-8, rtol=1e-8, msg="merged and unmerged outputs must agree")
    _run(p, "merge(layer) again", merge, layer)
    p.put(
        "W after a second merge",
        layer.base.weight,
        atol=1e-10,
        rtol=1e-8,
        msg="a second merge must change nothing",
    )
    _run(p, "unmerge(layer)", unmerge, layer)
    _run(p, "unmerge(layer) again", unmerge, layer)
    p.put(
        "W after unmerging twice",
        layer.base.weight,
        atol=1e-10,
        rtol=1e-8,
        msg="unmerge (twice) must restore W_0 exactly once",
    )
    p.put("merged after unmerge", layer.merged, exact=True, msg="unmerge must set layer.merged = False")


def _adapted_names(p, add_lora, model):
    """add_lora on the query and value projections: the names it returns (None when it raised)."""
    names = p.call(
        "adapted names",
        add_lora,
        model,
        ("W_q", "W_v"),
        r=2,
        alpha=2,
        exact=True,
        msg="adapt exactly the nn.Linear layers named in target_modules (the query and value projections), "
        "in named_modules() order",
    )
    p.mistake(
        "adapted names",
        "the LoRA paper adapts the query and value projections, not the key",
        lambda: [f"enc.{i}.{w}" for i in range(3) for w in ("W_q", "W_k")],
    )
    p.mistake(
        "adapted names",
        "the LoRA paper adapts the query and value projections, not the key",
        lambda: [f"enc.{i}.{w}" for i in range(3) for w in ("W_q", "W_k", "W_v")],
    )
    return names


def _check_injection(p, model, x):
    """The LoRA layers sit in the model itself, which computes the same function right after injection."""
    p.put(
        "LoRA layers in the model",
        [n for n, m in model.named_modules() if _is_lora(m)],
        exact=True,
        msg="replace the layers in the model itself (setattr on the parent), with LoRALinear",
    )
    p.call(
        "output right after injection",
        lambda: model["enc"][2](x)[0],
        atol=1e-5,
        rtol=1e-4,
        msg="the model must compute the same function right after injection",
    )


def _check_freezing(p, freeze_except_lora, model):
    """freeze_except_lora(model, ("head",)): its counts, and which parameters still train."""
    counts = p.call(
        "freeze_except_lora",
        freeze_except_lora,
        model,
        ("head",),
        exact=True,
        msg="return (trainable, total) parameter counts; only A, B and the head may train",
    )
    trainable = sorted(n for n, q in model.named_parameters() if q.requires_grad)
    p.put("trainable parameters", trainable, exact=True, msg="only LoRA's A and B and the head may train")
    lora_only = sorted(n for n in trainable if n.rpartition(".")[2] in ("A", "B"))
    p.mistake(
        "trainable parameters",
        "the new head must train too: keep every parameter of the modules in `trainable` trainable",
        lambda: lora_only,
    )
    p.mistake(
        "freeze_except_lora",
        "the new head must train too: keep every parameter of the modules in `trainable` trainable",
        lambda: (sum(q.numel() for n, q in model.named_parameters() if n in lora_only), counts[1]),
    )


@_own_rng
def test_add_lora(p):
    add_lora, freeze_except_lora = p.get("add_lora"), p.get("freeze_except_lora")
    with p.standin("LoRALinear", _LoRALayer):  # a mistake in Part 1 costs points there only
        d = 8
        model = nn.ModuleDict(
            {"enc": nn.ModuleList(_Projections(d) for _ in range(3)), "head": nn.Linear(d, 2)}
        )
        _fill(p, model)
        x = p.randn(2, 4, d, dtype=torch.float32)
        if _adapted_names(p, add_lora, model) is None:
            return
        _check_injection(p, model, x)
        _check_freezing(p, freeze_except_lora, model)


def _check_packed_start(p, packed, w):
    """The packed layer right after construction: shapes, an unchanged weight, random A."""
    p.call(
        "shapes of A and B",
        lambda: (tuple(packed.A.shape), tuple(packed.B.shape)),
        exact=True,
        msg="A must have shape (n, r, D_in) and B (n, D_out_block, r), one per enabled block",
    )
    p.call(
        "the packed weight at the start",
        packed,
        w,
        atol=0.0,
        rtol=0.0,
        msg="B = 0: the packed weight starts unchanged",
    )
    p.call(
        "A is random",
        lambda: bool((packed.A != 0).any()),
        exact=True,
        msg="each A must be random (kaiming_uniform_, as in Part 1), or B's gradient is zero",
    )


@mistake
def _packed_unscaled(w, A, B, D):
    """The packed weight with enable=(True, False, True) and B_j A_j added without alpha / r."""
    return torch.cat([w[:D] + B[0] @ A[0], w[D : 2 * D], w[2 * D :] + B[1] @ A[1]])


def _check_packed_adapted(p, packed, w, bias, D, r) -> bool:
    """The packed weight with trained A and B (enable=(True, False, True)); False when it raised."""
    A, B = p.randn(2, r, D, dtype=torch.float32) / math.sqrt(D), p.randn(2, D, r, dtype=torch.float32)
    adapted = _run(p, "packed(weight) with trained A and B", _with_factors, packed, A, B, w)
    if adapted is None:
        return False
    p.call(
        "key block",
        lambda: adapted[D : 2 * D],
        atol=1e-6,
        rtol=1e-6,
        msg="the key block (rows D:2D) changed: adapt the query and value blocks only, as enable=(True, False, True) says",
    )
    key = "adapted weight"
    msg = "the adapted weight differs from loralib.MergedLinear(enable_lora=[True, False, True]) with the same A and B"
    p.put(key, adapted, atol=1e-5, rtol=1e-4, msg=msg)
    p.mistake(key, "the update lacks the scaling alpha / r", _packed_unscaled, w, A, B, D)
    x = p.randn(2, 5, D, dtype=torch.float32)
    p.call(
        "projection with the adapted weight",
        lambda: F.linear(x.to(adapted.dtype), adapted, bias.to(adapted.dtype)),
        atol=1e-4,
        rtol=1e-4,
        msg=msg,
    )
    return True


def _check_packed_enable(p, LoRAPacked):
    """A small packed layer with enable=(False, True): only the enabled block changes."""
    small = _run(
        p,
        "LoRAPacked(enable=(False, True))",
        LoRAPacked,
        torch.zeros(8, 3),
        r=1,
        alpha=1,
        enable=(False, True),
    )
    if small is None:
        return
    A, B, w = (
        p.randn(1, 1, 3, dtype=torch.float32),
        p.randn(1, 4, 1, dtype=torch.float32),
        p.randn(8, 3, dtype=torch.float32),
    )
    p.call(
        "adapted weight, enable=(False, True)",
        _with_factors,
        small,
        A,
        B,
        w,
        atol=1e-5,
        rtol=1e-4,
        msg="only the enabled blocks change, each by (alpha / r) B_j A_j, for any enable",
    )


@_own_rng
def test_lora_packed(p):
    LoRAPacked = p.get("LoRAPacked")
    D, r, alpha = 12, 2, 4
    w = p.randn(3 * D, D, dtype=torch.float32) / math.sqrt(D)
    bias = p.randn(3 * D, dtype=torch.float32)
    packed = _run(p, "LoRAPacked(weight, r, alpha)", LoRAPacked, w, r=r, alpha=alpha)
    if packed is None:
        return
    _check_packed_start(p, packed, w)
    if not _check_packed_adapted(p, packed, w, bias, D, r):
        return
    _check_packed_enable(p, LoRAPacked)


@_own_rng
def test_adapter(p):
    lora_state_dict = p.get("lora_state_dict")
    d = 8
    model = nn.ModuleDict({"enc": _Projections(d), "head": nn.Linear(d, 2), "header": nn.Linear(2, 2)})
    model["enc"].W_q, model["enc"].W_v = (
        _LoRALayer(model["enc"].W_q, 2, 2),
        _LoRALayer(model["enc"].W_v, 2, 2),
    )
    _fill(p, model)
    state = model.state_dict()
    adapter = _run(p, "lora_state_dict(model, extra=('head',))", lora_state_dict, model, extra=("head",))
    if adapter is None:
        return
    keys = sorted(adapter) if isinstance(adapter, dict) else None
    p.put(
        "adapter keys",
        keys,
        exact=True,
        msg="the adapter holds LoRA's A and B and the head; 'header' is not 'head'",
    )
    p.mistake(
        "adapter keys",
        "the adapter keeps every weight of the model: keep only LoRA's A and B and the modules in extra",
        lambda: sorted(state),
    )
    p.mistake(
        "adapter keys",
        "the adapter must keep the new head too (the modules in extra)",
        lambda: sorted(k for k in state if k.rpartition(".")[2] in ("A", "B")),
    )
    p.mistake(
        "adapter keys",
        "'header' is not 'head': match the module name followed by a dot",
        lambda: sorted(k for k in state if k.rpartition(".")[2] in ("A", "B") or k.startswith("head")),
    )
    if keys is not None:
        p.put(
            "adapter tensors",
            {k: v for k, v in adapter.items() if k in state},
            msg="the adapter's tensors must be the model's own values",
        )

    # the visible check's layout: parameters named A and B on a plain layer, and a head called "heads"
    plain = nn.ModuleDict({"attn": nn.Linear(4, 4), "heads": nn.Linear(4, 2)})
    plain["attn"].register_parameter("A", nn.Parameter(torch.zeros(1, 4)))
    plain["attn"].register_parameter("B", nn.Parameter(torch.zeros(4, 1)))
    _fill(p, plain)
    p.call(
        "adapter keys, extra=('heads',)",
        lambda: sorted(lora_state_dict(plain, extra=("heads",))),
        exact=True,
        msg="keep the LoRA tensors and the head; leave out the frozen pretrained weights",
    )

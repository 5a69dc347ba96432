"""Probes for notebook 04's hidden tests (split and merge heads, shapes, multi-head attention).

Vaswani et al. (2017), Section 3.2.2: MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_o with
head_i = Attention(Q W_q^i, K W_k^i, V W_v^i) and d_k = d_model / h. The expected values of
multi-head attention come from torch's nn.MultiheadAttention with the same weights (outside only).
"""

import math

import torch

from course.grading import mistake, standin

SPLIT_CASES = [(1, 5, 768, 12), (3, 7, 10, 5), (2, 1, 8, 8)]  # (B, N, D, h)
MERGE_CASES = [(1, 12, 5, 64), (3, 5, 7, 2), (2, 1, 4, 6)]  # (B, h, N, d_k)
MHA_CASES = [(2, 5, 7, 12, 3), (1, 9, 9, 32, 8), (3, 4, 6, 10, 1)]  # (B, N, M, D, h)
SHAPES = ("per_head_qkv_shape", "attention_matrix_shape", "per_head_output_shape", "merged_output_shape")

SPLIT = (
    "head i of token n must be features i*d_k .. (i+1)*d_k - 1 of that token, in the layout (B, h, N, d_k)"
)
MERGE = "merge_heads must be the Concat: features i*d_k .. (i+1)*d_k - 1 of token n from head i, token n"
WEIGHTS = (
    "per-head weights differ from nn.MultiheadAttention's (B, h, N, M) weights with the same W_q, W_k, W_v"
)
OUTPUT = "output differs from nn.MultiheadAttention: check merge_heads and W_o"


def reference() -> dict:
    """lib's objects under the notebook's names (outside the sandbox only)."""
    import lib.mha as ref

    mha = ref.MultiHeadAttention(768, 12)
    with torch.no_grad():
        out, w = mha(torch.zeros(1, 5, 768))
    return {
        "split_heads": ref.split_heads,
        "merge_heads": ref.merge_heads,
        "multi_head_attention": _torch_multi_head_attention,
        "per_head_qkv_shape": (1, 5, 12, 64),
        "attention_matrix_shape": tuple(w.shape),
        "per_head_output_shape": (1, 5, 12, 64),
        "merged_output_shape": tuple(out.shape),
    }


@standin("multi_head_attention")  # reference()'s, reached by no test: never in a kernel
def _torch_multi_head_attention(query, key, value, W_q, W_k, W_v, W_o, h, mask=None):
    """torch's nn.MultiheadAttention with the packed weights of W_q, W_k, W_v and W_o (the reference)."""
    B, N, D = query.shape
    M = key.shape[1]
    with torch.random.fork_rng(devices=[]):  # its initialisation must not move the notebook's RNG
        torch_mha = torch.nn.MultiheadAttention(D, h, batch_first=True, dtype=W_q.weight.dtype)
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([W_q.weight, W_k.weight, W_v.weight]))
        torch_mha.in_proj_bias.copy_(torch.cat([W_q.bias, W_k.bias, W_v.bias]))
        torch_mha.out_proj.weight.copy_(W_o.weight)
        torch_mha.out_proj.bias.copy_(W_o.bias)
        blocked = None  # torch's attn_mask marks the positions that may NOT attend
        if mask is not None:
            blocked = (~mask).expand(B, h, N, M).reshape(B * h, N, M)
        return torch_mha(query, key, value, attn_mask=blocked, average_attn_weights=False)


# ----------------------------------------------------------- stand-ins for the earlier parts, mistakes
@standin("scaled_dot_product_attention")
def _attention(q, k, v, mask=None):
    """The stand-in for Part 0's function while multi-head attention is tested."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


@standin("split_heads")
def _split(x, h):
    B, N, D = x.shape
    return x.view(B, N, h, D // h).transpose(1, 2)


@standin("merge_heads")
def _merge(x):
    B, h, N, d_k = x.shape
    return x.transpose(1, 2).reshape(B, N, h * d_k)


@mistake
def _split_without_transpose(x, h):
    B, N, D = x.shape
    return x.reshape(B, h, N, D // h)


@mistake
def _split_features_transposed(x, h):
    B, N, D = x.shape
    return x.reshape(B, N, D // h, h).permute(0, 3, 1, 2)


@mistake
def _merge_without_transpose(x):
    B, h, N, d_k = x.shape
    return x.reshape(B, N, h * d_k)


@mistake
def _merge_interleaved(x):
    B, h, N, d_k = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, N, h * d_k)


@standin("multi_head_attention")  # the mistakes' base, never in a kernel: no test reaches it
def _mha(
    query, key, value, W_q, W_k, W_v, W_o, h, mask=None, keys_with=None, project_out=True, use_mask=True
):
    q, k, v = _split(W_q(query), h), _split((keys_with or W_k)(key), h), _split(W_v(value), h)
    out, weights = _attention(q, k, v, mask if use_mask else None)
    merged = _merge(out)
    return (W_o(merged) if project_out else merged), weights


def _weights_of(fn):
    return lambda *args, **kwargs: fn(*args, **kwargs)[1]


def _output_of(fn):
    return lambda *args, **kwargs: fn(*args, **kwargs)[0]


# ---------------------------------------------------------------------------------------- the tests
def test_split_heads(p):
    split_heads = p.get("split_heads")
    for B, N, D, h in SPLIT_CASES:
        x = p.randn(B, N, D)
        key = f"split_heads, (B, N, D, h) = {(B, N, D, h)}"
        p.call(key, split_heads, x, h, msg=SPLIT)
        p.mistake(
            key,
            "split_heads cuts (B, N, D) straight into (B, h, N, d_k), mixing tokens: "
            "view as (B, N, h, d_k), then move the heads in front with a transpose",
            _split_without_transpose,
            x,
            h,
        )
        p.mistake(
            key,
            "split_heads cuts each token into (d_k, h) instead of (h, d_k): head i must own the "
            "consecutive features i*d_k .. (i+1)*d_k - 1",
            _split_features_transposed,
            x,
            h,
        )


def test_merge_heads(p):
    merge_heads = p.get("merge_heads")
    for B, h, N, d_k in MERGE_CASES:
        x = p.randn(B, h, N, d_k)
        # the same values, laid out as split_heads leaves them (a transposed view, not contiguous); built
        # here without the merge_heads stand-in, which this test must not reach
        split = x.transpose(1, 2).contiguous().transpose(1, 2)
        for key, heads in (
            (f"merge_heads, (B, h, N, d_k) = {(B, h, N, d_k)}", x),
            (f"merge_heads(split_heads(x)), (B, h, N, d_k) = {(B, h, N, d_k)}", split),
        ):
            msg = (
                MERGE if heads is x else "merge_heads must invert split_heads (its output is not contiguous)"
            )
            p.call(key, merge_heads, heads, msg=msg)
            p.mistake(
                key,
                "merge_heads reshapes (B, h, N, d_k) straight to (B, N, h*d_k), mixing tokens: "
                "transpose before reshaping",
                _merge_without_transpose,
                heads,
            )
            p.mistake(
                key,
                "merge_heads interleaves the heads' features: Concat puts head i's d_k features "
                "side by side, (B, N, h, d_k) -> (B, N, h*d_k)",
                _merge_interleaved,
                heads,
            )


def test_shape_answers(p):
    wrong = {
        "per_head_qkv_shape": (
            (1, 12, 5, 64),
            "per_head_qkv_shape is the layout after the heads are moved in front: the question asks "
            "before, (batch, token, head, head dimension)",
        ),
        "attention_matrix_shape": (
            (1, 5, 5),
            "attention_matrix_shape: every head has its own (N, N) attention matrix",
        ),
    }
    for name in SHAPES:
        value = p.get(name)
        p.put(name, value, exact=True, msg=f"{name} is not the shape of that tensor")
        p.put(
            f"{name} is a tuple of ints",
            isinstance(value, tuple) and all(isinstance(s, int) for s in value),
            exact=True,
            msg=f"{name} should be a tuple of ints",
        )
        if name in wrong:
            p.mistake(name, wrong[name][1], lambda v=wrong[name][0]: v)


def _linears(p, D):
    """Four nn.Linear(D, D) in float64 with weights from the probe's generator (not torch's RNG)."""
    out = []
    for _ in range(4):
        W = torch.nn.utils.skip_init(torch.nn.Linear, D, D, dtype=torch.float64)
        with torch.no_grad():
            W.weight.copy_(p.randn(D, D) / math.sqrt(D))
            W.bias.copy_(0.1 * p.randn(D))
        out.append(W)
    return out


def _check(p, multi_head_attention, key, msg, args, weights=True, output=True, mistakes=()):
    """The weights and the output of one call on ``args``, each under its own key, with the mistakes'."""
    for part, wanted, of in (("weights", weights, _weights_of), ("output", output, _output_of)):
        if not wanted:
            continue
        p.call(f"{part}, {key}", of(multi_head_attention), *args, msg=msg[part])
        for message, fn in mistakes:
            p.mistake(f"{part}, {key}", message, of(fn), *args)


@mistake
def _mha_without_w_o(*a, **k):
    return _mha(*a, **k, project_out=False)


@mistake
def _mha_keys_with_w_q(*a, **k):
    return _mha(*a, **k, keys_with=a[3])


@mistake
def _mha_mask_dropped(*a, **k):
    return _mha(*a, **k, use_mask=False)


NO_W_O = (
    "the output differs from nn.MultiheadAttention: apply the output projection W_o to the merged heads",
    _mha_without_w_o,
)
KEYS_WITH_W_Q = (
    "per-head weights differ from nn.MultiheadAttention's: project the keys with W_k (and the values with W_v)",
    _mha_keys_with_w_q,
)
MASK_DROPPED = (
    "the mask is not passed on: give it to scaled_dot_product_attention",
    _mha_mask_dropped,
)
CAUSAL = {"output": "causal mask: the output differs from nn.MultiheadAttention with the same mask"}
PADDING = {"output": "padding mask: the output differs from nn.MultiheadAttention with the same mask"}


def _mha_case(p, multi_head_attention, B, N, M, D, h):
    """One case of MHA_CASES: cross-attention, the averaged weights, causal self-attention, padding."""
    W = _linears(p, D)
    q, kv = p.randn(B, N, D), p.randn(B, M, D)
    case = f"(B, N, M, D, h) = {(B, N, M, D, h)}"
    plain = {"weights": WEIGHTS, "output": OUTPUT}
    cross = (q, kv, kv, *W, h)
    _check(
        p, multi_head_attention, f"cross-attention, {case}", plain, cross, mistakes=(NO_W_O, KEYS_WITH_W_Q)
    )
    p.call(
        f"weights averaged over the heads, {case}",
        lambda *a: multi_head_attention(*a)[1].mean(1),
        *cross,
        msg="averaged over the heads, the weights must match nn.MultiheadAttention's default",
    )
    masked = dict(weights=False, mistakes=(MASK_DROPPED, NO_W_O))
    if N == M:  # causal self-attention
        allowed = torch.ones(N, N, dtype=torch.bool).tril()
        _check(
            p,
            multi_head_attention,
            f"causal self-attention, {case}",
            CAUSAL,
            (q, q, q, *W, h, allowed),
            **masked,
        )
    lengths = p.randint(1, M + 1, (B,))
    real = (torch.arange(M)[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, M)
    _check(p, multi_head_attention, f"padding mask, {case}", PADDING, (*cross, real), **masked)


def test_multi_head_attention(p):
    multi_head_attention = p.get("multi_head_attention")
    with (
        p.standin("scaled_dot_product_attention", _attention),  # one bug in an earlier part costs points once
        p.standin("split_heads", _split),
        p.standin("merge_heads", _merge),
    ):
        for B, N, M, D, h in MHA_CASES:
            _mha_case(p, multi_head_attention, B, N, M, D, h)

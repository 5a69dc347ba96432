"""Probes for notebook 03's hidden tests (scaled dot-product attention, causal mask, self-attention).

Vaswani et al. (2017), eq. 1: Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(d_k)) V.
"""

import math

import torch

from course.grading import mistake, standin

CASES = [((), 5, 7, 3, 2), ((2,), 4, 9, 8, 5), ((2, 3), 6, 4, 16, 7), ((1, 2, 2), 3, 3, 5, 1)]
ATTENTION = "attention differs from softmax(q kᵀ / sqrt(d_k)) v over the keys"


def reference() -> dict:
    """lib's objects under the notebook's names (outside the sandbox only)."""
    import lib.attention as ref

    query = torch.tensor([0.6, 0.2, -0.7, 0.3])
    keys = torch.tensor([[1.0, -0.2, 0.1, -2.0], [0.7, 0.3, -1.1, 0.2], [-1.1, 0.1, 0.3, 1.1]])
    values = torch.tensor([[220.0, 35.0, 7.0], [40.0, 107.0, 50.0], [0.0, 0.0, 127.0]])
    scores = keys @ query
    colour, weights = ref.scaled_dot_product_attention(query[None], keys, values)
    x, W = torch.zeros(6, 768), torch.zeros(768, 768)
    out, w = ref.self_attention(x, W, W, W)
    return {
        "scaled_dot_product_attention": ref.scaled_dot_product_attention,
        "causal_mask": ref.causal_mask,
        "self_attention": ref.self_attention,
        **dict(query=query, keys=keys, values=values, scores=scores, scaled=scores / math.sqrt(4)),
        **dict(weights=weights[0], colour=colour[0]),
        **dict(Q_shape=(6, 768), K_shape=(6, 768), V_shape=(6, 768)),
        **dict(QKt_shape=tuple(w.shape), output_shape=tuple(out.shape)),
    }


@standin("scaled_dot_product_attention")
def _attention(q, k, v, mask=None):
    """The stand-in for Part 1's function while later parts are tested (and the mistakes' base)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


@mistake
def _unscaled(q, k, v, mask=None):
    return _attention(q * math.sqrt(q.shape[-1]), k, v, mask)


@mistake
def _softmax_over_queries(q, k, v, mask=None):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-2)
    return weights @ v, weights


@mistake
def _mask_after_softmax(q, k, v, mask):
    _, weights = _attention(q, k, v)
    weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


@mistake
def _mask_flipped(q, k, v, mask):
    return _attention(q, k, v, ~mask)  # a row with every key allowed becomes NaN, as the mistake gives


@mistake
def _mask_flipped_guarded(q, k, v, mask):
    return _attention(q, k, v, ~mask | (mask.sum(-1, keepdim=True) == mask.shape[-1]))


UNSCALED = "the scores look unscaled: divide q kᵀ by sqrt(d_k) (the 1/sqrt(d_k) scaling)"
OVER_QUERIES = "the softmax runs over the queries: normalise over the keys (dim=-1)"
MASK_AFTER = "the mask is applied after the softmax: fill masked scores with -inf before it"
MASK_FLIPPED = "the mask is the wrong way round: True means 'may attend'"


def test_scaled_dot_product_attention(p):
    attention = p.get("scaled_dot_product_attention")
    for lead, N, M, d_k, d_v in CASES:
        q, k, v = p.randn(*lead, N, d_k), p.randn(*lead, M, d_k), p.randn(*lead, M, d_v)
        mask = p.rand(*lead, N, M) < 0.6
        mask[..., 0] = True  # every query keeps at least one key
        _attention_case(p, attention, lead, q, k, v, mask)
    x = p.randn(2, 4, 6, 8)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    msg = "causal attention: later tokens must get weight 0"
    p.call("causal self-attention", attention, x, x, x, causal, msg=msg)


def _attention_case(p, attention, lead, q, k, v, mask):
    key = f"attention, leading dims {lead}"
    p.call(key, attention, q, k, v, msg=ATTENTION)
    p.mistake(key, UNSCALED, _unscaled, q, k, v)
    p.mistake(key, OVER_QUERIES, _softmax_over_queries, q, k, v)
    key = f"masked attention, leading dims {lead}"
    p.call(key, attention, q, k, v, mask, msg="masked positions (mask False) must get weight 0")
    p.mistake(key, MASK_AFTER, _mask_after_softmax, q, k, v, mask)
    p.mistake(key, MASK_FLIPPED, _mask_flipped, q, k, v, mask)
    p.mistake(key, MASK_FLIPPED, _mask_flipped_guarded, q, k, v, mask)
    msg = "a (N, M) mask must broadcast over the leading dimensions"
    p.call(f"(N, M) mask over leading dims {lead}", attention, q, k, v, mask[(0,) * len(lead)], msg=msg)


def test_causal_mask(p):
    causal_mask = p.get("causal_mask")
    for n in (1, 2, 5, int(p.randint(6, 40))):
        p.call(
            f"causal_mask({n})",
            causal_mask,
            n,
            exact=True,
            msg="causal_mask(n) must be True on and below the diagonal, a boolean (n, n) tensor",
        )


def test_worked_example(p):
    given = "the lecture's query, keys and values were changed: run the data cell again"
    for name in ("query", "keys", "values"):
        p.put(name, p.get(name), msg=given)
    p.put(
        "scores",
        p.get("scores"),
        atol=1e-5,
        msg="the scores should be the dot products of the query with each key",
    )
    p.put("scaled", p.get("scaled"), atol=1e-5, msg="scaled should be scores / sqrt(d_k) = scores / 2")
    p.put(
        "weights",
        p.get("weights"),
        atol=1e-5,
        msg="the weights differ from softmax(scores / sqrt(d_k)) over the three keys",
    )
    p.put(
        "colour",
        p.get("colour"),
        atol=1e-3,
        msg="the colour differs from weights @ values, the weighted mix of the three colours",
    )


def test_self_attention(p):
    self_attention = p.get("self_attention")
    for lead, n, d, d_k, d_v in [((), 6, 12, 4, 3), ((3,), 7, 5, 8, 2), ((2, 2), 3, 9, 1, 6)]:
        x = p.randn(*lead, n, d)
        W = [p.randn(d, s) for s in (d_k, d_k, d_v)]
        for mask in (None, torch.ones(n, n, dtype=torch.bool).tril()):
            where = "mask=causal" if mask is not None else "no mask"
            key = f"self-attention, leading dims {lead}, {where}"
            msg = f"output differs from attention on x W_q, x W_k, x W_v ({where})"
            with p.standin("scaled_dot_product_attention", _attention):  # one bug in Part 1 costs points once
                p.call(key, self_attention, x, *W, mask=mask, msg=msg)


def test_shape_answers(p):
    for name in ("Q_shape", "K_shape", "V_shape", "QKt_shape", "output_shape"):
        p.put(name, p.get(name), exact=True, msg=f"{name} is not the shape of that tensor")

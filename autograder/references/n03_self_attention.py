"""Reference values for notebook 03's hidden tests (lib.attention)."""

import torch

import lib.attention as ref


def test_scaled_dot_product_attention():
    g = torch.Generator().manual_seed(328)
    cases = []
    for lead, N, M, d_k, d_v in [
        ((), 5, 7, 3, 2),
        ((2,), 4, 9, 8, 5),
        ((2, 3), 6, 4, 16, 7),
        ((1, 2, 2), 3, 3, 5, 1),
    ]:
        q = torch.randn(*lead, N, d_k, generator=g, dtype=torch.float64)
        k = torch.randn(*lead, M, d_k, generator=g, dtype=torch.float64)
        v = torch.randn(*lead, M, d_v, generator=g, dtype=torch.float64)
        mask = torch.rand(*lead, N, M, generator=g) < 0.6
        mask[..., 0] = True  # every query keeps at least one key
        mask_2d = mask[(0,) * len(lead)]  # (N, M), to broadcast over the leading dimensions
        cases.append(
            dict(
                lead=lead,
                q=q,
                k=k,
                v=v,
                expected=ref.scaled_dot_product_attention(q, k, v),
                mask=mask,
                masked=ref.scaled_dot_product_attention(q, k, v, mask),
                mask_2d=mask_2d,
                broadcast=ref.scaled_dot_product_attention(q, k, v, mask_2d)[0],
            )
        )
    x = torch.randn(2, 4, 6, 8, generator=g, dtype=torch.float64)
    return dict(cases=cases, x=x, causal=ref.causal_mask(6))


def test_causal_mask():
    return [(n, ref.causal_mask(n)) for n in (1, 2, 5, 17)]


def test_worked_example():
    # the lecture's example: which of dog, forest, sky does the query about the environment attend to
    query = torch.tensor([0.6, 0.2, -0.7, 0.3])
    keys = torch.tensor([[1.0, -0.2, 0.1, -2.0], [0.7, 0.3, -1.1, 0.2], [-1.1, 0.1, 0.3, 1.1]])
    values = torch.tensor([[220.0, 35.0, 7.0], [40.0, 107.0, 50.0], [0.0, 0.0, 127.0]])
    out, w = ref.scaled_dot_product_attention(query[None], keys, values)
    return dict(query=query, keys=keys, values=values, weights=w[0], colour=out[0])


def test_self_attention():
    g = torch.Generator().manual_seed(4)
    cases = []
    for lead, n, d, d_k, d_v in [((), 6, 12, 4, 3), ((3,), 7, 5, 8, 2), ((2, 2), 3, 9, 1, 6)]:
        x = torch.randn(*lead, n, d, generator=g, dtype=torch.float64)
        W = [torch.randn(d, s, generator=g, dtype=torch.float64) for s in (d_k, d_k, d_v)]
        for mask in (None, ref.causal_mask(n)):
            cases.append(dict(x=x, W=W, mask=mask, expected=ref.self_attention(x, *W, mask=mask)))
    return cases


def test_shape_answers():
    x, W = torch.zeros(6, 768), torch.zeros(768, 768)
    out, w = ref.self_attention(x, W, W, W)
    return {
        "Q_shape": (6, 768),
        "K_shape": (6, 768),
        "V_shape": (6, 768),
        "QKt_shape": tuple(w.shape),
        "output_shape": tuple(out.shape),
    }

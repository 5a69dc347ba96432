"""Reference values for notebook 01's hidden tests (lib.embeddings)."""

import torch

import lib.embeddings as ref


def test_tokenize():
    texts = [
        "Hello, World!",
        "It's 3 o'clock -- isn't it?",
        "UPPER lower MiXeD",
        "  spaced   out\n\tlines ",
        "...",
        "rock'n'roll",
    ]
    return [(t, ref.tokenize(t)) for t in texts]


def test_build_vocab():
    cases = [
        ([["the", "cat", "the", "hat"], ["cat", "sat"]], {}),
        ([["the", "cat", "the", "hat"], ["cat", "sat"]], {"min_count": 2}),
        ([["x", "y"], ["y", "z", "z"]], {"unk": "<unk>"}),
        ([["x", "y"], ["y", "z", "z"]], {"unk": "<unk>", "min_count": 2}),
        ([[], ["solo"]], {}),
    ]
    out = []
    for sents, kw in cases:
        vocab = ref.build_vocab(sents, **kw)
        out.append((sents, kw, list(vocab.itos), dict(vocab.stoi)))
    return out


def test_one_hot():
    g = torch.Generator().manual_seed(0)
    out = []
    for shape, V in [((5,), 7), ((3, 4), 10), ((2, 1, 6), 3), ((), 5)]:
        ids = torch.randint(0, V, shape, generator=g)
        W = torch.randn(V, 4, generator=g)
        out.append((ids, V, ref.one_hot(ids, V), W))
    return out


def test_skipgram_pairs():
    g = torch.Generator().manual_seed(2)
    out = []
    for n, window in [(1, 2), (2, 1), (10, 2), (30, 5), (4, 10)]:
        ids = torch.randint(0, 50, (n,), generator=g)
        out.append((ids, window, ref.skipgram_pairs(ids, window)))
    return out


def test_sgns_loss():
    g = torch.Generator().manual_seed(3)
    out = []
    for B, K, d in [(4, 5, 8), (1, 1, 3), (16, 10, 32)]:
        v_c, u_o, u_neg = (
            torch.randn(B, d, generator=g),
            torch.randn(B, d, generator=g),
            torch.randn(B, K, d, generator=g),
        )
        out.append((v_c, u_o, u_neg, ref.sgns_loss(v_c, u_o, u_neg)))
    return out

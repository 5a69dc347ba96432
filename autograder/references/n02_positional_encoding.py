"""Reference values for notebook 02's hidden tests (lib.positional)."""

import lib.positional as ref


def test_sinusoidal_encoding():
    return [(n, d, ref.sinusoidal_encoding(n, d)) for n, d in [(7, 10), (50, 64), (9, 5), (3, 1), (128, 33)]]


def test_vit_positional_encoding():
    return [(n, d, ref.vit_positional_encoding(n, d)) for n, d in [(10, 8), (5, 7), (17, 16)]]


def test_split_encoding():
    return [(n, d, ref.split_sinusoidal_encoding(n, d)) for n, d in [(3, 2), (20, 30), (64, 128)]]


def test_shift_matrix():
    # M_k, and the table it must shift: P[:40] @ M_k == P[k:]
    return [
        (k, d, ref.shift_matrix(k, d), ref.sinusoidal_encoding(40 + k, d))
        for k, d in [(1, 4), (5, 32), (17, 10), (0, 6)]
    ]

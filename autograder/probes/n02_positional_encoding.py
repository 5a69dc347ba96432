"""Probes for notebook 02's hidden tests (sinusoidal positional encodings and the shift matrix).

Vaswani et al. (2017), section 3.5: PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(same).
The ViT lecture's per-entry form p(i, j) is the same table; the split variant puts the sines first
(d_m = d / 2); a shift by k positions is one block-diagonal rotation, P[pos + k] = P[pos] @ M_k.
"""

import math

import torch

from course.grading import mistake, standin

SINUSOIDAL = (
    "the table differs from PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))"
)
VIT = "the table differs from the per-entry formula: sin(i / 10000^(j/d)) for even j, cos(i / 10000^((j-1)/d)) for odd j"
SPLIT = "the split table differs: column i is sin(pos / 10000^(i / d_m)), column d_m + i its cosine, with d_m = d / 2"
SHIFT = "M_k differs: each 2 x 2 block rotates one (sin, cos) column pair by the angle ω_i k, ω_i = 1 / 10000^(2i/d)"


def reference() -> dict:
    """lib's objects under the notebook's names (outside the sandbox only)."""
    import lib.positional as ref

    return {
        "sinusoidal_encoding": ref.sinusoidal_encoding,
        "vit_positional_encoding": ref.vit_positional_encoding,
        "split_sinusoidal_encoding": ref.split_sinusoidal_encoding,
        "shift_matrix": ref.shift_matrix,
    }


# ----------------------------------------------------------------------------- the interleaved table
@standin("sinusoidal_encoding")
def _table(n, d, exponent, first=torch.sin, second=torch.cos, start=0):
    """An interleaved table whose column pair i uses the frequency 1 / 10000^exponent(i) (the mistakes' base).

    With exponent 2i/d it is sinusoidal_encoding itself: a kernel gets it only with _sinusoidal (the shift test)."""
    pos = torch.arange(start, start + n, dtype=torch.float64)[:, None]
    i = torch.arange((d + 1) // 2, dtype=torch.float64)
    angle = pos / 10000 ** exponent(i, d)
    P = torch.empty(n, d, dtype=torch.float64)
    P[:, 0::2] = first(angle)
    P[:, 1::2] = second(angle[:, : d // 2])
    return P


@standin("sinusoidal_encoding")
def _sinusoidal(n, d):
    """The correct table in float64: an input of the shift test (after the table's own tests are sealed)."""
    return _table(n, d, lambda i, d: 2 * i / d)


@mistake
def _pair_index(n, d):
    return _table(n, d, lambda i, d: i / d)


@mistake
def _swapped(n, d):
    return _table(n, d, lambda i, d: 2 * i / d, first=torch.cos, second=torch.sin)


@mistake
def _from_one(n, d):
    return _table(n, d, lambda i, d: 2 * i / d, start=1)


@mistake
def _odd_columns_use_j(n, d):
    """cos(i / 10000^(j/d)) in odd column j = 2i + 1: the exponent of the next column pair's sine."""
    P = _sinusoidal(n, d)
    j = torch.arange(1, d, 2, dtype=torch.float64)
    P[:, 1::2] = torch.cos(torch.arange(n, dtype=torch.float64)[:, None] / 10000 ** (j / d))
    return P


def test_sinusoidal_encoding(p):
    sinusoidal_encoding = p.get("sinusoidal_encoding")
    cases = [(5, 10), (2, 4), (7, 10), (50, 64), (9, 5), (3, 1), (128, 33)]
    cases.append((int(p.randint(1, 100)), int(p.randint(1, 70))))
    for n, d in cases:
        key = f"sinusoidal_encoding({n}, {d})"
        p.call(key, sinusoidal_encoding, n, d, atol=1e-5, msg=SINUSOIDAL)
        for message, fn in [
            ("column pair 0 is sin(pos), cos(pos): sines in the even columns, cosines in the odd ones", _swapped),
            ("the exponent is 2i/d: use the even column index 2i, not the pair index i", _pair_index),
            ("positions are counted from 0: row 0 is sin 0 = 0, cos 0 = 1", _from_one),
            ("the cosine in column 2i+1 shares the frequency of the sine in column 2i (exponent 2i/d)", _odd_columns_use_j),
        ]:  # fmt: skip
            p.mistake(key, message, fn, n, d)


def test_vit_positional_encoding(p):
    vit_positional_encoding = p.get("vit_positional_encoding")
    cases = [(4, 6), (2, 4), (10, 8), (5, 7), (17, 16), (17, 12)]
    cases.append((int(p.randint(1, 20)), int(p.randint(1, 20))))
    for n, d in cases:
        key = f"vit_positional_encoding({n}, {d})"
        p.call(key, vit_positional_encoding, n, d, atol=1e-5, msg=VIT)
        for message, fn in [
            ("odd columns use the exponent (j - 1)/d: the cosine in column j shares the frequency of the sine in column j - 1", _odd_columns_use_j),
            ("patches are counted from 0: p(0, j) is sin 0 = 0 for even j, cos 0 = 1 for odd j", _from_one),
            ("column pair 0 is sin, cos: sines in the even columns j, cosines in the odd ones", _swapped),
        ]:  # fmt: skip
            p.mistake(key, message, fn, n, d)


# -------------------------------------------------------------------------------- the split variant
@mistake
def _interleaved(n, d):
    """The interleaved table where the split one is asked for (its own mistake: _sinusoidal is a stand-in)."""
    return _sinusoidal(n, d)


@standin("split_sinusoidal_encoding")
def _split(n, d, divisor):
    """The split table with exponent i / divisor(d) (the mistakes' base; with d / 2 a solution)."""
    d_m = d // 2
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    angle = pos / 10000 ** (torch.arange(d_m, dtype=torch.float64) / divisor(d))
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


@mistake
def _split_over_d(n, d):
    return _split(n, d, lambda d: d)


@mistake
def _split_over_d_minus_1(n, d):
    return _split(n, d, lambda d: max(d // 2 - 1, 1))


def _odd_d(split):
    def outcome(n, d):
        try:
            split(n, d)
        except ValueError as e:
            return "ValueError saying d_model must be even" if "even" in str(e) else "ValueError"
        except Exception as e:
            return type(e).__name__
        return "no exception"

    return outcome


def test_split_encoding(p):
    split = p.get("split_sinusoidal_encoding")
    cases = [(6, 8), (3, 2), (20, 30), (64, 128), (int(p.randint(1, 80)), 2 * int(p.randint(1, 33)))]
    for n, d in cases:
        key = f"split_sinusoidal_encoding({n}, {d})"
        p.call(key, split, n, d, atol=1e-5, msg=SPLIT)
        for message, fn in [
            ("the split table puts all sines first: column 0 is sin(pos), column d/2 is cos(pos)", _interleaved),
            ("the exponent is i / d_m with d_m = d / 2: column i is sin(pos / 10000^(i / d_m))", _split_over_d),
            ("the exponent is i / d_m with d_m = d / 2, not d_m - 1: column i is sin(pos / 10000^(i / d_m))",
             _split_over_d_minus_1),
        ]:  # fmt: skip
            p.mistake(key, message, fn, n, d)
    for n, d in [(4, 5), (3, 1), (2, 2 * int(p.randint(1, 20)) + 1)]:
        p.call(
            f"split_sinusoidal_encoding({n}, {d}) with an odd d_model",
            _odd_d(split),
            n,
            d,
            exact=True,
            msg="an odd d_model must raise ValueError, saying in the error that d_model must be even",
        )


# --------------------------------------------------------------------------------- the shift matrix
@standin("shift_matrix")
def _blocks(k, d, exponent, transposed=False):
    """M_k with frequencies 1 / 10000^exponent(i) (the mistakes' base; with 2i/d a solution)."""
    M = torch.zeros(d, d, dtype=torch.float64)
    for i in range(d // 2):
        w = 1 / 10000 ** exponent(i, d)
        c, s = math.cos(w * k), math.sin(w * k)
        block = [[c, s], [-s, c]] if transposed else [[c, -s], [s, c]]
        M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor(block, dtype=torch.float64)
    return M


@mistake
def _shift_transposed(k, d):
    return _blocks(k, d, lambda i, d: 2 * i / d, transposed=True)


@mistake
def _shift_pair_index(k, d):
    return _blocks(k, d, lambda i, d: i / d)


@mistake
def _shift_by_one(k, d):
    return _blocks(1, d, lambda i, d: 2 * i / d)


def _shifted(shift_matrix):
    """The first rows of the table times M_k (in float64, whatever the dtype of M_k)."""
    return lambda P, k, d: P @ torch.as_tensor(shift_matrix(k, d)).to(torch.float64)


def test_shift_matrix(p):
    shift_matrix = p.get("shift_matrix")
    cases = [(2, 8), (0, 8), (1, 4), (5, 32), (17, 10), (0, 6)]
    cases.append((int(p.randint(0, 50)), 2 * int(p.randint(1, 25))))
    for k, d in cases:
        key = f"shift_matrix({k}, {d})"
        p.call(key, shift_matrix, k, d, atol=1e-5, msg=SHIFT)
        for message, fn in [
            ("the rotation blocks are transposed (a shift by -k): with row vectors, [sin, cos] @ [[c, -s], [s, c]]",
             _shift_transposed),
            ("the frequency of pair i is 1 / 10000^(2i/d): use the column index 2i, not the pair index i",
             _shift_pair_index),
            ("the rotation angle is ω_i k: it grows with the shift k", _shift_by_one),
        ]:  # fmt: skip
            p.mistake(key, message, fn, k, d)
    for k, d in cases:
        p.call(
            f"P[:40] @ shift_matrix({k}, {d})",
            _shifted(shift_matrix),
            _sinusoidal(40, d),
            k,
            d,
            atol=1e-4,
            msg="the shift fails: P[pos] @ M_k must equal P[pos + k]",
        )

"""Visible checks: print what was expected next to what was obtained, and stop on a mismatch.

These run in the student's notebook on cases small enough to work out by hand. They are hints,
not grades: the graded test cells hold their own asserts.
"""

from __future__ import annotations

import torch


def _fmt(x) -> str:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_floating_point():
            return (
                str([round(v, 4) for v in x.flatten().tolist()])
                if x.numel() <= 12
                else f"tensor{tuple(x.shape)}"
            )
        return str(x.tolist()) if x.numel() <= 24 else f"tensor{tuple(x.shape)}"
    return repr(x)


def check_close(name: str, obtained, expected, atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Print expected against obtained values; raise AssertionError naming ``name`` if they differ."""
    if obtained is None:
        raise AssertionError(f"{name}: got None. Did the function forget to `return`?")
    expected_t = torch.as_tensor(expected, dtype=torch.float64)
    try:
        obtained_t = torch.as_tensor(obtained).detach().cpu().to(torch.float64)
    except (TypeError, ValueError, RuntimeError) as e:
        raise AssertionError(f"{name}: expected a tensor of numbers, got {type(obtained).__name__}") from e
    print(f"{name}:\n  expected {_fmt(expected_t)}\n  obtained {_fmt(obtained_t)}")
    if obtained_t.shape != expected_t.shape:
        raise AssertionError(
            f"{name}: expected shape {tuple(expected_t.shape)}, got {tuple(obtained_t.shape)}"
        )
    if not torch.allclose(obtained_t, expected_t, atol=atol, rtol=rtol):
        worst = (obtained_t - expected_t).abs().max().item()
        raise AssertionError(f"{name}: values differ (largest difference {worst:.3g}, tolerance {atol:g})")
    print("  ok")


def check_equal(name: str, obtained, expected) -> None:
    """Print and compare exactly (shapes, integers, booleans, strings)."""
    print(f"{name}:\n  expected {_fmt(expected)}\n  obtained {_fmt(obtained)}")
    if isinstance(expected, torch.Tensor) or isinstance(obtained, torch.Tensor):
        same = (
            isinstance(obtained, torch.Tensor)
            and obtained.shape == torch.as_tensor(expected).shape
            and bool((obtained.cpu() == torch.as_tensor(expected)).all())
        )
    else:
        same = obtained == expected
    if not same:
        raise AssertionError(f"{name}: expected {_fmt(expected)}, got {_fmt(obtained)}")
    print("  ok")

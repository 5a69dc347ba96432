"""The hidden tests' reference values, computed with ``lib`` outside the student's kernel.

One module per assignment, ``n<assignment>.py`` (``n03_self_attention.py``): each function named
like a test cell's ``grade_id`` builds that test's inputs (seeded, so every build is identical) and
returns them with what ``lib`` computes for them, as plain data: tensors, numbers, strings, and
lists, tuples and dicts of those. ``build`` runs them and writes ``<out>/<assignment>.pt``; the
hidden test reads its entry with ``course.grading.reference(grade_id)``.

So the kernel that runs a submission never holds ``lib``: only the outputs on the hidden inputs,
read from a read-only file. Checks stay as strong as before (float64, non-square, masks), and a
fixture can also return what a typical mistake gives, for the failure message.
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path
from types import ModuleType

import torch

from course.grading import ENV_REFERENCES

from ..nbg import AutograderError

FIXTURE_PREFIX = "test_"


def module_for(assignment: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"{__name__}.n{assignment}")
    except ModuleNotFoundError as e:
        if e.name == f"{__name__}.n{assignment}":
            return None
        raise


def fixtures(assignment: str) -> dict[str, callable]:
    """grade_id -> the function that computes its reference values."""
    mod = module_for(assignment)
    if mod is None:
        return {}
    return {
        name: fn
        for name, fn in inspect.getmembers(mod, inspect.isfunction)
        if name.startswith(FIXTURE_PREFIX) and fn.__module__ == mod.__name__
    }


def compute(assignment: str) -> dict:
    table = {}
    for grade_id, fn in fixtures(assignment).items():
        torch.manual_seed(0)  # fixtures seed their own generators; this covers module initialisation
        try:
            table[grade_id] = fn()
        except Exception as e:
            raise AutograderError(
                f"the reference fixture {assignment}/{grade_id} failed: {type(e).__name__}: {e}"
            ) from e
    return table


def build(assignments: list[str], out: Path) -> Path:
    """Write ``out/<assignment>.pt`` for each assignment that has fixtures; returns ``out``."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in assignments:
        table = compute(name)
        if not table:
            continue
        tmp = out / f".{name}.pt.tmp"
        torch.save(table, tmp)
        os.replace(tmp, out / f"{name}.pt")  # a half-written file is never read
    return out


def environment(out: Path) -> dict[str, str]:
    """What a kernel needs to find the files ``build`` wrote."""
    return {ENV_REFERENCES: str(Path(out).resolve())}

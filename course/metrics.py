"""Figures a notebook reports (accuracy, timings, ...), collected by ``autograder run``.

``record(name=value, ...)`` keeps the values in memory and, when the runner sets
``COURSE_METRICS_FILE``, rewrites that JSON file after every call, so a notebook that
fails half-way still leaves what it measured.
"""

from __future__ import annotations

import json
import math
import os
from numbers import Number
from pathlib import Path

from .settings import ENV_METRICS_FILE as ENV_VAR

_values: dict[str, object] = {}


def _plain(value):
    """JSON-friendly form of tensors, arrays and numbers."""
    if hasattr(value, "tolist"):  # torch.Tensor, numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    if value is None or isinstance(value, (str, bool, Number)):
        return value
    raise TypeError(f"record() takes numbers, strings, lists, dicts and tensors, not {type(value).__name__}")


def record(**values) -> None:
    """Record named figures (see ``recorded()`` for all of them so far)."""
    _values.update({name: _plain(v) for name, v in values.items()})
    path = os.environ.get(ENV_VAR)
    if path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(_values, indent=2, sort_keys=True))
        tmp.replace(target)


def recorded() -> dict[str, object]:
    return dict(_values)

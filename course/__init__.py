"""What the course's notebooks import: setup, data, visible checks, plots and metrics.

Students see this package. It holds no solutions and never imports `lib`. Its names load on first
use, so that ``course.settings`` (environment names, paths, limits) is read without loading torch.
"""

import importlib

_NAMES = {
    "record": "metrics",
    "Profile": "profiles",
    "resolve_profile": "profiles",
    "Session": "session",
    "pick_device": "session",
    "setup": "session",
}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module 'course' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_NAMES])

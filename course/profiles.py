"""Run profiles: how big the long-running cells of a notebook are.

``smoke`` runs on a CPU in minutes with small data (CI, ``pytest --nbval``, ``nbgrader
autograde``); ``full`` is the real coursework run, meant for a GPU. A notebook's tagged
``parameters`` cell holds ``profile = None``; papermill may inject a name there. Otherwise
the profile comes, in this order, from:

1. the ``COURSE_PROFILE`` environment variable (``smoke`` or ``full``);
2. ``smoke`` inside nbgrader (it sets ``NBGRADER_EXECUTION`` to ``autograde`` or ``validate``);
3. ``full`` when a GPU is present, else ``smoke``.

Notebooks size their work with ``profile.pick(smoke=..., full=...)``. Under nbgrader a smoke
profile is also marked ``grading``: ``pick(smoke=..., full=..., grading=...)`` then takes the
``grading`` value, so that training cells shrink to seconds when hundreds of submissions are
graded (a notebook that gives no ``grading`` value runs its smoke size there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TypeVar

from .settings import ENV_NBGRADER
from .settings import ENV_PROFILE as ENV_VAR

PROFILES = ("smoke", "full")

T = TypeVar("T")
_UNSET = object()


@dataclass(frozen=True)
class Profile:
    name: str
    reason: str  # why this profile was chosen, printed by course.setup
    grading: bool = False  # running under nbgrader: training cells take their ``grading`` size

    def __post_init__(self):
        if self.name not in PROFILES:
            raise ValueError(f"unknown profile {self.name!r}; choose one of {', '.join(PROFILES)}")

    @property
    def is_full(self) -> bool:
        return self.name == "full"

    def pick(self, *, smoke: T, full: T, grading: T = _UNSET) -> T:
        """The value for this profile, e.g. ``epochs = profile.pick(smoke=4, full=50, grading=1)``."""
        if self.is_full:
            return full
        return grading if self.grading and grading is not _UNSET else smoke


def _gpu_available() -> bool:
    import torch

    return torch.cuda.is_available() or torch.backends.mps.is_available()


def resolve_profile(requested: str | Profile | None = None) -> Profile:
    """The profile to run, from an explicit request, the environment, or the hardware."""
    profile = _resolve(requested)
    if profile.name == "smoke" and os.environ.get(ENV_NBGRADER) and not profile.grading:
        profile = replace(profile, grading=True, reason=f"{profile.reason}; grading sizes under nbgrader")
    return profile


def _resolve(requested: str | Profile | None) -> Profile:
    if isinstance(requested, Profile):
        return requested
    if requested is not None:
        name = str(requested).strip().lower()
        if name not in PROFILES:
            raise ValueError(
                f"profile={requested!r} is not a profile; set it to one of {', '.join(map(repr, PROFILES))}"
            )
        return Profile(name, "set in the notebook's parameters cell")
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env:
        if env not in PROFILES:
            raise ValueError(
                f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not a profile; "
                f"set it to one of {', '.join(PROFILES)} or unset it"
            )
        return Profile(env, f"{ENV_VAR}={env}")
    if os.environ.get(ENV_NBGRADER):
        return Profile("smoke", f"running under nbgrader ({os.environ[ENV_NBGRADER]})")
    if _gpu_available():
        return Profile("full", "a GPU is available")
    return Profile("smoke", "no GPU found")

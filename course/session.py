"""The one setup call at the top of every notebook: profile, seeds, device, deterministic flags."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from .profiles import Profile, resolve_profile


@dataclass(frozen=True)
class Session:
    profile: Profile
    device: torch.device
    seed: int

    def describe(self) -> str:
        return (
            f"profile={self.profile.name} ({self.profile.reason}) | device={self.device} | "
            f"seed={self.seed} | torch {torch.__version__}"
        )


def pick_device() -> torch.device:
    """CUDA, then Apple MPS, then CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def setup(profile: str | Profile | None = None, seed: int = 0, deterministic: bool = True) -> Session:
    """Resolve the profile, seed every generator, choose the device, print one summary line.

    ``deterministic`` makes cuDNN pick deterministic kernels (and not benchmark), so a rerun
    gives the same numbers on the same machine.
    """
    prof = resolve_profile(profile)
    seed_everything(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    session = Session(profile=prof, device=pick_device(), seed=seed)
    print(session.describe())
    return session

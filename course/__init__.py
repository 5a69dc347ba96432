"""What the course's notebooks import: setup, data, visible checks, plots and metrics.

Students see this package. It holds no solutions and never imports `lib`.
"""

from .metrics import record
from .profiles import Profile, resolve_profile
from .session import Session, pick_device, setup

__all__ = ["Profile", "Session", "pick_device", "record", "resolve_profile", "setup"]

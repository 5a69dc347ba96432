"""The course's settings in one place: environment variable names, paths, timeouts and limits.

Torch-free and import-light, so the instructor's command line, the sandbox's kernel launcher and
``nbgrader_config.py`` read it without loading torch. Students have it too (it is part of ``course``):
nothing here is secret. The course id is not repeated here: ``nbgrader_config.py`` says it, and
``course_id()`` reads it from there.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

# ----------------------------------------------------------------------------- environment variables
ENV_PROFILE = "COURSE_PROFILE"  # smoke | full (course.profiles)
ENV_DATA_DIR = "COURSE_DATA_DIR"  # the data mirror or download folder (course.data)
ENV_OFFLINE = "COURSE_OFFLINE"  # 1: never download (course.data)
ENV_METRICS_FILE = "COURSE_METRICS_FILE"  # where course.metrics.record writes (autograder run)
ENV_ASSIGNMENT = "COURSE_ASSIGNMENT"  # the assignment a kernel grades (default: its folder's name)
ENV_SANDBOX = "COURSE_SANDBOX"  # 1 inside the grading sandbox
ENV_GUARD_FD = "COURSE_GUARD_FD"  # the kernel guard's report pipe (autograder.sandbox)
ENV_GUARD_CONFIG = "COURSE_GUARD_CONFIG"  # the kernel guard's configuration file
ENV_NBGRADER = "NBGRADER_EXECUTION"  # set by nbgrader itself while it validates or autogrades

# What a grading kernel takes from the grader's environment; the sandbox clears everything else.
KERNEL_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYTHONHASHSEED",
    "MPLBACKEND",
    ENV_PROFILE,
    ENV_DATA_DIR,
    ENV_OFFLINE,
    ENV_NBGRADER,
)

# ------------------------------------------------------------------------------------------- paths
DATA_CACHE = Path("dl-course") / "data"  # under $XDG_CACHE_HOME (~/.cache) when COURSE_DATA_DIR is unset
GRADEBOOKS_DIR = Path("build") / "gradebooks"  # under the course directory: generated gradebooks, cached
WORK_DIR = Path("build") / "grading"  # `autograder grade`'s default work folder
JUDGED_DIR = "judged"  # beside nbgrader's autograded/: <student>/<assignment>/ sealed outputs and verdicts
NBGRADER_CONFIG = "nbgrader_config.py"  # in the course directory (the repository root)

# -------------------------------------------------------------------------------- timeouts, limits
CELL_TIMEOUT_S = 600  # nbgrader's Execute.timeout: per cell
KERNEL_STARTUP_TIMEOUT_S = 120  # nbgrader's Execute.startup_timeout
SANDBOX_WALL_S = 1800.0  # per notebook, on top of the per-cell timeout
SANDBOX_MEMORY_GIB = 4.0  # RLIMIT_DATA of a grading kernel
SANDBOX_MAX_PROCESSES = 512  # RLIMIT_NPROC of a grading kernel (threads count)
OUTPUT_LIMIT_BYTES = 1_000_000  # per cell of an autograded notebook: more is an integrity row
SUBMITTED_OUTPUT_MAX_BYTES = 2_000_000  # per given cell: the student's own outputs kept for the marker
GUARD_REPORT_LIMIT = 10_000  # reports one kernel may send before the rest are dropped


def data_dir() -> Path:
    """Where datasets are looked for and downloaded to: $COURSE_DATA_DIR, else the user's cache."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / DATA_CACHE


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes")


@functools.lru_cache(maxsize=8)
def course_id(root: str | Path) -> str:
    """``CourseDirectory.course_id`` as the course directory's ``nbgrader_config.py`` sets it."""
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(root) / NBGRADER_CONFIG
    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    value = config.CourseDirectory.get("course_id")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{path} sets no c.CourseDirectory.course_id: add one (for example 'dl-course')")
    return value

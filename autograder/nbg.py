"""The course directory and how the autograder calls nbgrader.

The repository root is nbgrader's course directory: ``source/<assignment>/<notebook>.ipynb`` and
``release/<assignment>/...``. nbgrader's working state (gradebook, ``submitted/``,
``autograded/``) never goes there: every call points ``CourseDirectory.root`` at a work folder
and reads ``source/`` from the repository, so the committed tree only changes through ``release``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from course.settings import ENV_PROFILE, NBGRADER_CONFIG

REPO = Path(__file__).resolve().parents[1]
WORK_MARKER = ".autograder-work"


class AutograderError(RuntimeError):
    """A problem the instructor must fix; the message says what and how."""


def course_root(root: str | Path | None = None) -> Path:
    root = Path(root).resolve() if root else REPO
    if not (root / "source").is_dir() or not (root / NBGRADER_CONFIG).is_file():
        raise AutograderError(
            f"{root} is not the course directory: it needs source/ and nbgrader_config.py. "
            "Run from the repository root or pass --root."
        )
    return root


def assignments(root: Path, wanted: list[str] | None = None) -> list[str]:
    """Assignment folders in source/ (each holds notebooks), optionally filtered by name or prefix."""
    found = sorted(p.name for p in (root / "source").iterdir() if p.is_dir() and any(p.glob("*.ipynb")))
    if not wanted:
        return found
    chosen = []
    for w in wanted:
        match = [a for a in found if a == w or a.startswith(w.rstrip("_") + "_") or a.split("_")[0] == w]
        if not match:
            raise AutograderError(f"no assignment {w!r} in {root / 'source'}; there are: {', '.join(found)}")
        chosen += [m for m in match if m not in chosen]
    return chosen


def notebooks(root: Path, assignment: str) -> list[Path]:
    return sorted((root / "source" / assignment).glob("*.ipynb"))


def fresh_work_dir(path: Path) -> Path:
    """Empty ``path`` for nbgrader's state, refusing to delete a folder the autograder did not make."""
    path = path.resolve()
    if path.exists():
        if not (path / WORK_MARKER).exists():
            if any(path.iterdir()):
                raise AutograderError(
                    f"{path} exists and was not made by the autograder; refusing to empty it. "
                    "Pass another --work folder or delete it yourself."
                )
        else:
            shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / WORK_MARKER).write_text("nbgrader working state made by `autograder`; safe to delete.\n")
    return path


def nbgrader(
    args: list[str],
    root: Path,
    work: Path,
    *,
    quiet: bool = False,
    extra_env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` with config from ``root`` and state in ``work``.

    Notebooks run under the smoke profile unless COURSE_PROFILE says otherwise.
    """
    env = dict(os.environ)
    env.setdefault(ENV_PROFILE, "smoke")
    # nbgrader runs the `alembic` command for its gradebook: make this environment's scripts
    # findable even when the virtual environment is not activated.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra_env or {})
    cmd = [
        sys.executable,
        "-m",
        "nbgrader",
        *args,
        f"--CourseDirectory.root={work}",
        f"--CourseDirectory.source_directory={root / 'source'}",
        f"--CourseDirectory.db_url=sqlite:///{work / 'gradebook.db'}",
    ]
    proc = subprocess.run(cmd, cwd=root, env=env, text=True, capture_output=True)
    log = proc.stdout + proc.stderr
    if (not quiet or (proc.returncode != 0 and check)) and log.strip():
        print(
            "\n".join(
                "  | " + line
                for line in log.strip().splitlines()
                if not line.startswith("[IPKernelApp] WARNING")
            )
        )
    if proc.returncode != 0 and check:
        raise AutograderError(
            f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}); its log is above."
        )
    return proc


@contextmanager
def environment(**values: str):
    """Set environment variables (which notebook kernels inherit) for the duration of a block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

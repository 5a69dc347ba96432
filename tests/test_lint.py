"""The linter: ruff, with the rules in pyproject.toml, over the code and the source notebooks."""

import subprocess
import sys

from autograder.nbg import REPO


def _ruff(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
    )


def test_ruff_finds_nothing():
    proc = _ruff(".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_would_catch_a_mistake():
    # the configuration lints Python files: an unused import and an undefined name are reported
    proc = _ruff("--stdin-filename", "course/example.py", "-", stdin="import os\n\nprint(undefined_name)\n")
    assert proc.returncode == 1 and "F401" in proc.stdout and "F821" in proc.stdout

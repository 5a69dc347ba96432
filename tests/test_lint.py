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


def test_ruff_format_would_change_nothing():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_no_function_in_the_grader_or_the_training_loop_is_over_60_lines():
    import ast

    long = []
    for path in [*sorted((REPO / "autograder").rglob("*.py")), REPO / "course" / "train.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_ruff_would_catch_a_mistake():
    # the configuration lints Python files: an unused import and an undefined name are reported
    proc = _ruff("--stdin-filename", "course/example.py", "-", stdin="import os\n\nprint(undefined_name)\n")
    assert proc.returncode == 1 and "F401" in proc.stdout and "F821" in proc.stdout

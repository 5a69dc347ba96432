"""`pytest --nbval-lax` really compares the checked cells: a wrong stored output fails it."""

import shutil
import subprocess
import sys

import nbformat
import pytest

pytestmark = pytest.mark.slow


def _run_nbval(path):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "-o",
            "addopts=",
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=path.parent,
    )


def test_worked_example_output_is_compared(repo, tmp_path):
    src = repo / "source" / "03_self_attention" / "03_self_attention.ipynb"
    nb = nbformat.read(src, 4)
    checked = [c for c in nb.cells if "nbval-check-output" in c.metadata.get("tags", [])]
    worked = next(c for c in checked if "colour" in c.source)
    assert worked.outputs, "the worked example's output must be stored for nbval"
    assert "78.3" in worked.outputs[0]["text"]
    worked.outputs[0]["text"] = worked.outputs[0]["text"].replace("78.3", "87.3")
    shutil.copytree(src.parent, tmp_path / "nb")
    nbformat.write(nb, tmp_path / "nb" / src.name)
    proc = _run_nbval(tmp_path / "nb" / src.name)
    assert proc.returncode != 0 and "87.3" in proc.stdout, proc.stdout[-2000:]

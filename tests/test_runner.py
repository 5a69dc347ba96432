"""`autograder run`: papermill executes notebooks under a profile, keeping outputs and metrics."""
import json

import nbformat
import pytest

from autograder.cli import main

pytestmark = pytest.mark.slow


def test_run_smoke_keeps_notebook_and_metrics(tmp_path, capsys):
    rc = main(["run", "03", "--profile", "smoke", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    folder = tmp_path / "smoke" / "03_self_attention"
    executed = nbformat.read(folder / "03_self_attention.ipynb", 4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'profile = "smoke"' in injected[0].source
    m = json.loads((folder / "03_self_attention.metrics.json").read_text())
    assert m["status"] == "ok" and m["profile"] == "smoke" and m["wall_s"] > 0
    assert m["metrics"]["worked_example_colour"] == pytest.approx([78.30, 65.64, 55.13], abs=0.01)
    summary = json.loads((tmp_path / "smoke" / "summary.json").read_text())
    assert [s["notebook"] for s in summary] == ["03_self_attention.ipynb"]
    assert "wall s" in out and "total" in out


def test_run_reports_a_failing_notebook(tmp_path, capsys, repo):
    # a course copy whose notebook raises: the runner says which cell and exits non-zero
    import shutil
    root = tmp_path / "course"
    (root / "source" / "99_broken").mkdir(parents=True)
    shutil.copy(repo / "nbgrader_config.py", root)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("profile = None", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell("1 / 0")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "source" / "99_broken" / "broken.ipynb")
    rc = main(["--root", str(root), "run", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 1 and "ZeroDivisionError" in out
    m = json.loads((tmp_path / "out" / "smoke" / "99_broken" / "broken.metrics.json").read_text())
    assert m["status"] == "failed"

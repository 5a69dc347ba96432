"""`autograder run`: papermill executes notebooks under a profile, keeping outputs and metrics."""

import json
import shutil

import nbformat
import pytest

from autograder.cli import main

pytestmark = pytest.mark.slow


def _course(tmp_path, repo, folder, name, code):
    """A course copy with one notebook: a parameters cell, then ``code``. Returns the course root."""
    root = tmp_path / "course"
    (root / "source" / folder).mkdir(parents=True)
    shutil.copy(repo / "nbgrader_config.py", root)
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("profile = None", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(code),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "source" / folder / name)
    return root


def test_run_smoke_keeps_notebook_and_metrics(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative --out, as the default build/runs is
    rc = main(["run", "03", "--profile", "smoke", "--out", "runs"])
    out = capsys.readouterr().out
    assert rc == 0, out
    tmp_path = tmp_path / "runs"
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
    root = _course(tmp_path, repo, "99_broken", "broken.ipynb", "1 / 0")
    rc = main(["--root", str(root), "run", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 1 and "ZeroDivisionError" in out
    m = json.loads((tmp_path / "out" / "smoke" / "99_broken" / "broken.metrics.json").read_text())
    assert m["status"] == "failed"


def test_a_relative_data_dir_and_out_mean_the_callers_folder(tmp_path, capsys, repo, monkeypatch):
    # the kernel runs in the notebook's folder; COURSE_DATA_DIR=data and --out runs are meant from the shell's
    root = _course(
        tmp_path,
        repo,
        "98_where",
        "where.ipynb",
        "import course\nfrom course import data\ncourse.record(data_dir=str(data.data_dir()))",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_DATA_DIR", "data")
    rc = main(["--root", str(root), "run", "--out", "runs"])
    assert rc == 0, capsys.readouterr().out
    m = json.loads((tmp_path / "runs" / "smoke" / "98_where" / "where.metrics.json").read_text())
    assert m["metrics"] == {"data_dir": str(tmp_path / "data")}

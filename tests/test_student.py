"""The student distribution (autograder/student.py, student/install.sh): course only, and it works."""

import os
import re
import subprocess
import sys
import sysconfig
import zipfile

import nbformat
import pytest

from autograder.examples import Example, build
from autograder.nbg import REPO
from autograder.student import INSTRUCTOR_ONLY, build_wheel

pytestmark = pytest.mark.slow
A = "03_self_attention"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def student_python(wheel, tmp_path_factory):
    """A fresh venv with only the wheel installed in it; the heavy dependencies (torch, ...) are borrowed
    from this environment's site-packages by a .pth line, which does not run this environment's
    editable-install hooks, so `lib` and `autograder` are not importable there."""
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (venv / "lib" / site.split("/lib/")[-1] / "instructor-deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    return py


def test_the_wheel_holds_course_and_no_solution(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert "course" in top and not top & {"lib", "autograder", "source", "tests"}, top
    assert any(n.startswith("course/weights/") for n in names) and any(
        n.startswith("course/data_samples/") for n in names
    )
    meta = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith("METADATA"))
    requires = [
        line.split(":", 1)[1].strip().lower()
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert any(r.startswith("jupyterlab") for r in requires) and any(
        r.startswith("nbgrader") for r in requires
    )
    assert not [
        r
        for r in requires
        if r.split("[")[0].split("<")[0].split(">")[0].split("=")[0].split(";")[0].strip() in INSTRUCTOR_ONLY
    ]


def test_in_the_student_environment_lib_is_not_there(student_python, tmp_path):
    code = (
        "import course, importlib.util as u; print(course.__file__); "
        "print(u.find_spec('lib'), u.find_spec('autograder'))"
    )
    out = subprocess.run(
        [str(student_python), "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert str(student_python.parents[1]) in out.splitlines()[0]  # the wheel's course, not the repository's
    assert out.splitlines()[1] == "None None"
    proc = subprocess.run(
        [str(student_python), "-c", "import lib"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode and "No module named 'lib'" in proc.stderr


def _script(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_a_release_notebook_runs_its_visible_checks_there(student_python, tmp_path):
    src, rel = (nbformat.read(REPO / d / A / f"{A}.ipynb", 4) for d in ("source", "release"))
    env = {**os.environ, "COURSE_PROFILE": "smoke", "MPLBACKEND": "Agg"}
    env.pop("COURSE_REFERENCES", None)
    solved = tmp_path / "solved.py"
    solved.write_text(_script(build(Example("s", A, f"{A}.ipynb", "", "solution"), src, rel)))
    proc = subprocess.run(
        [str(student_python), str(solved)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    untouched = tmp_path / "untouched.py"
    untouched.write_text(_script(rel))
    proc = subprocess.run(
        [str(student_python), str(untouched)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode and "NotImplementedError" in proc.stderr  # the first stub stops "Run All"


def test_install_script_switches_the_instructor_extensions_off(student_python, tmp_path):
    # Jupyter's own packages, installed into the student environment (their dependencies borrowed as above),
    # so that it holds nbgrader's extensions and their switches as a full install does; then install.sh's
    # switches, and Jupyter's own listing of what is on and off.
    from importlib.metadata import version

    pkgs = [f"{p}=={version(p)}" for p in ("jupyter_core", "jupyter_server", "jupyterlab", "nbgrader")]
    subprocess.run(
        [str(student_python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", *pkgs],
        check=True,
    )
    venv = student_python.parents[1]
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter")}
    env.pop("JUPYTER_PATH", None)
    subprocess.run(
        ["bash", str(REPO / "student" / "install.sh"), "--extensions-only", str(venv)], check=True, env=env
    )

    def listing(*cmd):
        proc = subprocess.run([str(venv / "bin" / "jupyter"), *cmd], capture_output=True, text=True, env=env)
        return re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)

    servers = listing("server", "extension", "list")
    state = dict(re.findall(r"^\s*(nbgrader\.server_extensions\.\w+) (enabled|disabled)", servers, re.M))
    assert state == {
        "nbgrader.server_extensions.formgrader": "disabled",
        "nbgrader.server_extensions.course_list": "disabled",
        "nbgrader.server_extensions.assignment_list": "enabled",
        "nbgrader.server_extensions.validate_assignment": "enabled",
    }, servers
    lab = listing("labextension", "list")
    assert re.search(r"@jupyter/nbgrader v[\d.]+ enabled", lab), lab
    disabled = lab.split("Disabled extensions:", 1)[1] if "Disabled extensions:" in lab else ""
    for plugin in ("formgrader", "course-list", "create-assignment"):
        assert f"@jupyter/nbgrader:{plugin}" in disabled, lab
    for plugin in ("assignment-list", "validate-assignment"):
        assert f"@jupyter/nbgrader:{plugin}" not in disabled, lab

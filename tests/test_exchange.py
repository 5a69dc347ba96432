"""The nbgrader exchange round trip, with a local exchange folder and two students.

release_assignment -> fetch_assignment -> the students edit -> submit -> collect -> autograde (through
the wrapper) -> generate_feedback (`autograder feedback`) -> release_feedback -> fetch_feedback. nbgrader
takes a student's identity from the operating system's user name; the two students here are two
processes that tell nbgrader their names (nbgrader.utils.get_osusername), in their own home folders.
"""

import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder.examples import Example, build, load_examples
from autograder.feedback import html_text, leaked_lines
from autograder.nbg import REPO, nbgrader
from autograder.pipeline import grade
from autograder.steps import RERUN, SUBMITTED
from course.settings import course_id

pytestmark = pytest.mark.slow
A = "03_self_attention"
COURSE = course_id(REPO)  # nbgrader_config.py says it


def _as(user: str, args: list[str], cwd, exchange) -> subprocess.CompletedProcess:
    """nbgrader run by ``user`` in ``cwd``, which is also their home (nbgrader caches submissions there)."""
    code = (
        "import sys, nbgrader.utils as u\n"
        f"u.get_osusername = lambda: {user!r}\n"
        "from nbgrader.apps.nbgraderapp import NbGraderApp\n"
        f"sys.argv = ['nbgrader'] + {args!r}\n"
        "NbGraderApp.launch_instance()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "XDG_"))}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env={**env, "HOME": str(cwd)}, capture_output=True, text=True
    )
    assert proc.returncode == 0, (
        f"{user}: nbgrader {' '.join(args)}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
    )
    return proc


def test_round_trip(tmp_path):
    exchange, course = tmp_path / "exchange", tmp_path / "course"
    exchange.mkdir()
    exchange.chmod(0o777)
    (course / "source").mkdir(parents=True)
    shutil.copytree(REPO / "source" / A, course / "source" / A)
    shutil.copy(REPO / "nbgrader_config.py", course)
    ex = [f"--Exchange.root={exchange}"]
    _as("instructor", ["generate_assignment", A, *ex], course, exchange)
    _as("instructor", ["release_assignment", A, *ex], course, exchange)

    src = nbformat.read(REPO / "source" / A / f"{A}.ipynb", 4)
    mistakes = {e.student: e for e in load_examples(A)}
    for student, example in (("alice", mistakes["reference"]), ("bob", mistakes["forgot_scaling"])):
        home = tmp_path / student
        home.mkdir()
        _as(student, ["fetch_assignment", A, f"--course={COURSE}", *ex], home, exchange)
        fetched = home / A / f"{A}.ipynb"
        work_nb = build(
            Example(student, A, f"{A}.ipynb", "", example.start, example.replace),
            src,
            nbformat.read(fetched, 4),
        )
        scaling = next(
            c for c in work_nb.cells if c.get("id") == "code-21"
        )  # the given cell of the scaling study
        scaling.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text=f"{student}'s own run: spread 11.31\n")
        ]
        nbformat.write(work_nb, fetched)  # the student's work, as they ran it, in the fetched copy
        _as(student, ["submit", A, f"--course={COURSE}", *ex], home, exchange)
    _as("instructor", ["collect", A, *ex], course, exchange)
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["alice", "bob"]

    work = tmp_path / "work"
    results = grade(REPO, work, [A], course / "submitted")
    assert {r.student: r.score for r in results} == {
        "alice": mistakes["reference"].expected_score,
        "bob": mistakes["forgot_scaling"].expected_score,
    }
    # the marker of the written answers sees the student's own outputs, then nbgrader's re-run
    graded = nbformat.read(work / "autograded" / "alice" / A / f"{A}.ipynb", 4)
    outs = [o.get("text", "") for o in next(c for c in graded.cells if c.get("id") == "code-21").outputs]
    assert outs[:3] == [SUBMITTED, "alice's own run: spread 11.31\n", RERUN] and len(outs) > 3, outs
    subprocess.run(
        [sys.executable, "-m", "autograder", "feedback", "03", "--work", str(work)],
        check=True,
        capture_output=True,
    )
    nbgrader(["release_feedback", A, *ex], REPO, work)
    total = sum(
        c.metadata["nbgrader"].get("points", 0)
        for c in src.cells
        if c.metadata.get("nbgrader", {}).get("grade") or c.metadata.get("nbgrader", {}).get("task")
    )
    for student, score in (
        ("alice", mistakes["reference"].expected_score),
        ("bob", mistakes["forgot_scaling"].expected_score),
    ):
        home = tmp_path / student
        _as(student, ["fetch_feedback", A, f"--course={COURSE}", *ex], home, exchange)
        got = sorted((home / A / "feedback").glob(f"*/{A}.html"))
        assert len(got) == 1, f"{student} got no feedback"
        text = html_text(got[0])
        assert f"Score: {float(score)} / {float(total)}" in text
        assert leaked_lines(REPO, A, got[0], home / A / f"{A}.ipynb") == []
        assert f"{student}'s own run: spread 11.31" in text
    assert "1/sqrt(d_k)" in html_text(next((tmp_path / "bob" / A / "feedback").glob(f"*/{A}.html")))

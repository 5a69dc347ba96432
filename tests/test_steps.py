"""autograder/steps.py: nbgrader's two passes keep the student's own outputs of given cells for the marker.

The steps run here as nbgrader runs them: pass 1 is StashSubmittedOutputs then nbgrader's ClearOutput,
the file is written and read back, pass 2 replaces outputs as a re-run would, then RestoreSubmittedOutputs.
The end-to-end check (nbgrader autograde in a real batch) is in tests/test_exchange.py.
"""

import base64
import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbgrader.preprocessors import ClearOutput

from autograder.steps import KEY, RERUN, SUBMITTED, RestoreSubmittedOutputs, StashSubmittedOutputs
from course.settings import SUBMITTED_OUTPUT_MAX_BYTES

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


def _cells(given_outputs, solution_outputs=(), test_outputs=()):
    given = new_code_cell("fit(model)", id="given-train", outputs=list(given_outputs))
    solution = new_code_cell(
        "def f(): ...",
        id="sol",
        outputs=list(solution_outputs),
        metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "f_solution"}},
    )
    test = new_code_cell(
        "assert f()",
        id="test",
        outputs=list(test_outputs),
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "test_f", "points": 1}},
    )
    return [given, solution, test]


def _two_passes(nb, rerun):
    """Pass 1, the file in between, then pass 2 with ``rerun`` as what executing each cell printed."""
    resources = {}
    for step in (StashSubmittedOutputs(), ClearOutput()):
        nb, resources = step.preprocess(nb, resources)
    assert all(
        c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code"
    )  # ClearOutput did its job
    nb = nbformat.reads(nbformat.writes(nb), 4)  # only the file carries anything from pass 1 to pass 2
    for cell, outputs in zip(nb.cells, rerun):
        cell.outputs = outputs
    nb, _ = RestoreSubmittedOutputs().preprocess(nb, {})
    return nb


def test_given_cells_show_the_submitted_outputs_then_the_rerun():
    student_run = [
        new_output("stream", name="stdout", text="50 epochs: test accuracy 0.8123\n"),
        new_output(
            "display_data",
            data={"text/html": "<script>steal()</script>", "text/plain": "<Figure>", "image/png": PNG},
        ),
        new_output("display_data", data={"application/javascript": "steal()"}),
        new_output("error", ename="ValueError", evalue="bad", traceback=["ValueError: bad"]),
    ]
    nb = new_notebook(cells=_cells(student_run, [new_output("stream", name="stdout", text="mine\n")]))
    rerun = [
        [new_output("stream", name="stdout", text="1 epochs: test accuracy 0.1000\n")],
        [],
        [new_output("stream", name="stdout", text="grader's test run\n")],
    ]
    given, solution, test = _two_passes(nb, rerun).cells
    texts = [o.get("text") for o in given.outputs]
    assert texts == [
        SUBMITTED,
        "50 epochs: test accuracy 0.8123\n",
        None,
        None,
        RERUN,
        "1 epochs: test accuracy 0.1000\n",
    ]
    figure, error = given.outputs[2], given.outputs[3]
    assert dict(figure.data) == {"text/plain": "<Figure>", "image/png": PNG}  # no HTML, no script
    assert error.ename == "ValueError"
    assert solution.outputs == [] and [o.text for o in test.outputs] == [
        "grader's test run\n"
    ]  # nbgrader's own
    assert not any(KEY in c.metadata for c in (given, solution, test))  # the stash leaves no trace


def test_a_planted_stash_is_replaced_and_answer_cells_keep_none():
    # a student writes the key into metadata by hand: the given cell gets what it really printed,
    # other cells nothing
    planted = {
        "submitted_outputs": [{"output_type": "display_data", "data": {"text/html": "<script>x()</script>"}}]
    }
    cells = _cells([new_output("stream", name="stdout", text="real\n")])
    cells[0].metadata[KEY] = planted
    cells[1].metadata[KEY] = planted
    given, solution, _ = _two_passes(new_notebook(cells=cells), [[], [], []]).cells
    assert [o.get("text") for o in given.outputs] == [SUBMITTED, "real\n", RERUN]
    assert solution.outputs == [] and "script" not in json.dumps(given.outputs)


def test_cells_without_outputs_are_left_alone_and_huge_outputs_become_a_note():
    nb = _two_passes(
        new_notebook(cells=_cells([])), [[new_output("stream", name="stdout", text="rerun\n")], [], []]
    )
    assert [o.text for o in nb.cells[0].outputs] == ["rerun\n"]
    big = [new_output("stream", name="stdout", text="0" * (SUBMITTED_OUTPUT_MAX_BYTES + 10))]
    outs = _two_passes(new_notebook(cells=_cells(big)), [[], [], []]).cells[0].outputs
    assert len(outs) == 3 and "exceed 2 MB" in outs[1].text and outs[2].text == RERUN


def test_nbgrader_config_names_both_steps_around_the_stock_ones():
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.nbg import REPO

    c = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    sanitize, autograde = c.Autograde.sanitize_preprocessors, c.Autograde.autograde_preprocessors
    assert sanitize.index("autograder.steps.StashSubmittedOutputs") < sanitize.index(
        "nbgrader.preprocessors.ClearOutput"
    )
    execute, save = (
        autograde.index("autograder.steps.JudgedExecute"),
        autograde.index("nbgrader.preprocessors.SaveAutoGrades"),
    )
    assert execute < autograde.index("autograder.steps.RestoreSubmittedOutputs") < save
    # every stock step of nbgrader's is still there (Execute as the course's subclass of it)
    from importlib import import_module

    from nbgrader.converters import Autograde

    def cls_of(name):
        module, attr = name.rsplit(".", 1)
        return getattr(import_module(module), attr)

    stock = Autograde()
    for trait, listed in (("sanitize_preprocessors", sanitize), ("autograde_preprocessors", autograde)):
        for cls in getattr(stock, trait):
            assert any(issubclass(cls_of(name), cls) for name in listed), cls


# ---------------------------------------------------------------------------------------------- judge
def test_the_judge_steps_sit_where_nbgrader_reads_them():
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.nbg import REPO

    c = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    a = c.Autograde.autograde_preprocessors
    order = [
        "autograder.steps.PrepareProbes",
        "autograder.steps.JudgedExecute",
        "nbgrader.preprocessors.LimitOutput",
        "autograder.steps.InertOutputs",
        "autograder.steps.ApplyVerdicts",
        "nbgrader.preprocessors.SaveAutoGrades",
        "autograder.steps.FlagJudgeErrors",
    ]
    assert [a.index(s) for s in order] == sorted(a.index(s) for s in order)
    assert ".judge" in c.CourseDirectory.ignore  # never copied into feedback


def _test_cell(outputs=()):
    return new_code_cell(
        'ship("test_f", globals())\nassert f(1) == 2',
        outputs=list(outputs),
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "test_f", "points": 4}},
    )


def test_each_verdict_scores_in_nbgrader_as_the_judge_said_whatever_the_kernel_printed():
    from nbgrader.utils import determine_grade

    from autograder.judge import Verdict
    from autograder.steps import _as_text, verdict_outputs

    noisy = [
        new_output("stream", name="stderr", text="debug: x = 3\n"),  # fd 2 from a correct function
        new_output("error", ename="AssertionError", evalue="visible check", traceback=[]),
    ]
    cases = [
        (Verdict("test_f", "pass", 4.0, 4.0), 4.0),
        (Verdict("test_f", "partial", 2.5, 4.0, "half of it"), 2.5),
        (Verdict("test_f", "fail", 0.0, 4.0, "the scores look unscaled"), 0.0),
        (Verdict("test_f", "no-output", 0.0, 4.0, "did not run"), 0.0),
    ]
    for verdict, score in cases:
        cell = _test_cell()
        cell.outputs = [*verdict_outputs(verdict), *_as_text(noisy)]
        assert determine_grade(cell)[0] == score, verdict
        assert not any(o.get("name") == "stderr" or o.output_type == "error" for o in cell.outputs[1:])
    fail = verdict_outputs(cases[2][0])[0]
    assert fail.ename == "WrongAnswer" and fail.evalue == "the scores look unscaled"


def test_nothing_a_submission_prints_stays_executable():
    from autograder.steps import InertOutputs, escape_markup

    html = new_output(
        "display_data", data={"text/html": "<script>alert(1)</script>", "application/javascript": "x()"}
    )
    svg = new_output("execute_result", data={"image/svg+xml": "<svg onload=x()>", "text/plain": "fig"})
    md = nbformat.v4.new_markdown_cell("<img src=x onerror=alert(1)> [a](javascript:alert(1)) $a < b$")
    raw = nbformat.v4.new_raw_cell("<script>x()</script>", metadata={"format": "text/html"})
    nb = new_notebook(cells=[new_code_cell("x", outputs=[html, svg]), md, raw])
    nb, _ = InertOutputs().preprocess(nb, {})
    outs = nb.cells[0].outputs
    assert [sorted(o.data) for o in outs] == [["text/plain"], ["text/plain"]] and outs[1].data[
        "text/plain"
    ] == "fig"
    assert "<img" not in nb.cells[1].source and "javascript:" not in nb.cells[1].source
    assert "$a < b$" in nb.cells[1].source  # math stays math
    assert "format" not in nb.cells[2].metadata
    assert escape_markup("**bold** and `code`") == "**bold** and `code`"


def test_cells_with_graded_metadata_the_release_lacks_are_ignored_and_flagged():
    from autograder.intake import foreign_graded_cells

    answer = new_code_cell(
        "def f(x): return 2 * x",
        metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "f_solution", "locked": False}},
    )
    released = new_notebook(cells=[new_code_cell("# YOUR CODE HERE", metadata=answer.metadata), _test_cell()])
    invented = new_code_cell(
        "pass",
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "test_free", "points": 9}},
    )
    copy = _test_cell()
    copy.source = "pass"  # a copy of the test's id, placed before the real test
    nb = new_notebook(cells=[answer, invented, copy, _test_cell()])
    flags = foreign_graded_cells("s", "a", "a.ipynb", nb, released)
    assert [f.cell for f in flags] == ["test_free", "test_f"]
    assert "does not have" in flags[0].what and "copy of the graded cell test_f" in flags[1].what
    kept = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert kept == ["f_solution", None, None, "test_f"]  # the student's answer and the real test stay graded
    assert nb.cells[3].source.startswith('ship("test_f"')


def test_a_cell_the_judge_could_not_decide_waits_for_a_person_in_the_gradebook(tmp_path, monkeypatch):
    import os
    import sys

    from nbgrader.api import Gradebook

    from autograder.judge import Verdict
    from autograder.steps import ApplyVerdicts, FlagJudgeErrors

    monkeypatch.setenv(
        "PATH", os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    )  # alembic
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db) as gb:
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        gb.add_grade_cell("test_f", "nb", "a", max_score=4, cell_type="code")
        gb.add_student("s")
        gb.add_submission("a", "s")
    info = {"student": "s", "assignment": "a", "notebook": "nb", "db_url": db}
    nb = new_notebook(cells=[_test_cell()])
    # no seed: PrepareProbes did not run (a configuration error), so the judge cannot decide
    folder = tmp_path / "autograded" / "s" / "a"
    folder.mkdir(parents=True)
    nb, resources = ApplyVerdicts().preprocess(nb, {"nbgrader": info, "metadata": {"path": str(folder)}})
    verdict = resources[KEY]["verdicts"]["test_f"]
    assert isinstance(verdict, Verdict) and verdict.outcome == "judge-error"
    assert nb.cells[0].outputs[0].ename == "JudgeError" and "staff" in nb.cells[0].outputs[0].evalue
    FlagJudgeErrors().preprocess(nb, resources)
    with Gradebook(db) as gb:
        assert gb.find_grade("test_f", "nb", "a", "s").needs_manual_grade


def test_the_judges_file_work_beside_a_live_kernel_never_follows_a_link(tmp_path):
    # a kernel's thread may swap .judge/out, or a test's outputs, for a link to another student's sealed
    # outputs: the judge must neither delete, write nor read through it
    import os

    from autograder.steps import LINKED, _clear_at, _open_judge, seal

    victim = tmp_path / "judged" / "victim" / "a" / "test_f"
    victim.mkdir(parents=True)
    (victim / "manifest.json").write_text("{}")
    folder = tmp_path / "autograded" / "mallory" / "a"
    (folder / ".judge").mkdir(parents=True)
    (folder / ".judge" / "out").symlink_to(victim.parent)
    judge_fd, out_fd = _open_judge(folder)
    _clear_at(out_fd, "test_f")  # as a test cell starts
    assert (victim / "manifest.json").is_file() and not (folder / ".judge" / "out").is_symlink()
    os.symlink(victim, "test_f", dir_fd=out_fd)  # a link where this test's outputs belong
    seal(out_fd, "test_f", tmp_path / "judged" / "mallory" / "a" / "test_f")
    sealed = tmp_path / "judged" / "mallory" / "a" / "test_f"
    assert (sealed / LINKED).is_file() and not (sealed / "manifest.json").exists()
    _clear_at(out_fd, "test_f")
    assert (victim / "manifest.json").is_file()
    os.close(out_fd), os.close(judge_fd)

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
        autograde.index("nbgrader.preprocessors.Execute"),
        autograde.index("nbgrader.preprocessors.SaveAutoGrades"),
    )
    assert execute < autograde.index("autograder.steps.RestoreSubmittedOutputs") < save
    # every stock step of nbgrader's is still there
    from nbgrader.converters import Autograde

    stock = Autograde()
    for trait, listed in (("sanitize_preprocessors", sanitize), ("autograde_preprocessors", autograde)):
        for cls in getattr(stock, trait):
            assert any(name.endswith("." + cls.__name__) for name in listed), cls

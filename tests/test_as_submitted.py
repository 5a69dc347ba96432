"""autograder.as_submitted: the student's own outputs come back beside the grader's re-run, given cells only."""

import base64

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.as_submitted import MAX_BYTES, RERUN, SUBMITTED, keep_all, keep_submitted_outputs

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


def _cells(outputs_given, outputs_solution, outputs_test):
    given = new_code_cell("fit(model)", id="given-train", outputs=outputs_given)
    solution = new_code_cell(
        "def f(): ...",
        id="sol",
        outputs=outputs_solution,
        metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "f_solution"}},
    )
    test = new_code_cell(
        "assert f()",
        id="test",
        outputs=outputs_test,
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "test_f", "points": 1}},
    )
    return [given, solution, test]


def _write(path, cells):
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_given_cells_show_the_submitted_outputs_then_the_rerun(tmp_path):
    student_run = [
        new_output("stream", name="stdout", text="50 epochs: test accuracy 0.8123\n"),
        new_output(
            "display_data",
            data={"text/html": "<script>steal()</script>", "text/plain": "<Figure>", "image/png": PNG},
        ),
        new_output("display_data", data={"application/javascript": "steal()"}),
        new_output("error", ename="ValueError", evalue="bad", traceback=["ValueError: bad"]),
    ]
    submitted = _write(
        tmp_path / "submitted.ipynb",
        _cells(
            student_run,
            [new_output("stream", name="stdout", text="mine\n")],
            [new_output("stream", name="stdout", text="student's test run\n")],
        ),
    )
    rerun = [new_output("stream", name="stdout", text="1 epochs: test accuracy 0.1000\n")]
    graded = _write(
        tmp_path / "graded.ipynb",
        _cells(rerun, [], [new_output("stream", name="stdout", text="grader's test run\n")]),
    )

    assert keep_submitted_outputs(submitted, graded) == 1
    given, solution, test = nbformat.read(graded, 4).cells
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
    # a second pass (a resumed grading run) changes nothing
    assert keep_submitted_outputs(submitted, graded) == 0
    assert [o.get("text") for o in nbformat.read(graded, 4).cells[0].outputs] == texts


def test_cells_are_matched_by_id_and_cells_without_outputs_are_left_alone(tmp_path):
    added = new_code_cell(
        "print('scratch')", id="student-added", outputs=[new_output("stream", name="stdout", text="x\n")]
    )
    submitted = _write(tmp_path / "s.ipynb", [added, *_cells([], [], [])])
    graded = _write(
        tmp_path / "g.ipynb", _cells([new_output("stream", name="stdout", text="rerun\n")], [], [])
    )
    assert keep_submitted_outputs(submitted, graded) == 0
    assert [o.text for o in nbformat.read(graded, 4).cells[0].outputs] == ["rerun\n"]


def test_huge_outputs_are_replaced_by_a_note(tmp_path):
    big = [new_output("stream", name="stdout", text="0" * (MAX_BYTES + 10))]
    submitted = _write(tmp_path / "s.ipynb", _cells(big, [], []))
    graded = _write(tmp_path / "g.ipynb", _cells([], [], []))
    assert keep_submitted_outputs(submitted, graded) == 1
    outs = nbformat.read(graded, 4).cells[0].outputs
    assert len(outs) == 3 and "exceed 2 MB" in outs[1].text and outs[2].text == RERUN


def test_keep_all_walks_nbgraders_folders_and_skips_unreadable_submissions(tmp_path):
    for student, text in (("alice", '{"not": "a notebook"'), ("bob", None)):
        sub = tmp_path / "submitted" / student / "05_vit"
        out = tmp_path / "autograded" / student / "05_vit"
        sub.mkdir(parents=True)
        out.mkdir(parents=True)
        if text is None:
            _write(
                sub / "05_vit.ipynb",
                _cells([new_output("stream", name="stdout", text="bob's run\n")], [], []),
            )
        else:
            (sub / "05_vit.ipynb").write_text(text)
        _write(out / "05_vit.ipynb", _cells([], [], []))
    assert keep_all(tmp_path, "05_vit") == 1
    assert (
        nbformat.read(tmp_path / "autograded" / "bob" / "05_vit" / "05_vit.ipynb", 4).cells[0].outputs[1].text
        == "bob's run\n"
    )
    assert (
        nbformat.read(tmp_path / "autograded" / "alice" / "05_vit" / "05_vit.ipynb", 4).cells[0].outputs == []
    )

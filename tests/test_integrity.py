"""The integrity report's intake and readers: every odd submission gets a clear row, none crashes a batch."""

import copy

import nbformat

from autograder import integrity
from autograder.intake import Intake
from autograder.nbg import REPO, assignments, notebooks

A = "03_self_attention"
NB = f"{A}.ipynb"


def _release(name=A):
    return {p.name: nbformat.read(p, 4) for p in sorted((REPO / "release" / name).glob("*.ipynb"))}


def _others():
    return {
        a: {
            c.metadata["nbgrader"]["grade_id"]
            for nb in notebooks(REPO, a)
            for c in nbformat.read(nb, 4).cells
            if c.metadata.get("nbgrader", {}).get("grade_id")
        }
        for a in assignments(REPO)
    }


def _intake(tmp_path, files: dict[str, str]):
    folder = tmp_path / "in" / "mallory" / A
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    dest = tmp_path / "submitted" / "mallory" / A
    flags = Intake(A, _release(), _others()).take("mallory", folder, dest)
    return flags, sorted(p.name for p in dest.glob("*.ipynb")) if dest.exists() else []


def _text(nb):
    return nbformat.writes(nb)


def test_an_honest_notebook_passes_without_rows(tmp_path):
    flags, copied = _intake(tmp_path, {NB: _text(_release()[NB])})
    assert flags == [] and copied == [NB]


def test_malformed_json_gets_a_row_and_is_not_graded(tmp_path):
    flags, copied = _intake(tmp_path, {NB: '{"cells": [{"cell_type": "code", "source": '})
    assert copied == []
    assert any("not a readable notebook" in f.what and f.notebook == NB for f in flags)
    assert any(f"no gradable {NB}" in f.what for f in flags)


def test_a_notebook_under_another_name_is_graded_under_its_own(tmp_path):
    flags, copied = _intake(tmp_path, {"Untitled copy.ipynb": _text(_release()[NB])})
    assert copied == [NB]
    assert [f.what for f in flags] == [
        f"handed in as Untitled copy.ipynb; graded as {NB}, whose cells it holds"
    ]


def test_another_assignments_notebook_is_refused_under_either_name(tmp_path):
    other = _text(_release("04_multi_head_attention")["04_multi_head_attention.ipynb"])
    flags, copied = _intake(tmp_path, {NB: other})
    assert copied == [] and any(
        "holds the cells of assignment 04_multi_head_attention" in f.what for f in flags
    )
    flags, copied = _intake(
        tmp_path / "b", {NB: _text(_release()[NB]), "04_multi_head_attention.ipynb": other}
    )
    assert copied == [NB] and [f.what for f in flags] == [
        "04_multi_head_attention.ipynb is a notebook of assignment 04_multi_head_attention, "
        "not 03_self_attention: not graded"
    ]


def test_an_extra_file_and_a_missing_notebook(tmp_path):
    flags, copied = _intake(tmp_path, {"notes.ipynb": _text(nbformat.v4.new_notebook())})
    assert copied == []
    assert {f.what for f in flags} == {
        f"notes.ipynb is not a notebook of {A}: ignored",
        f"no gradable {NB} was submitted: it scores 0",
    }


def test_extra_cells_and_50_mb_of_stored_output_are_taken_as_they_are(tmp_path):
    nb = copy.deepcopy(_release()[NB])
    cell = nbformat.v4.new_code_cell("print('x' * 50_000_000)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 50_000_000)]
    nb.cells.append(cell)  # nbgrader clears stored outputs before it runs anything
    flags, copied = _intake(tmp_path, {NB: _text(nb)})
    assert flags == [] and copied == [NB]


def test_edited_and_deleted_test_cells(tmp_path):
    nb = copy.deepcopy(_release()[NB])
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    by_id["test_causal_mask"].source = "pass"
    nb.cells.remove(by_id["test_worked_example"])
    by_id[
        "causal_mask_solution"
    ].source = "def causal_mask(n):\n    return None"  # answers may change, of course
    flags, copied = _intake(tmp_path, {NB: _text(nb)})
    assert copied == [NB]
    assert {(f.cell, f.what) for f in flags} == {
        ("test_causal_mask", "the test cell was edited; nbgrader graded the original"),
        ("test_worked_example", "the test cell was deleted; nbgrader put the original back and graded it"),
    }


def test_kernel_and_output_rows_name_the_cell():
    nb = copy.deepcopy(_release()[NB])
    cell = next(
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "causal_mask_solution"
    )
    cell.outputs = [
        nbformat.v4.new_output("error", ename="MemoryError", evalue="", traceback=[]),
        nbformat.v4.new_output("stream", name="stdout", text="y" * 2_000_000),
    ]
    rows = integrity.output_flags("m", A, NB, nb, 4)
    assert {r.what for r in rows} == {
        "hit the kernel's memory limit (4 GiB)",
        "printed 2.0 MB of output (limit 1 MB per cell)",
    }
    assert {r.cell for r in rows} == {"causal_mask_solution"}
    events = [
        {
            "event": "guard",
            "kind": "import-reference",
            "module": "lib.attention",
            "cell": integrity.cell_hash(cell.source),
        },
        {"event": "guard", "kind": "ready", "cell": None},
        {"event": "exit", "code": 0, "unannounced": True},
    ]
    rows = integrity.kernel_flags("m", A, NB, events, nb)
    assert [(r.cell, r.what) for r in rows] == [
        (
            "causal_mask_solution",
            "tried to import lib.attention, the reference solutions (not available while grading)",
        ),
        ("-", "the kernel ended itself (os._exit or a crash) before grading finished"),
    ]


def test_a_rerun_reports_only_the_last_kernel_of_a_notebook(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text(
        '{"event": "start", "cwd": "/x"}\n{"event": "wall-time", "cwd": "/x", "limit_s": 5}\n'
        '{"event": "start", "cwd": "/x"}\nnot json\n'
    )
    assert integrity.runs_by_folder(log) == {"/x": [{"event": "start", "cwd": "/x"}]}


def test_csv_has_one_row_per_flag(tmp_path):
    flags = [integrity.Flag("a", A, NB, "test_x", "said, with a comma")]
    integrity.write_csv(flags, tmp_path / "integrity.csv")
    assert (tmp_path / "integrity.csv").read_text().splitlines() == [
        "student,assignment,notebook,cell,what",
        f'a,{A},{NB},test_x,"said, with a comma"',
    ]

"""What every notebook promises students: the opening box's points match the grading, at least two
written questions with a mark scheme the students never see, and visible checks that stop "Run All"."""

import re

import nbformat
import pytest

from autograder.nbg import REPO, assignments

NAMES = assignments(REPO)


def _nb(kind, name):
    return nbformat.read(REPO / kind / name / f"{name}.ipynb", 4)


def _meta(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.mark.parametrize("name", NAMES)
def test_the_opening_box_states_the_points_the_gradebook_will_hold(name):
    nb = _nb("source", name)
    auto = sum(_meta(c)["points"] for c in nb.cells if _meta(c).get("grade") and not _meta(c).get("solution"))
    manual = sum(
        _meta(c)["points"]
        for c in nb.cells
        if _meta(c).get("task") or (_meta(c).get("grade") and _meta(c).get("solution"))
    )
    opening = nb.cells[0].source
    m = re.search(
        r"\*\*How this notebook is graded\*\* \((\d+) points autograded, (\d+) by hand, (\d+) in all\)",
        opening,
    )
    assert m, (
        f"{name}: the opening cell needs "
        "'How this notebook is graded (A points autograded, M by hand, T in all)'"
    )
    assert tuple(map(int, m.groups())) == (auto, manual, auto + manual), f"{name}: the box says {m.groups()}"
    assert "**Allowed.**" in opening and "Not allowed" in opening, (
        f"{name}: say which library functions may be used"
    )
    # the parts' headings carry their points, and they add up to the total
    heading_points = [
        int(p)
        for c in nb.cells
        if c.cell_type == "markdown"
        for p in re.findall(r"^## Part \d+ · .*\((\d+) points?", c.source, re.M)
    ]
    stretch = [int(p) for c in nb.cells for p in re.findall(r"^## Part .*stretch (\d+)\)", c.source, re.M)]
    assert sum(heading_points) + sum(stretch) == auto + manual, (
        f"{name}: headings {heading_points} (+ stretch {stretch})"
    )


@pytest.mark.parametrize("name", NAMES)
def test_at_least_two_written_questions_with_a_hidden_mark_scheme(name):
    src, rel = _nb("source", name), _nb("release", name)
    tasks = [(i, c) for i, c in enumerate(src.cells) if _meta(c).get("task")]
    assert len(tasks) >= 2, f"{name} has {len(tasks)} written questions"
    rel_text = "\n".join(c.source for c in rel.cells)
    for i, cell in tasks:
        assert cell.cell_type == "markdown" and _meta(cell)["locked"] and _meta(cell)["points"] > 0
        scheme = re.search(r"=== BEGIN MARK SCHEME ===(.*?)=== END MARK SCHEME ===", cell.source, re.S)
        assert scheme and "point" in scheme.group(1), (
            f"{name}/{_meta(cell)['grade_id']}: a mark scheme with points"
        )
        assert "YOUR ANSWER HERE" in src.cells[i + 1].source, (
            f"{name}/{_meta(cell)['grade_id']}: an answer cell follows"
        )
        for line in scheme.group(1).strip().splitlines():
            if len(line.strip()) > 20:
                assert line.strip() not in rel_text, (
                    f"{name}: the release shows the mark scheme line {line.strip()!r}"
                )


@pytest.mark.parametrize("name", NAMES)
def test_visible_checks_stop_run_all_instead_of_printing_true_or_false(name):
    for cell in _nb("release", name).cells:
        if cell.cell_type == "code":
            assert not re.search(r"print\(.*(allclose|torch\.equal)\(", cell.source), (
                f"{name}: a check that only prints True/False; "
                f"use course.checks.check_close/check_equal:\n{cell.source}"
            )

"""nbgrader's cell kinds, said once: the autograder's modules ask these instead of reading metadata.

The kinds are nbgrader's own (``nbgrader.utils.is_grade``, ``is_solution``, ``is_task``), made safe
for submitted files, whose ``metadata.nbgrader`` may be anything a student wrote there.
"""

from __future__ import annotations

from nbgrader import utils


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _safe(check, cell) -> bool:
    return bool(_meta(cell)) and bool(check(cell))


def grade_id(cell) -> str | None:
    gid = _meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def points(cell) -> float:
    try:
        return float(_meta(cell).get("points", 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def is_test(cell) -> bool:
    """An autograded test cell: graded, not an answer."""
    return _safe(utils.is_grade, cell) and not _safe(utils.is_solution, cell)


def is_answer(cell) -> bool:
    """A cell the student writes: code or a written answer."""
    return _safe(utils.is_solution, cell)


def is_manual(cell) -> bool:
    """Marked by a person: a graded written answer or a task."""
    return (_safe(utils.is_grade, cell) and _safe(utils.is_solution, cell)) or _safe(utils.is_task, cell)


def is_given(cell) -> bool:
    """A code cell the course wrote and the student runs as it is: no answer, no test."""
    return cell.get("cell_type") == "code" and not _safe(utils.is_grade, cell) and not is_answer(cell)


def graded(nb) -> dict:
    """grade_id -> cell for every cell that nbgrader scores or records (tests, answers, tasks)."""
    return {gid: c for c in nb.cells if (gid := grade_id(c))}

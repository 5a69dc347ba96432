"""Example submissions, built from the released notebook the way a student would fill it in.

``autograder/examples/<assignment>.yml`` lists the students and their expected scores::

    notebook: 03_self_attention.ipynb
    students:
      reference:            # every answer cell filled with the instructor's solution
        start: solution
        expected: {score: 14, failed: []}
      untouched:            # the release as handed out
        start: release
        expected: {score: 0}
      forgot_scaling:       # the solution, with some answer cells replaced
        start: solution
        replace:
          sdpa_solution: |
            def scaled_dot_product_attention(...): ...
        expected:
          score: 4
          failed: [test_scaled_dot_product_attention, ...]
          messages: {test_worked_example: sqrt(d_k)}   # the failure names the mistake

Building them from ``release/`` and ``source/`` keeps them in step with every change to the
notebook; only the mistakes themselves are written out.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from .nbg import AutograderError

EXAMPLES_DIR = Path(__file__).parent / "examples"
_MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)


@dataclass
class Example:
    student: str
    assignment: str
    notebook: str
    description: str
    start: str  # "solution" or "release"
    replace: dict[str, str] = field(default_factory=dict)
    expected_score: float | None = None
    expected_failed: list[str] | None = None
    expected_messages: dict[str, str] = field(default_factory=dict)  # grade_id -> text its failure must contain


def load_examples(assignment: str) -> list[Example]:
    path = EXAMPLES_DIR / f"{assignment}.yml"
    if not path.exists():
        return []
    spec = yaml.safe_load(path.read_text())
    out = []
    for student, s in spec["students"].items():
        if s.get("start") not in ("solution", "release"):
            raise AutograderError(f"{path}: student {student!r} needs start: solution or start: release")
        exp = s.get("expected", {})
        out.append(Example(
            student=student, assignment=assignment, notebook=spec["notebook"],
            description=s.get("description", ""), start=s["start"], replace=s.get("replace") or {},
            expected_score=exp.get("score"), expected_failed=exp.get("failed"),
            expected_messages=exp.get("messages") or {},
        ))
    return out


def _by_grade_id(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def solution_text(source_cell: nbformat.NotebookNode) -> str:
    """A source answer cell as a student who solved it would leave it: markers removed."""
    return _MARKER_LINE.sub("", source_cell.source)


def build(example: Example, source_nb: nbformat.NotebookNode, release_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The submitted notebook: the release with answer cells filled in as the example says."""
    nb = copy.deepcopy(release_nb)
    cells, source_cells = _by_grade_id(nb), _by_grade_id(source_nb)
    if example.start == "solution":
        for gid, cell in cells.items():
            if cell.metadata["nbgrader"].get("solution"):
                cell.source = solution_text(source_cells[gid])
    for gid, text in example.replace.items():
        if gid not in cells or not cells[gid].metadata["nbgrader"].get("solution"):
            answer_ids = [g for g, c in cells.items() if c.metadata["nbgrader"].get("solution")]
            raise AutograderError(
                f"example {example.student!r} of {example.assignment} replaces {gid!r}, which is not an "
                f"answer cell of {example.notebook}; answer cells: {', '.join(answer_ids)}"
            )
        cells[gid].source = text.rstrip("\n")
    return nb


def write_submissions(examples: list[Example], root: Path, release_root: Path, submitted: Path) -> None:
    """Write each example to ``submitted/<student>/<assignment>/<notebook>`` as nbgrader expects."""
    for ex in examples:
        src = nbformat.read(root / "source" / ex.assignment / ex.notebook, 4)
        rel = nbformat.read(release_root / ex.assignment / ex.notebook, 4)
        dest = submitted / ex.student / ex.assignment / ex.notebook
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(build(ex, src, rel), dest)

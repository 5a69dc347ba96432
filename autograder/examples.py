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

Hostile submissions (``autograder/examples/hostile/``) use a few more keys: ``edit`` (replace any
cell, test cells included), ``delete`` (grade_ids to remove), ``append`` (extra cells at the end),
``file`` (hand the notebook in under another name), ``raw`` (hand in this text instead of a
notebook), ``notebook_of`` (hand in another assignment's release notebook), ``layout`` (``empty``:
an empty student folder; ``file``: the notebook where the student's folder goes; ``link``: a symbolic
link to the instructor's source notebook), an ``append`` item may be ``{source, nbgrader}`` (a cell
that claims graded metadata), and under
``expected``, ``flags``: texts that rows of the integrity report must contain (``[]``: no row), or
``refused``: no score at all, and an integrity row that contains this text. A student's name is the
folder name, whatever it holds (``*``, quotes, spaces, letters outside ASCII).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from . import cells as kinds
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
    expected_messages: dict[str, str] = field(
        default_factory=dict
    )  # grade_id -> text its failure must contain
    edit: dict[str, str] = field(default_factory=dict)  # any cell, test cells included
    delete: list[str] = field(default_factory=list)
    append: list[str] = field(default_factory=list)  # code cells added at the end
    file: str | None = None  # the file name it is handed in under (default: the notebook's)
    raw: str | None = None  # hand in this text instead of a notebook
    notebook_of: str | None = None  # hand in this assignment's release notebook instead
    expected_flags: list[str] | None = None  # texts the integrity rows must contain; [] for none
    expected_refused: str | None = None  # refused at intake, with an integrity row containing this
    layout: str | None = None  # "empty": an empty student folder; "file": the notebook where the folder goes


def load_examples(assignment: str, folder: Path = EXAMPLES_DIR) -> list[Example]:
    path = folder / f"{assignment}.yml"
    if not path.exists():
        return []
    spec = yaml.safe_load(path.read_text())
    out = []
    for student, s in spec["students"].items():
        if s.get("start") not in ("solution", "release"):
            raise AutograderError(f"{path}: student {student!r} needs start: solution or start: release")
        exp = s.get("expected", {})
        out.append(
            Example(
                student=student,
                assignment=assignment,
                notebook=spec["notebook"],
                description=s.get("description", ""),
                start=s["start"],
                replace=s.get("replace") or {},
                expected_score=exp.get("score"),
                expected_failed=exp.get("failed"),
                expected_messages=exp.get("messages") or {},
                edit=s.get("edit") or {},
                delete=s.get("delete") or [],
                append=s.get("append") or [],
                file=s.get("file"),
                raw=s.get("raw"),
                notebook_of=s.get("notebook_of"),
                expected_flags=exp.get("flags"),
                expected_refused=exp.get("refused"),
                layout=s.get("layout"),
            )
        )
    return out


def solution_text(source_cell: nbformat.NotebookNode) -> str:
    """A source answer cell as a student who solved it would leave it: markers removed."""
    return _MARKER_LINE.sub("", source_cell.source)


def build(
    example: Example, source_nb: nbformat.NotebookNode, release_nb: nbformat.NotebookNode
) -> nbformat.NotebookNode:
    """The submitted notebook: the release with answer cells filled in as the example says."""
    nb = copy.deepcopy(release_nb)
    by_id, source_cells = kinds.graded(nb), kinds.graded(source_nb)
    if example.start == "solution":
        for gid, cell in by_id.items():
            if kinds.is_answer(cell):
                cell.source = solution_text(source_cells[gid])
    for gid, text in example.replace.items():
        if gid not in by_id or not kinds.is_answer(by_id[gid]):
            answer_ids = [g for g, c in by_id.items() if kinds.is_answer(c)]
            raise AutograderError(
                f"example {example.student!r} of {example.assignment} replaces {gid!r}, which is not an "
                f"answer cell of {example.notebook}; answer cells: {', '.join(answer_ids)}"
            )
        by_id[gid].source = text.rstrip("\n")
    for gid, text in example.edit.items():
        if gid not in by_id:
            raise AutograderError(
                f"example {example.student!r} of {example.assignment} edits {gid!r}, "
                f"which {example.notebook} lacks"
            )
        by_id[gid].source = text.rstrip("\n")
    nb.cells = [c for c in nb.cells if kinds.grade_id(c) not in example.delete]
    for item in example.append:  # text, or {source, nbgrader}: a cell that claims to be graded
        item = item if isinstance(item, dict) else {"source": item}
        cell = nbformat.v4.new_code_cell(item["source"].rstrip("\n"))
        if "nbgrader" in item:
            cell.metadata["nbgrader"] = dict(item["nbgrader"])
        nb.cells.append(cell)
    return nb


def write_submissions(examples: list[Example], root: Path, release_root: Path, submitted: Path) -> None:
    """Write each example to ``submitted/<student>/<assignment>/<notebook>`` as nbgrader expects."""
    for ex in examples:
        dest = submitted / ex.student / ex.assignment / (ex.file or ex.notebook)
        if ex.layout == "empty":
            (submitted / ex.student).mkdir(parents=True, exist_ok=True)
            continue
        if ex.layout == "file":
            dest = submitted / ex.student
        dest.parent.mkdir(parents=True, exist_ok=True)
        if ex.layout == "link":  # a link to the instructor's own notebook, solutions and hidden tests
            if not dest.is_symlink():
                dest.unlink(missing_ok=True)
                dest.symlink_to(root / "source" / ex.assignment / ex.notebook)
            continue
        if ex.raw is not None:
            text = ex.raw
        elif ex.notebook_of:
            other = sorted((release_root / ex.notebook_of).glob("*.ipynb"))[0]
            text = other.read_text()
        else:
            src = nbformat.read(root / "source" / ex.assignment / ex.notebook, 4)
            rel = nbformat.read(release_root / ex.assignment / ex.notebook, 4)
            text = nbformat.writes(build(ex, src, rel)) + "\n"
        if not dest.exists() or dest.read_text() != text:  # unchanged files keep their time stamp (resume)
            dest.write_text(text)


def write_examples(
    root: Path, names: list[str], folder: Path = EXAMPLES_DIR, out: Path | None = None
) -> tuple[list[Example], Path]:
    """The example submissions of ``names`` written as a submissions folder (``out``); unchanged files keep
    their time stamps, so a resumed batch skips them."""
    examples = [e for name in names for e in load_examples(name, folder)]
    if not examples:
        raise AutograderError(f"no example submissions for {', '.join(names)} in {folder}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_submissions(examples, root, root / "release", out)
    return examples, out


def grade_examples(
    root: Path,
    work: Path,
    wanted: list[str] | None = None,
    folder: Path = EXAMPLES_DIR,
    jobs: int = 1,
    **options,
):
    """(rows, examples): the example submissions of ``wanted`` graded on the one road, as ``autograder
    grade``.
    """
    from .nbg import assignments
    from .pipeline import grade, grade_parallel

    examples, subs = write_examples(
        root, assignments(root, wanted), folder, Path(f"{Path(work).resolve()}.incoming")
    )
    if jobs > 1:
        return grade_parallel(root, work, wanted, subs, jobs, **options), examples
    return grade(root, work, wanted, subs, **options), examples

"""A batch's outcome: one row per student and notebook, read from the gradebook, and its report.

Scores come from nbgrader's gradebook only; the failure messages from the autograded notebooks. A
submission nbgrader could not finish gets a 0 row of the same type that says why (otter-grader's
``GradingResults.without_results``). ``results.json`` keeps the rows for ``merge`` and the tests.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import cells


@dataclass
class CellResult:
    grade_id: str
    score: float
    max_score: float
    test: bool  # an autograded test cell (else a manually graded answer)
    needs_manual: bool
    message: str = ""  # the first line of the error a failed test raised


@dataclass
class NotebookResult:
    student: str
    assignment: str
    notebook: str
    score: float
    max_score: float
    cells: list[CellResult] = field(default_factory=list)
    sandbox: str = "sandboxed"  # or "unsandboxed": graded in an ordinary kernel with the grader's rights
    events: list[str] = field(default_factory=list)  # what the sandbox did to it (wall-time kill, ...)
    flags: list[str] = field(default_factory=list)  # its rows of the integrity report, "cell: what happened"
    wall_s: float = 0.0  # nbgrader's autograde of this submission (both passes), shared by its notebooks
    started: float = 0.0  # when that autograde began (seconds since the epoch)

    @property
    def failed(self) -> list[CellResult]:
        return [c for c in self.cells if c.test and c.score < c.max_score]

    @property
    def needs_manual(self) -> list[CellResult]:
        return [c for c in self.cells if c.needs_manual]


def error_messages(nb) -> dict[str, str]:
    """grade_id -> 'ErrorName: first line of the message' for cells that raised or wrote to stderr."""
    out = {}
    for cell in nb.cells if nb is not None else []:
        gid = cells.grade_id(cell)
        for o in cell.get("outputs", []) if gid else []:
            if o.get("output_type") == "error":
                first = str(o.get("evalue") or "").strip().splitlines()
                out[gid] = f"{o.get('ename')}: {first[0] if first else ''}".rstrip(": ")
            elif o.get("output_type") == "stream" and o.get("name") == "stderr" and gid not in out:
                text = str(o.get("text", "")).strip()
                out[gid] = "wrote to stderr: " + (text.splitlines()[0][:200] if text else repr(o.get("text")))
    return out


def from_gradebook(
    gb, student: str, assignment: str, tests: set[str], autograded: Path
) -> list[NotebookResult]:
    """The rows nbgrader's gradebook holds for one submission, with messages from its autograded notebooks."""
    rows = []
    for nb in sorted(gb.find_submission(assignment, student).notebooks, key=lambda n: n.name):
        path = autograded / f"{nb.name}.ipynb"
        msgs = error_messages(nbformat.read(path, 4) if path.exists() else None)
        found = [
            CellResult(
                g.name,
                float(g.score or 0),
                float(g.max_score),
                g.name in tests,
                bool(g.needs_manual_grade),
                msgs.get(g.name, ""),
            )
            for g in sorted(nb.grades, key=lambda g: g.name)
        ]
        rows.append(NotebookResult(student, assignment, nb.name, float(nb.score), float(nb.max_score), found))
    return rows


def without_results(student: str, assignment: str, source_nbs: dict, why: list[str]) -> list[NotebookResult]:
    """0 rows for a submission nbgrader could not finish (the kernel died, was killed, ...), saying why."""
    rows = []
    for name, nb in source_nbs.items():
        graded = [c for c in cells.graded(nb).values() if cells.is_test(c) or cells.is_manual(c)]
        found = [
            CellResult(cells.grade_id(c), 0.0, cells.points(c), cells.is_test(c), cells.is_manual(c))
            for c in graded
        ]
        total = sum(c.max_score for c in found)
        rows.append(NotebookResult(student, assignment, Path(name).stem, 0.0, total, found, events=list(why)))
    return rows


def save(results: list[NotebookResult], path: Path) -> None:
    path.write_text(json.dumps([asdict(r) for r in results], indent=2))


def load(path: Path) -> list[NotebookResult]:
    out = []
    for r in json.loads(path.read_text()):
        r["cells"] = [CellResult(**c) for c in r["cells"]]
        out.append(NotebookResult(**r))
    return out


def table(results: list[NotebookResult]) -> str:
    head = (
        f"{'student':<24} {'notebook':<24} {'score':>6} {'max':>6}  {'manual':>6}  {'kernel':<11}  "
        f"{'flags':>5}  failed tests"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        failed = ", ".join(c.grade_id for c in r.failed) or "-"
        lines.append(
            f"{r.student:<24} {r.notebook:<24} {r.score:6.1f} {r.max_score:6.1f}  {len(r.needs_manual):6d}  "
            f"{r.sandbox:<11}  {len(r.flags):5d}  {failed}"
        )
    sections = [
        (
            "why tests failed:",
            [f"  {r.student} / {c.grade_id}: {c.message}" for r in results for c in r.failed if c.message],
        ),
        (
            "what the sandbox stopped:",
            [f"  {r.student} / {r.notebook}: {e}" for r in results for e in r.events],
        ),
        (
            "integrity report (also in integrity.csv):",
            [f"  {r.student} / {r.notebook} / {f}" for r in results for f in r.flags],
        ),
    ]
    for title, notes in sections:
        if notes:
            lines += ["", title, *notes]
    return "\n".join(lines)


def exported_table(csv_path: Path, results: list[NotebookResult]) -> str:
    """nbgrader export's CSV, as a table of total score per student and assignment."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    graded = {(r.assignment, r.student) for r in results}
    # nbgrader lists every student for every assignment, with 0 where nothing was submitted
    submitted = [r for r in rows if (r["assignment"], r["student_id"]) in graded]
    lines = [f"{'assignment':<24} {'student':<24} {'score':>6} {'max':>6}"]
    for r in sorted(submitted, key=lambda r: (r["assignment"], r["student_id"])):
        score, top = float(r["score"]), float(r["max_score"])
        lines.append(f"{r['assignment']:<24} {r['student_id']:<24} {score:6.1f} {top:6.1f}")
    if len(rows) > len(submitted):
        lines.append(
            f"({len(rows) - len(submitted)} rows of students who did not submit an assignment not shown)"
        )
    return "\n".join(lines)


def _problems(ex, got: list[NotebookResult]) -> list[str]:
    who, out = f"{ex.assignment}/{ex.student}", []
    score = sum(r.score for r in got)
    failed = sorted(c.grade_id for r in got for c in r.failed)
    if ex.expected_score is not None and abs(score - ex.expected_score) > 1e-6:
        out.append(
            f"{who}: scored {score:g}, expected {ex.expected_score:g} (failed: {', '.join(failed) or 'none'})"
        )
    if ex.expected_failed is not None and failed != sorted(ex.expected_failed):
        out.append(f"{who}: failed {failed}, expected {sorted(ex.expected_failed)}")
    messages = {c.grade_id: c.message for r in got for c in r.failed}
    for gid, text in ex.expected_messages.items():
        if text not in messages.get(gid, ""):
            got_text = messages.get(gid, "no failure")
            out.append(f"{who}: {gid} should fail with a message containing {text!r}; got {got_text!r}")
    flags = [f for r in got for f in r.flags]
    if ex.expected_flags is not None and not ex.expected_flags and flags:
        out.append(f"{who}: expected no integrity rows, got {flags}")
    for text in ex.expected_flags or []:
        if not any(text in f for f in flags):
            out.append(f"{who}: no integrity row mentions {text!r}; rows: {flags}")
    return out


def refused(results: list[NotebookResult], flags: list) -> list:
    """Integrity rows of submissions that got no verdict row: refused at intake, each saying why."""
    graded = {(r.student, r.assignment) for r in results}
    return [f for f in flags if (f.student, f.assignment) not in graded]


def compare_expected(results: list[NotebookResult], examples: list, flags: list = ()) -> list[str]:
    """What the examples got (scores, failures, integrity rows, refusals) against their spec."""
    by_key: dict[tuple[str, str], list[NotebookResult]] = {}
    for r in results:
        by_key.setdefault((r.student, r.assignment), []).append(r)
    problems = []
    for ex in examples:
        got = by_key.get((ex.student, ex.assignment))
        if ex.expected_refused is not None:
            rows = [f.what for f in flags if (f.student, f.assignment) == (ex.student, ex.assignment)]
            if got or not any(ex.expected_refused in w for w in rows):
                problems.append(
                    f"{ex.assignment}/{ex.student}: should be refused with a row about "
                    f"{ex.expected_refused!r}; graded: {bool(got)}, rows: {rows}"
                )
            continue
        problems += _problems(ex, got) if got else [f"{ex.assignment}/{ex.student}: was not graded"]
    return problems

"""The integrity report: what each submission did besides answering, one row per cell and event.

Three sources, each read by the grader outside the student's kernel:

* the submitted notebook against the release (``autograder/intake.py``): malformed JSON, a notebook under the
  wrong name or of another assignment, missing or extra notebooks, edited or deleted test cells;
* the sandbox launcher's log (``<work>/sandbox/events.jsonl``): the kernel guard's reports
  (``autograder/sandbox/guard.py``), kills at the wall-time limit, kernels that died or ended themselves;
* the autograded notebook: cells that timed out, hit the memory limit, or printed too much.

``write_csv`` writes ``integrity.csv`` (student, assignment, notebook, cell, what) beside grades.csv.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from nbgrader.preprocessors import OverwriteCells

from course.settings import OUTPUT_LIMIT_BYTES

from . import cells

NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")
# what OverwriteCells (add_missing_cells) writes above a test cell it puts back
MISSING_CELL_NOTE = OverwriteCells.class_traits()["missing_cell_notification"].default_value


@dataclass(frozen=True)
class Flag:
    student: str
    assignment: str
    notebook: str
    cell: str  # a grade_id, "cell N", or "-" for the whole notebook
    what: str


def cell_hash(source: str) -> str:
    """How the kernel guard names a cell: the SHA-256 of its source, 16 hex digits."""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def test_cell_sources(source_nb) -> list[str]:
    """The test cells as nbgrader runs them: their source/ text, or that text put back after a deletion."""
    out = []
    for gid, cell in cells.graded(source_nb).items():
        if cells.is_test(cell):
            out += [cell.source, "# " + MISSING_CELL_NOTE.format(cell_id=gid) + cell.source]
    return out


def cell_flags(student: str, assignment: str, notebook: str, submitted, released) -> list[Flag]:
    """Test cells a student edited or deleted (nbgrader grades the original either way)."""
    flags, mine = [], cells.graded(submitted)
    for gid, cell in cells.graded(released).items():
        if not cells.is_test(cell):
            continue
        if gid not in mine:
            what = "the test cell was deleted; nbgrader put the original back and graded it"
        elif mine[gid].source.strip() != cell.source.strip():
            what = "the test cell was edited; nbgrader graded the original"
        else:
            continue
        flags.append(Flag(student, assignment, notebook, gid, what))
    return flags


# ------------------------------------------------------------------------------------- after grading
_GUARD_WORDS = {
    "import-reference": lambda e: (
        f"tried to import {e.get('module')}, the reference solutions (not available while grading)"
    ),
    "forbidden-read": lambda e: f"tried to read {e.get('path')}, outside what a notebook may read",
    "network": lambda e: (
        f"tried to open a network connection to {e.get('address')} (there is no network while grading)"
    ),
    "replaced": lambda e: f"replaced {', '.join(e.get('names', []))}, which the tests rely on",
    "restored": lambda e: (
        f"the originals of {', '.join(e.get('names', []))} were put back before this test ran"
    ),
    "flood": lambda e: f"sent more than {e.get('limit')} reports: the rest were dropped",
    "garbled": lambda e: "wrote something else into the grader's integrity channel",
}


def _guard_words(e: dict) -> str | None:
    kind = e.get("kind")
    words = _GUARD_WORDS.get(kind)
    return words(e) if words else None


def runs_by_folder(events_path: Path) -> dict[str, list[dict]]:
    """notebook folder -> the events of its last kernel run (a re-run replaces what an earlier one said)."""
    runs: dict[str, list[dict]] = {}
    if not events_path.exists():
        return runs
    for line in events_path.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "start":
            runs[e["cwd"]] = []
        runs.setdefault(e.get("cwd", ""), []).append(e)
    return runs


def kernel_words(e: dict) -> str | None:
    """What the launcher saw, in plain words (None for the routine start and guard-ready events)."""
    if e.get("event") == "wall-time":
        return f"killed after the {e['limit_s']:.0f} s wall-time limit per notebook"
    if e.get("event") == "killed":
        return "the kernel was killed (SIGKILL: the memory limit or the machine's OOM killer)"
    if e.get("event") == "guard-missing":
        return "the kernel guard did not start: this notebook was graded without its reports"
    if e.get("event") == "exit":
        if e.get("unannounced"):
            return "the kernel ended itself (os._exit or a crash) before grading finished"
        return f"the kernel died (exit code {e['code']})"
    return None


def _labels(nb) -> dict[str, str]:
    out = {}
    for i, cell in enumerate(nb.cells if nb else []):
        out.setdefault(cell_hash(cell.source), cells.grade_id(cell) or f"cell {i + 1}")
    return out


def output_flags(student: str, assignment: str, notebook: str, nb, memory_gib: float | None) -> list[Flag]:
    flags = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        label = cells.grade_id(cell) or f"cell {i + 1}"
        size = len(json.dumps(cell.get("outputs", [])))
        if size > OUTPUT_LIMIT_BYTES:
            flags.append(
                Flag(
                    student,
                    assignment,
                    notebook,
                    label,
                    f"printed {size / 1e6:.1f} MB of output "
                    f"(limit {OUTPUT_LIMIT_BYTES / 1e6:.0f} MB per cell)",
                )
            )
        for o in cell.get("outputs", []):
            if o.get("output_type") != "error":
                continue
            text = f"{o.get('ename')}: {o.get('evalue')}"
            if o.get("ename") == "JudgeError":
                why = "the judge could not decide this test (the grader's fault): marked for manual grading"
                flags.append(Flag(student, assignment, notebook, label, why))
            elif o.get("ename") == "CellTimeoutError" or "timed out" in text.lower():
                flags.append(
                    Flag(
                        student,
                        assignment,
                        notebook,
                        label,
                        "the cell ran past nbgrader's per-cell timeout and was stopped",
                    )
                )
            elif (
                o.get("ename") == "MemoryError"
                or "can't allocate memory" in text
                or "DefaultCPUAllocator" in text
            ):
                limit = f" ({memory_gib:g} GiB)" if memory_gib else ""
                flags.append(
                    Flag(student, assignment, notebook, label, f"hit the kernel's memory limit{limit}")
                )
    return flags


def kernel_flags(student: str, assignment: str, notebook: str, events: list[dict], autograded) -> list[Flag]:
    labels, flags = _labels(autograded), []
    for e in events:
        words = _guard_words(e) if e.get("event") == "guard" else kernel_words(e)
        if words:
            cell = labels.get(e.get("cell") or "", "-" if not e.get("cell") else f"a cell ({e['cell']})")
            flags.append(Flag(student, assignment, notebook, cell, words))
    return list(dict.fromkeys(flags))


def write_csv(flags: list[Flag], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", "notebook", "cell", "what"])
        for fl in flags:
            w.writerow([fl.student, fl.assignment, fl.notebook, fl.cell, fl.what])


def read_csv(path: Path) -> list[Flag]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [Flag(*row) for row in list(csv.reader(f))[1:]]

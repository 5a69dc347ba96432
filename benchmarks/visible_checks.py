"""Benchmark: how many of the typical mistakes that the hidden tests catch do the visible checks catch first?

Every example submission in ``autograder/examples/<assignment>.yml`` that starts from the solution and
replaces answer cells is split into single mistakes: one replaced answer cell each, on top of the
solution. A mistake counts when the example expects a test of that answer cell (a graded test cell
between it and the next answer cell) to fail: the hidden tests catch it. Each mistake then runs as the
student sees it, in the *release* notebook (visible checks and visible asserts, no hidden test), from
the top down to that test cell, in a fresh kernel. It is caught when "Run All" stops with an error at
or after the mistaken cell and no later than its test cell. Target: at least 80% (issue 11).

    python benchmarks/visible_checks.py                 # every notebook
    python benchmarks/visible_checks.py 03 04 --json results/visible_checks.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder.cells import is_test as _is_test
from autograder.examples import Example, build, load_examples
from autograder.nbg import REPO, assignments


def _gid(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _is_answer(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("solution"))


def mistakes(name: str) -> list[tuple[str, str, str, list[str]]]:
    """(student, answer cell, its replacement, the tests of that cell the example expects to fail)."""
    src = nbformat.read(REPO / "source" / name / f"{name}.ipynb", 4)
    order = [_gid(c) for c in src.cells]
    answers = [i for i, c in enumerate(src.cells) if _is_answer(c)]
    out = []
    for ex in load_examples(name):
        if ex.start != "solution" or not ex.replace or not ex.expected_failed:
            continue
        for gid, text in ex.replace.items():
            i = order.index(gid)
            nxt = min([a for a in answers if a > i], default=len(src.cells))
            tests = [_gid(c) for c in src.cells[i + 1 : nxt] if _is_test(c) and _gid(c) in ex.expected_failed]
            if tests:
                out.append((ex.student, gid, text, tests))
    return out


def run_until(nb, last: int, cwd: Path) -> int | None:
    """Run cells 0..last in a fresh kernel; the index of the first cell that raised, or None."""
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells[: last + 1]):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, i)
            except CellExecutionError:
                return i
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*")
    p.add_argument("--json")
    args = p.parse_args()
    os.environ.setdefault("COURSE_PROFILE", "smoke")
    os.environ.setdefault("MPLBACKEND", "Agg")
    rows = []
    for name in assignments(REPO, args.assignments or None):
        src = nbformat.read(REPO / "source" / name / f"{name}.ipynb", 4)
        rel = nbformat.read(REPO / "release" / name / f"{name}.ipynb", 4)
        for student, gid, text, tests in mistakes(name):
            nb = build(Example(student, name, f"{name}.ipynb", "", "solution", replace={gid: text}), src, rel)
            order = [_gid(c) for c in nb.cells]
            first, last = order.index(gid), max(order.index(t) for t in tests)
            with tempfile.TemporaryDirectory(prefix="visible-") as tmp:
                stopped = run_until(nb, last, Path(tmp))
            caught = stopped is not None and first <= stopped <= last
            where = (
                "-" if stopped is None else (_gid(nb.cells[stopped]) or f"cell {stopped} (a visible check)")
            )
            rows.append(
                dict(assignment=name, student=student, cell=gid, tests=tests, caught=caught, stopped_at=where)
            )
            print(
                f"{name:26s} {student:24s} {gid:28s} {'caught' if caught else 'MISSED':7s} "
                f"stopped at {where}",
                flush=True,
            )
    by = {}
    for r in rows:
        by.setdefault(r["assignment"], []).append(r["caught"])
    print()
    for name, caught in by.items():
        print(
            f"{name:26s} {sum(caught):3d} of {len(caught):3d} caught by the visible checks "
            f"({sum(caught) / len(caught):.0%})"
        )
    total = [r["caught"] for r in rows]
    print(
        f"{'all notebooks':26s} {sum(total):3d} of {len(total):3d} "
        f"({sum(total) / max(1, len(total)):.0%}; target at least 80%)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

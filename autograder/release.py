"""Build ``release/`` from ``source/`` with ``nbgrader generate_assignment``, and prove it leaks nothing."""

from __future__ import annotations

import filecmp
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from . import cells
from .nbg import AutograderError, assignments, fresh_work_dir

MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "BEGIN MARK SCHEME",
    "END MARK SCHEME",
)
REGION = re.compile(
    r"^[ \t]*(?:###|===) BEGIN (SOLUTION|HIDDEN TESTS|MARK SCHEME)(?: ===)?[ \t]*$"
    r"(.*?)^[ \t]*(?:###|===) END \1",
    re.M | re.S,
)
_LIB_IMPORT = re.compile(r"^\s*(?:import lib\b|from lib\b)", re.M)


def secret_lines(source_nb: nbformat.NotebookNode) -> set[str]:
    """Lines that only the instructor may see: inside solution, hidden-test and mark-scheme
    regions, and whole written answers. Lines that also appear in public parts are left out."""
    secret, public = set(), set()
    for cell in source_nb.cells:
        regions = [m.group(2) for m in REGION.finditer(cell.source)]
        public_text = REGION.sub("", cell.source)
        if cell.cell_type == "markdown" and cells.is_answer(cell) and not regions:
            regions, public_text = [cell.source], ""  # a written answer is cleared whole
        for region in regions:
            secret.update(line.strip() for line in region.splitlines())
        public.update(line.strip() for line in public_text.splitlines())
    return {s for s in secret - public if len(s) >= 8}


def leaks(source_nb: nbformat.NotebookNode, release_nb: nbformat.NotebookNode) -> list[str]:
    """Problems that would reveal a solution or a hidden test in a released notebook."""
    problems = []
    secret = secret_lines(source_nb)
    for i, cell in enumerate(release_nb.cells):
        where = f"cell {i} ({cells.grade_id(cell) or cell.get('id', '?')})"
        for m in MARKERS:
            if m in cell.source:
                problems.append(f"{where}: contains the marker {m!r}")
        if _LIB_IMPORT.search(cell.source):
            problems.append(f"{where}: imports the reference package lib")
        for line in cell.source.splitlines():
            if line.strip() in secret:
                problems.append(f"{where}: reveals the line {line.strip()!r}")
        if cell.cell_type == "code" and cell.get("outputs"):
            problems.append(f"{where}: has stored outputs")
    return problems


def generate(root: Path, work: Path, names: list[str]) -> None:
    """nbgrader generate_assignment for each name, writing to ``work/release`` and ``work``'s gradebook,
    in this process through nbgrader's API (a command per assignment spent 2 s starting nbgrader)."""
    from .gradebook import api

    nbgrader_api = api(root, work)
    for name in names:
        out = nbgrader_api.generate_assignment(name, force=True, create=True)
        if not out.get("success"):
            log = (out.get("log", "") + out.get("error", "")).strip()
            raise AutograderError(f"`nbgrader generate_assignment {name}` failed:\n{log[-3000:]}")


def check_leaks(root: Path, release_root: Path, names: list[str]) -> list[str]:
    problems = []
    for name in names:
        for src in sorted((root / "source" / name).glob("*.ipynb")):
            rel = release_root / name / src.name
            if not rel.exists():
                problems.append(f"{rel}: missing")
                continue
            problems += [f"{rel}: {p}" for p in leaks(nbformat.read(src, 4), nbformat.read(rel, 4))]
    return problems


def differences(a: Path, b: Path) -> list[str]:
    """Files that differ between two release folders (relative paths)."""
    out = []
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__", ".ipynb_checkpoints"])

    def walk(c: filecmp.dircmp, prefix: str):
        out.extend(f"{prefix}{f}: only in the fresh build" for f in c.left_only)
        out.extend(f"{prefix}{f}: only in release/" for f in c.right_only)
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        out.extend(f"{prefix}{f}: differs" for f in mismatch + errors)
        for sub, subcmp in c.subdirs.items():
            walk(subcmp, f"{prefix}{sub}/")

    walk(cmp, "")
    return out


def release(root: Path, wanted: list[str] | None = None, check: bool = False) -> list[str]:
    """Regenerate release/ (or, with check, compare a fresh build with it). Returns problems found."""
    names = assignments(root, wanted)
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
        work = fresh_work_dir(Path(tmp) / "course")
        generate(root, work, names)
        problems = check_leaks(root, work / "release", names)
        if problems:
            raise AutograderError(
                "the generated release would leak solutions or hidden tests:\n  " + "\n  ".join(problems)
            )
        for name in names:
            fresh, committed = work / "release" / name, root / "release" / name
            if check:
                if not committed.exists():
                    problems.append(f"release/{name}: missing; run `autograder release {name}`")
                else:
                    problems += [f"release/{name}/{d}" for d in differences(fresh, committed)]
            else:
                if committed.exists():
                    shutil.rmtree(committed)
                shutil.copytree(fresh, committed)
                print(f"release/{name}: generated from source/{name}")
    return problems

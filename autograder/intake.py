"""Intake: from a folder of submissions to nbgrader's ``submitted/``, names kept as data.

``DIR/<student>/<assignment>/<notebook>.ipynb`` as ``nbgrader collect`` lays it out (with its
``timestamp.txt`` and ``submission_secret.txt``). Each notebook is read once, checked against the
release and copied if it can be graded; what happened goes to the integrity report as a ``Flag``.

A folder name is whatever the student or the zip chose. nbgrader builds its paths with glob
patterns and regular expressions from student ids, so a name that is not plainly safe is graded
under a stand-in id (``id-`` and 16 hex digits of its SHA-256), recorded in ``<work>/names.json``
and mapped back in every row, the score table and ``grades.csv``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import unicodedata
from pathlib import Path

import nbformat

from . import cells
from .integrity import NBGRADER_FILES, Flag, cell_flags

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}")  # no glob or regex character, no path part


def student_id(name: str) -> str:
    """The id nbgrader grades ``name`` under: the name itself when it is plainly safe, else a stand-in."""
    if SAFE_ID.fullmatch(name) and not name.endswith(".") and not name.startswith("id-"):
        return name
    return "id-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def save_names(names: dict[str, str], work: Path) -> None:
    """Record id -> name (merged with what an earlier run of the batch recorded)."""
    path = work / "names.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**known, **names}, indent=1, ensure_ascii=False))


def load_names(work: Path) -> dict[str, str]:
    path = work / "names.json"
    return json.loads(path.read_text()) if path.exists() else {}


# what tools leave beside submissions: skipped silently
JUNK = (".ipynb_checkpoints", "__MACOSX", ".DS_Store")
LAYOUT = "<student>/<assignment>/<notebook>.ipynb"


def _refuse(name: str, assignments: list[str], why: str) -> list[Flag]:
    """One integrity row per assignment of the batch for a folder entry that cannot be graded."""
    return [Flag(name, a, "-", "-", why) for a in assignments]


def students(folder: Path) -> list[str]:
    """Every name in a submissions folder that gets a verdict (graded or refused), in name order: what
    shards divide."""
    return sorted(p.name for p in folder.iterdir() if p.name not in JUNK)


def survey(folder: Path, assignments: list[str]) -> tuple[list[Path], list[Flag]]:
    """(student folders, rows): every entry of a submissions folder becomes a student or a refusal that
    names it, says why and how to fix it; names that collide in Unicode or in case are flagged, not merged."""
    found, flags = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name in JUNK:
            continue
        if entry.is_symlink():
            why = "a symbolic link where a student's folder should be: not graded (copy the folder itself in)"
        elif name.startswith("."):
            why = "a hidden folder (its name starts with a dot): not graded (rename it without the dot)"
        elif entry.is_file():
            why = f"a file where a student's folder should be: not graded (put it at {LAYOUT})"
        elif not entry.is_dir():
            why = "neither a folder nor a file: not graded"
        elif not any(entry.iterdir()):
            why = f"an empty folder: nothing was handed in (expected {LAYOUT})"
        else:
            found.append(entry)
            continue
        flags += _refuse(name, assignments, why)
    return found, flags + twins([p.name for p in found], assignments)


def twins(names: list[str], assignments: list[str]) -> list[Flag]:
    """Rows for names that are one name in Unicode normal form NFC or differ only in case: both graded."""
    groups: dict[str, list[str]] = {}  # one key per name as a person reads it: NFC, case folded
    for name in names:
        groups.setdefault(unicodedata.normalize("NFC", name).casefold(), []).append(name)
    flags = []
    for name, group in ((n, g) for g in groups.values() if len(g) > 1 for n in g):
        nfc = unicodedata.normalize("NFC", name)
        for other in group:
            if other == name:
                continue
            if unicodedata.normalize("NFC", other) == nfc:
                why = f"the same name in Unicode normal form NFC as the folder {other!r}: graded apart"
            else:
                why = f"names that differ only in case: this folder and {other!r} are graded apart"
            flags += [
                Flag(name, a, "-", "-", why + " (one student twice? keep one folder)") for a in assignments
            ]
    return flags


def stray(folder: Path, assignment: str) -> str | None:
    """Why ``folder/assignment`` cannot be taken in, or None when it is a folder or absent."""
    entry = folder / assignment
    if entry.is_symlink():
        return f"{assignment} is a symbolic link: not graded (hand in the folder itself)"
    if entry.exists() and not entry.is_dir():
        return f"{assignment} is a file where a folder should be: not graded (expected {LAYOUT})"
    if not entry.exists() and any(folder.glob("*.ipynb")):
        return f"notebooks handed in without an {assignment}/ folder: not graded (expected {LAYOUT})"
    return None


def _read(path: Path):
    """(notebook, None) or (None, why it cannot be graded)."""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # malformed JSON, not a notebook, unreadable bytes
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        why = f"{path.name} is not a readable notebook ({type(e).__name__}: {first})"
        return None, why + "; it scores 0 until resubmitted"
    try:
        nbformat.validate(nb)
    except Exception as e:
        first = str(e).strip().splitlines()[0][:160]
        return None, f"{path.name} is not a valid notebook (nbformat: {first}); it scores 0 until resubmitted"
    return nb, None


class Intake:
    """One assignment's intake: the release's notebooks and every assignment's grade_ids, read once."""

    def __init__(
        self, assignment: str, release: dict[str, nbformat.NotebookNode], others: dict[str, set[str]]
    ):
        self.assignment, self.release, self.others = assignment, release, others
        self.wanted_ids = {name: set(cells.graded(nb)) for name, nb in release.items()}

    def owner(self, ids: set[str]) -> str | None:
        """The assignment whose notebooks share the most cells with these (ties go to this one)."""
        best = max(
            self.others.items(),
            key=lambda kv: (len(ids & kv[1]), kv[0] == self.assignment),
            default=(None, set()),
        )
        return best[0] if best[1] & ids else None

    def readable(self, student: str, folder: Path, flags: list[Flag]) -> dict[str, tuple[Path, object]]:
        out = {}
        for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
            if path.is_symlink() or not path.is_file():
                what = "a symbolic link" if path.is_symlink() else "not a regular file"
                why = f"{path.name} is {what}: not graded (hand in the notebook file itself)"
                flags.append(Flag(student, self.assignment, path.name, "-", why))
                continue
            nb, why = _read(path)
            if why:
                flags.append(Flag(student, self.assignment, path.name, "-", why))
            else:
                out[path.name] = (path, nb)
        return out

    def choose(self, student: str, found: dict, flags: list[Flag]) -> dict[str, tuple[Path, object]]:
        """release notebook name -> (file, notebook) to grade, from what was found."""
        a, graded = self.assignment, {}
        for name, (path, nb) in found.items():  # handed in under a name the assignment has
            if name in self.release:
                other = self.owner(set(cells.graded(nb)))
                if other not in (a, None):
                    flags.append(
                        Flag(
                            student,
                            a,
                            name,
                            "-",
                            f"{name} holds the cells of assignment {other}, not {a}: not graded",
                        )
                    )
                else:
                    graded[name] = (path, nb)
        for name, (
            path,
            nb,
        ) in found.items():  # under another name: a copy, a renamed download, another notebook
            if name in self.release:
                continue
            ids = set(cells.graded(nb))
            target = next((r for r in self.release if r not in graded and ids & self.wanted_ids[r]), None)
            other = self.owner(ids)
            if target and other == a:
                graded[target] = (path, nb)
                flags.append(
                    Flag(
                        student,
                        a,
                        target,
                        "-",
                        f"handed in as {name}; graded as {target}, whose cells it holds",
                    )
                )
            elif other not in (a, None):
                flags.append(
                    Flag(
                        student,
                        a,
                        name,
                        "-",
                        f"{name} is a notebook of assignment {other}, not {a}: not graded",
                    )
                )
            else:
                flags.append(Flag(student, a, name, "-", f"{name} is not a notebook of {a}: ignored"))
        for name in self.release:
            if name not in graded:
                flags.append(Flag(student, a, name, "-", f"no gradable {name} was submitted: it scores 0"))
        return graded

    def take(self, student: str, folder: Path, dest: Path) -> list[Flag]:
        """Copy what can be graded from ``folder`` to ``dest`` (nbgrader's submitted/<id>/<assignment>)."""
        flags: list[Flag] = []
        graded = self.choose(student, self.readable(student, folder, flags), flags)
        for (
            meta
        ) in NBGRADER_FILES:  # what nbgrader collect writes beside the notebooks: late penalties, feedback
            src = folder / meta
            if graded and src.is_file() and not src.is_symlink():
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / meta)
        for name, (path, nb) in graded.items():
            flags += cell_flags(student, self.assignment, name, nb, self.release[name])
            foreign = foreign_graded_cells(student, self.assignment, name, nb, self.release[name])
            flags += foreign
            dest.mkdir(parents=True, exist_ok=True)
            if path.name == name and not foreign:
                shutil.copy2(path, dest / name)  # keeps the time stamp: a re-run skips what nbgrader graded
            else:
                nbformat.write(nb, dest / name)
                shutil.copystat(path, dest / name)
        return flags


def foreign_graded_cells(student: str, assignment: str, notebook: str, nb, released) -> list[Flag]:
    """Cells whose nbgrader metadata the assignment did not give them lose it (in ``nb``), one row each.

    nbgrader would fail the whole submission on a graded cell it does not know, or score a copy of a test
    cell's id in place of the original. A cell with an id the release lacks, or a second cell with an id
    the release has, becomes an ordinary cell: it still runs, it is not scored, and the student's honest
    work in the instructor's cells is graded as usual. Of several cells with one id, the one that keeps it
    is the release's own source if present, else the first of the release's cell type.
    """
    wanted = {gid: c for c in released.cells if (gid := cells.grade_id(c))}
    keep: dict[str, int] = {}
    for i, c in enumerate(nb.cells):
        gid = cells.grade_id(c)
        if gid in wanted and c.cell_type == wanted[gid].cell_type:
            same = c.source.strip() == wanted[gid].source.strip()
            if gid not in keep or (same and nb.cells[keep[gid]].source.strip() != wanted[gid].source.strip()):
                keep[gid] = i
    flags = []
    for i, c in enumerate(nb.cells):
        meta = c.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        gid = cells.grade_id(c)
        if gid is not None and keep.get(gid) == i:
            continue
        if not isinstance(meta, dict) or not any(
            meta.get(k) for k in ("grade", "solution", "task", "locked")
        ):
            if isinstance(meta, dict) and gid is None:
                continue  # nbgrader's own bookkeeping on an ordinary cell
        del c.metadata["nbgrader"]
        if gid in wanted:
            why = f"cell {i + 1} is a copy of the graded cell {gid}: not scored (the original is)"
        else:
            why = f"cell {i + 1} carries graded metadata the assignment does not have: ignored for scoring"
        flags.append(Flag(student, assignment, notebook, gid or f"cell {i + 1}", why))
    return flags

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


def students(folder: Path) -> list[Path]:
    """Student folders of a submissions folder: every sub-folder but hidden ones, in name order."""
    return sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )


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
            dest.mkdir(parents=True, exist_ok=True)
            if path.name == name:
                shutil.copy2(path, dest / name)  # keeps the time stamp: a re-run skips what nbgrader graded
            else:
                nbformat.write(nb, dest / name)
        return flags

"""Reference values for the hidden tests, computed by the grader outside the student's kernel.

While a submission is graded its kernel cannot import ``lib`` (the reference solutions): the grader
runs the fixtures in ``autograder/references/`` with ``lib`` *outside* the sandbox, before
``nbgrader autograde``, and writes one file of plain data per assignment (inputs and the outputs
``lib`` gives for them). A hidden test reads its own entry::

    R = reference("test_causal_mask")   # what lib computed on this test's inputs

This module holds no solution: only the code that finds and reads those files. The file is
read-only in the sandbox, and every read of it from outside a test cell is reported (see
``autograder/sandbox/guard.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .settings import ENV_ASSIGNMENT, ENV_REFERENCES, NBGRADER_CONFIG
from .settings import REFERENCES_DIR as DEFAULT_DIR


def references_dir() -> Path:
    """$COURSE_REFERENCES, else build/references in the nearest course directory above the notebook."""
    if os.environ.get(ENV_REFERENCES):
        return Path(os.environ[ENV_REFERENCES])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / NBGRADER_CONFIG).is_file():
            return folder / DEFAULT_DIR
    return here / DEFAULT_DIR


def reference_file(assignment: str | None = None) -> Path:
    assignment = assignment or os.environ.get(ENV_ASSIGNMENT) or Path.cwd().name
    return references_dir() / f"{assignment}.pt"


def reference(grade_id: str, assignment: str | None = None):
    """The data the fixture ``grade_id`` of this assignment computed with ``lib`` (tensors, lists, dicts)."""
    path = reference_file(assignment)
    if not path.is_file():
        raise FileNotFoundError(
            f"the hidden tests' reference values are not at {path}. The grader makes them itself; to run "
            f"hidden tests by hand (nbval, nbgrader autograde, JupyterLab), run `autograder references` "
            f"in the course directory first, or point ${ENV_REFERENCES} at the folder that holds them."
        )
    table = torch.load(path, weights_only=True)
    if grade_id not in table:
        raise KeyError(
            f"{path} has no reference values for {grade_id!r} (it has {', '.join(sorted(table))}): "
            f"rebuild it with `autograder references` after changing the fixtures"
        )
    return table[grade_id]

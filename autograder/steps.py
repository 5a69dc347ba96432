"""The course's own steps inside ``nbgrader autograde``, named in ``nbgrader_config.py``.

nbgrader's autograde sends each notebook through two lists of preprocessors
(``nbgrader/converters/autograde.py``): pass 1, ``sanitize_preprocessors``, reads the submitted file
and starts with ``ClearOutput``; pass 2, ``autograde_preprocessors``, executes it and scores it. Only
the notebook file carries anything from pass 1 to pass 2. Because ``nbgrader_config.py`` lists these
steps, ``nbgrader autograde`` run by hand writes the same files as ``autograder grade``.

* ``StashSubmittedOutputs`` (first in pass 1): the written questions ask about the student's own run
  (their curves, accuracies, maps), but autograde clears every output and re-runs the notebook at
  grading sizes. Before ``ClearOutput``, this step copies the plain outputs of every *given* code
  cell (neither an answer nor a test) into the cell's metadata under ``dl_course``.
* ``RestoreSubmittedOutputs`` (pass 2, after ``LimitOutput``): puts them back, labelled, above the
  grader's labelled re-run, and drops the key from every cell.

Only plain outputs travel: text, PNG and JPEG images, errors (no HTML or JavaScript reaches the
instructor's browser), at most ``SUBMITTED_OUTPUT_MAX_BYTES`` per cell. The outputs are the student's
file, not evidence: they can be edited by hand like the answer text itself.
"""

from __future__ import annotations

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from course.settings import SUBMITTED_OUTPUT_MAX_BYTES

from .cells import is_given

KEY = "dl_course"  # our key in a cell's metadata; nbgrader's steps only touch metadata.nbgrader
SUBMITTED = "── as submitted: the student's own run (written answers refer to these outputs) ──\n"
RERUN = "── re-run by the grader, smoke profile at grading sizes (for the autograded tests only) ──\n"
KEPT_MIME = ("text/plain", "image/png", "image/jpeg")


def _label(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def plain_outputs(outputs, max_bytes: int = SUBMITTED_OUTPUT_MAX_BYTES) -> list:
    """The outputs with only plain MIME types, or one note when together they exceed ``max_bytes``."""
    kept, size = [], 0
    for out in outputs:
        out = nbformat.from_dict(dict(out))
        if out.get("output_type") in ("display_data", "execute_result"):
            data = {k: v for k, v in out.get("data", {}).items() if k in KEPT_MIME}
            if not data:
                continue
            out = nbformat.v4.new_output("display_data", data=data)
        elif out.get("output_type") == "stream":
            out = nbformat.v4.new_output("stream", name="stdout", text=str(out.get("text", "")))
        elif out.get("output_type") == "error":
            out = nbformat.v4.new_output(
                "error",
                ename=str(out.get("ename", "")),
                evalue=str(out.get("evalue", "")),
                traceback=[str(t) for t in out.get("traceback", [])],
            )
        else:
            continue
        size += len(str(out))
        if size > max_bytes:
            note = f"[the submitted outputs of this cell exceed {max_bytes / 1e6:.0f} MB and are not shown]\n"
            return [_label(note)]
        kept.append(out)
    return kept


class StashSubmittedOutputs(NbGraderPreprocessor):
    """Pass 1, before ClearOutput: keep the submitted outputs of given cells in their metadata."""

    def preprocess_cell(self, cell, resources, index):
        cell.metadata.pop(KEY, None)  # whatever the file said there, only this step writes it
        if is_given(cell) and cell.get("outputs"):
            kept = plain_outputs(cell.outputs)
            if kept:
                cell.metadata[KEY] = {"submitted_outputs": kept}
        return cell, resources


class RestoreSubmittedOutputs(NbGraderPreprocessor):
    """Pass 2, after LimitOutput: the stashed outputs, labelled, above the grader's labelled re-run."""

    def preprocess_cell(self, cell, resources, index):
        stash = cell.metadata.pop(KEY, None)
        if not is_given(cell) or not isinstance(stash, dict) or not stash.get("submitted_outputs"):
            return cell, resources
        kept = plain_outputs(stash["submitted_outputs"])  # checked again: the file between passes is ours
        cell.outputs = [_label(SUBMITTED), *kept, _label(RERUN), *cell.get("outputs", [])]
        return cell, resources

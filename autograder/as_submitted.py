"""Put the student's own outputs back next to the grader's re-run, for the written questions.

``nbgrader autograde`` clears every output and runs the notebook again on the grading machine, in
the smoke profile at grading sizes (``course.profiles``): a 50-epoch run becomes one epoch. The
written questions ask about the student's own run (their curves, accuracies, maps), so whoever
marks them needs the outputs the student saw. After autograde, every *given* code cell (one the
student does not write and no test) whose submitted copy had outputs shows them first, under a
label, then the grader's re-run under another. Test cells and the student's solution cells keep
nbgrader's outputs only.

Only plain outputs travel: text, PNG and JPEG images, errors. HTML and JavaScript from a submitted
file are dropped, as the Formgrader renders these notebooks in the instructor's browser, and one
cell's copied outputs are capped in size. The outputs are the student's file, not evidence: they
can be edited by hand like the answer text itself.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

SUBMITTED = "── as submitted: the student's own run (written answers refer to these outputs) ──\n"
RERUN = "── re-run by the grader, smoke profile at grading sizes (for the autograded tests only) ──\n"
KEPT_MIME = ("text/plain", "image/png", "image/jpeg")
MAX_BYTES = 2_000_000  # per cell: a figure or two, not a student's 50 MB of printed tensors


def _given(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and not meta.get("grade") and not meta.get("solution")


def _label(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _plain(outputs) -> list:
    """The submitted outputs with only plain MIME types, or a note when they are too large."""
    kept, size = [], 0
    for out in outputs:
        out = nbformat.from_dict(dict(out))
        if out.output_type in ("display_data", "execute_result"):
            data = {k: v for k, v in out.get("data", {}).items() if k in KEPT_MIME}
            if not data:
                continue
            out = nbformat.v4.new_output("display_data", data=data)
        elif out.output_type not in ("stream", "error"):
            continue
        size += len(str(out))
        if size > MAX_BYTES:
            return [
                _label(
                    f"[the submitted outputs of this cell exceed {MAX_BYTES / 1e6:.0f} MB and are not shown]\n"
                )
            ]
        kept.append(out)
    return kept


def keep_submitted_outputs(submitted: Path, autograded: Path) -> int:
    """Prepend the submitted outputs of given cells in ``autograded`` (matched by cell id). Returns how many cells."""
    try:
        mine = nbformat.read(submitted, 4)
    except Exception:  # unreadable submissions are the integrity report's business
        return 0
    theirs = {c.get("id"): c for c in mine.cells if _given(c) and c.get("outputs")}
    graded = nbformat.read(autograded, 4)
    changed = 0
    for cell in graded.cells:
        if not _given(cell) or cell.get("id") not in theirs:
            continue
        if any(o.get("output_type") == "stream" and o.get("text") == SUBMITTED for o in cell.outputs):
            continue  # already done by an earlier run over this folder
        kept = _plain(theirs[cell.get("id")].outputs)
        if kept:
            cell.outputs = [_label(SUBMITTED), *kept, _label(RERUN), *cell.outputs]
            changed += 1
    if changed:
        nbformat.write(graded, autograded)
    return changed


def keep_all(work: Path, name: str) -> int:
    """Do it for every autograded notebook of assignment ``name`` under ``work``."""
    n = 0
    for graded in sorted((work / "autograded").glob(f"*/{name}/*.ipynb")):
        submitted = work / "submitted" / graded.parent.parent.name / name / graded.name
        if submitted.is_file():
            n += keep_submitted_outputs(submitted, graded)
    return n

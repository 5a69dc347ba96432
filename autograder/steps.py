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

The judge (``autograder/judge.py``) plugs in around the run, as in ``../shared/design/grader.md``:

* ``PrepareProbes`` (pass 2, before ``Execute``): a fresh ``.judge/`` beside the notebook with this
  submission's seed (drawn now, kept in ``resources`` too, so a kernel that rewrites the file only
  changes its own inputs) and the assignment's probe module. Nothing in it is an expected value.
* ``InertOutputs`` (after ``LimitOutput``): every output is reduced to plain text and PNG/JPEG images,
  and markup in markdown and raw cells is escaped, so nothing a submission prints runs in the
  Formgrader, the graded copies or the feedback.
* ``ApplyVerdicts`` (after ``InertOutputs``, before ``SaveAutoGrades``): each test cell that ships
  its outputs gets the judge's verdict as its first output (a pass: a line saying so; a part: the
  points as an ``execute_result``; a fail: an ``error`` whose message is the judge's), and what the
  kernel printed follows as plain text, stderr and errors included, so only the verdict scores.
* ``FlagJudgeErrors`` (after ``SaveAutoGrades``): a cell the judge could not decide (the grader's
  fault, never the student's) is marked ``needs_manual_grade`` in the gradebook; the Formgrader lists it.

Only plain outputs travel: text, PNG and JPEG images, errors (no HTML or JavaScript reaches the
instructor's browser), at most ``SUBMITTED_OUTPUT_MAX_BYTES`` per cell. The outputs are the student's
file, not evidence: they can be edited by hand like the answer text itself.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor

from course.grading import JUDGE_DIR, OUT_DIR, PROBE_FILE, SEED_FILE
from course.settings import SUBMITTED_OUTPUT_MAX_BYTES

from . import judge
from .cells import grade_id, is_given, is_test, points

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


# ------------------------------------------------------------------------------------------ the judge
SHIP_CALL = re.compile(r"""\bship\(\s*["']""")
VERDICTS_FILE = "verdicts.json"


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _inside(path: Path, root: Path) -> bool:
    """``path`` lies under ``root`` with no symbolic link on the way (a kernel could plant one)."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    here = root
    for part in rel.parts:
        here = here / part
        if here.is_symlink():
            return False
    return True


def judged_cells(nb) -> list:
    """The code test cells whose hidden part ships its outputs to the judge."""
    return [c for c in nb.cells if c.cell_type == "code" and is_test(c) and SHIP_CALL.search(c.source)]


class PrepareProbes(NbGraderPreprocessor):
    """Pass 2, before Execute: ``.judge/`` with a fresh seed and the probe module, beside the notebook."""

    def preprocess(self, nb, resources):
        folder = Path(resources["metadata"]["path"]) / JUDGE_DIR
        _remove(folder)  # whatever a submission brought under this name
        probe = judge.probe_file(resources["nbgrader"]["assignment"])
        if probe is None or not judged_cells(nb):
            return nb, resources
        folder.mkdir()
        seed = secrets.randbits(62)
        (folder / SEED_FILE).write_text(json.dumps({"seed": seed}))
        shutil.copyfile(probe, folder / PROBE_FILE)
        resources.setdefault(KEY, {})["seed"] = seed
        return nb, resources


class InertOutputs(NbGraderPreprocessor):
    """After LimitOutput: plain outputs only; markup in markdown and raw cells shown as text."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.outputs = [_inert(o) for o in cell.get("outputs", [])]
        elif cell.cell_type == "markdown":
            cell.source = escape_markup(cell.source)
            for name, files in list(cell.get("attachments", {}).items()):
                cell.attachments[name] = {k: v for k, v in files.items() if k in ("image/png", "image/jpeg")}
        elif cell.cell_type == "raw":
            for k in ("format", "raw_mimetype"):
                cell.metadata.pop(k, None)
        return cell, resources


def _inert(out):
    if out.get("output_type") in ("display_data", "execute_result"):
        data = {k: v for k, v in out.get("data", {}).items() if k in KEPT_MIME}
        if not data:
            data = {"text/plain": f"[{', '.join(sorted(out.get('data', {}))) or 'an output'} not shown]"}
        out["data"], out["metadata"] = data, {}
    return out


_TAG = re.compile(r"<(?=/?[A-Za-z!?])")  # what a browser reads as a tag: no space after <
_SCHEME = re.compile(r"(?i)(java|vb)script\s*:|data\s*:\s*text/html")


def escape_markup(text: str) -> str:
    """HTML tags and script links in markdown shown as text; markdown and math still render."""
    return _SCHEME.sub(lambda m: m.group(0).replace(":", "&#58;"), _TAG.sub("&lt;", text))


class ApplyVerdicts(NbGraderPreprocessor):
    """After InertOutputs: the judge's verdict becomes each shipping test cell's first output."""

    def preprocess(self, nb, resources):
        state = resources.setdefault(KEY, {})
        folder = Path(resources["metadata"]["path"]) / JUDGE_DIR
        assignment = resources["nbgrader"]["assignment"]
        verdicts, started = {}, time.perf_counter()
        for cell in judged_cells(nb):
            gid, shipped = grade_id(cell), folder / OUT_DIR / grade_id(cell)
            if "seed" not in state:
                v = judge.Verdict(
                    gid,
                    "judge-error",
                    0.0,
                    points(cell),
                    judge.STAFF_WILL_GRADE,
                    "no seed: PrepareProbes must run before Execute (nbgrader_config.py)",
                )
            elif not _inside(shipped, Path(resources["metadata"]["path"])):
                v = judge.Verdict(
                    gid,
                    "fail",
                    0.0,
                    points(cell),
                    "the outputs folder was replaced by a link",
                    "symbolic link under .judge",
                    ["*"],
                )
            else:
                v = judge.verdict(assignment, gid, points(cell), state["seed"], shipped)
            if v.outcome == "no-output":
                v.message = f"{v.message}: {_cell_error(cell) or 'it did not reach the test'}"
            cell.outputs = [*verdict_outputs(v), *_as_text(cell.get("outputs", []))]
            verdicts[gid] = v
        state["verdicts"] = verdicts
        if folder.is_dir() and not folder.is_symlink():  # kept for the staff and a re-judge; not the probe
            (folder / PROBE_FILE).unlink(missing_ok=True)
            record = {
                "seed": state.get("seed"),
                "judge_s": round(time.perf_counter() - started, 4),
                "verdicts": {g: v.to_dict() for g, v in verdicts.items()},
            }
            (folder / VERDICTS_FILE).write_text(json.dumps(record, indent=1))
        return nb, resources


def verdict_outputs(v: judge.Verdict) -> list:
    """What nbgrader's ``determine_grade`` reads: a pass is no error; a part is a number; a fail an error."""
    if v.outcome == "pass":
        return [
            _label(
                f"✔ passed: the hidden checks agree with the reference ({v.points:g} / {v.max_points:g})\n"
            )
        ]
    if v.outcome == "partial":
        line = _label(f"◐ partly right ({v.points:g} / {v.max_points:g}): {v.message}\n")
        return [
            line,
            nbformat.v4.new_output(
                "execute_result", data={"text/plain": f"{v.points:g}"}, execution_count=None
            ),
        ]
    ename = {"fail": "WrongAnswer", "no-output": "NoOutput", "judge-error": "JudgeError"}[v.outcome]
    return [
        nbformat.v4.new_output("error", ename=ename, evalue=v.message, traceback=[f"{ename}: {v.message}"])
    ]


def _cell_error(cell) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', '')}: {out.get('evalue', '')}"[:300]
    return ""


def _as_text(outputs) -> list:
    """The kernel's own outputs of a judged cell, none of which scores: stderr and errors become text."""
    out = []
    for o in outputs:
        if o.get("output_type") == "stream":
            out.append(nbformat.v4.new_output("stream", name="stdout", text=str(o.get("text", ""))))
        elif o.get("output_type") == "error":
            out.append(_label(f"(the cell itself raised {o.get('ename', '')}: {o.get('evalue', '')})\n"))
        else:
            out.append(o)
    return out


class FlagJudgeErrors(NbGraderPreprocessor):
    """After SaveAutoGrades: a cell the judge could not decide waits for a person, not a silent 0."""

    def preprocess(self, nb, resources):
        verdicts = resources.get(KEY, {}).get("verdicts", {})
        errors = [g for g, v in verdicts.items() if v.outcome == "judge-error"]
        if not errors:
            return nb, resources
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            for gid in errors:
                try:
                    grade = gb.find_grade(gid, info["notebook"], info["assignment"], info["student"])
                except MissingEntry:
                    continue
                grade.needs_manual_grade = True
            gb.db.commit()
        return nb, resources

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
  changes its own inputs).
* ``JudgedExecute`` (nbgrader's ``Execute``, in its place): as a test cell starts, its probe alone is
  written to ``.judge/probe.py`` (no typical mistake, no ``reference()``, no stand-in but those this
  test uses: ``autograder.probes.kernel_source``); as it ends, what it shipped is sealed out of the
  kernel's reach (``sealed_dir``). No expected value is ever in the kernel, and no correct
  implementation of a function while that function is being tested.
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
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

from course.grading import JUDGE_DIR, MANIFEST, OUT_DIR, PROBE_FILE, SEED_FILE
from course.settings import JUDGED_DIR, SUBMITTED_OUTPUT_MAX_BYTES

from . import judge
from .cells import grade_id, is_given, is_test, points
from .probes import kernel_source

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


# While a kernel is alive, a thread of the student's may swap anything in its folder for a link at any
# moment: the judge's file work there goes through directory descriptors and never follows a link.
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _clear_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` in the directory ``dir_fd`` (a link is removed, not followed)."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except (IsADirectoryError, PermissionError):  # a real directory
        shutil.rmtree(name, dir_fd=dir_fd)


def _real_dir_at(dir_fd: int, name: str) -> int:
    """A descriptor of the real directory ``name`` in ``dir_fd``, made so if a link or a file is there."""
    try:
        return os.open(name, _DIR, dir_fd=dir_fd)
    except OSError:  # missing, a link (ELOOP) or not a directory
        _clear_at(dir_fd, name)
        os.mkdir(name, 0o755, dir_fd=dir_fd)
        return os.open(name, _DIR, dir_fd=dir_fd)


def _open_judge(path: Path) -> tuple[int, int]:
    """Descriptors of the notebook folder's ``.judge`` and ``.judge/out``, real directories both."""
    top = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        judge_fd = _real_dir_at(top, JUDGE_DIR)
    finally:
        os.close(top)
    return judge_fd, _real_dir_at(judge_fd, OUT_DIR)


def judged_cells(nb) -> list:
    """The code test cells whose hidden part ships its outputs to the judge."""
    return [c for c in nb.cells if is_judged(c)]


def sealed_dir(path: Path) -> Path:
    """Where a submission's shipped outputs are kept once its test cell has run: ``judged/<student>/
    <assignment>`` beside nbgrader's ``autograded/``, out of the sandbox (only the notebook's own folder
    is writable there) and out of whatever nbgrader copies into feedback."""
    return path.parents[2] / JUDGED_DIR / path.parent.name / path.name


class PrepareProbes(NbGraderPreprocessor):
    """Pass 2, before Execute: this submission's seed in ``.judge/seed.json`` beside the notebook."""

    def preprocess(self, nb, resources):
        path = Path(resources["metadata"]["path"])
        for old in (path / JUDGE_DIR, sealed_dir(path)):
            _remove(old)  # whatever a submission brought under this name, or a run before this one left
        if judge.probe_file(resources["nbgrader"]["assignment"]) is None or not judged_cells(nb):
            return nb, resources
        (path / JUDGE_DIR).mkdir()
        seed = secrets.randbits(62)
        (path / JUDGE_DIR / SEED_FILE).write_text(json.dumps({"seed": seed}))
        resources.setdefault(KEY, {})["seed"] = seed
        return nb, resources


class JudgedExecute(Execute):
    """nbgrader's Execute, with the judge's two moments around each test cell that ships its outputs.

    Before the cell runs: the probe for that test only, as ``kernel_source`` cuts it (no typical
    mistake, no reference, only the stand-ins this test uses), and no outputs left from before. After
    it ran: its outputs are copied out of the kernel's reach (``sealed_dir``), regular files only, so
    nothing a later cell does (with a stand-in it was given, say) changes them.
    """

    def preprocess(self, nb, resources, km=None):
        self._judge = None
        if "seed" in resources.get(KEY, {}):
            path = Path(resources["metadata"]["path"])
            self._judge = (path, judge.probe_file(resources["nbgrader"]["assignment"]))
            sealed_dir(path).mkdir(parents=True, exist_ok=True)
        return super().preprocess(nb, resources, km=km)

    def _judged(self, cell) -> str | None:
        return grade_id(cell) if self._judge and cell is not None and is_judged(cell) else None

    def on_cell_start(self, cell=None, cell_index=None, **kwargs):
        gid = self._judged(cell)
        if not gid:
            return
        path, probe = self._judge
        judge_fd, out_fd = _open_judge(path)
        try:
            _clear_at(out_fd, gid)
            _clear_at(judge_fd, PROBE_FILE)
            fd = os.open(
                PROBE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=judge_fd
            )
            with os.fdopen(fd, "w") as f:
                f.write(kernel_source(probe, gid))
        finally:
            os.close(out_fd), os.close(judge_fd)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        gid = self._judged(kwargs.get("cell"))
        if not gid:
            return
        path, _ = self._judge
        judge_fd, out_fd = _open_judge(path)
        try:
            seal(out_fd, gid, sealed_dir(path) / gid)
            _clear_at(judge_fd, PROBE_FILE)
        finally:
            os.close(out_fd), os.close(judge_fd)


def is_judged(cell) -> bool:
    """A code test cell whose hidden part ships its outputs to the judge."""
    return (
        cell.get("cell_type") == "code" and is_test(cell) and bool(SHIP_CALL.search(cell.get("source", "")))
    )


LINKED = "LINKED"  # in a sealed folder: the kernel had put a link where its outputs belonged


def seal(out_fd: int, gid: str, dest: Path) -> None:
    """Copy what the test ``gid`` shipped (``.judge/out/<gid>``, under the descriptor ``out_fd``) to
    ``dest``: the manifest and numbered arrays, regular files only, no link followed, within the
    judge's size limits. A link where the outputs belong leaves a ``LINKED`` note instead."""
    _remove(dest)
    try:
        src = os.open(gid, _DIR, dir_fd=out_fd)
    except FileNotFoundError:
        return  # nothing shipped: the judge says so
    except OSError:
        dest.mkdir(parents=True)
        (dest / LINKED).write_text("the outputs folder was replaced by a link")
        return
    dest.mkdir(parents=True)
    budget = judge.MAX_TOTAL_BYTES + judge.MAX_MANIFEST_BYTES
    try:
        for name in sorted(os.listdir(src)):
            if name != MANIFEST and not re.fullmatch(r"\d{1,5}\.npy", name):
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src)
            except OSError:  # a link, or gone
                continue
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    continue
                data = handle.read(budget + 1)
            budget -= len(data)
            if budget < 0:
                return  # too large: what was copied is incomplete, and the judge says it cannot be read
            (dest / name).write_bytes(data)
    finally:
        os.close(src)


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
        path = Path(resources["metadata"]["path"])
        assignment = resources["nbgrader"]["assignment"]
        verdicts, started = {}, time.perf_counter()
        for cell in judged_cells(nb):
            gid, shipped = grade_id(cell), sealed_dir(path) / grade_id(cell)
            if "seed" not in state:
                why = "no seed: PrepareProbes must run before Execute (nbgrader_config.py)"
                v = judge.Verdict(gid, "judge-error", 0.0, points(cell), judge.STAFF_WILL_GRADE, why)
            elif (shipped / LINKED).exists():
                why = "the outputs folder was replaced by a link"
                v = judge.Verdict(gid, "fail", 0.0, points(cell), why, why, ["*"])
            else:
                v = judge.verdict(assignment, gid, points(cell), state["seed"], shipped)
            if v.outcome == "no-output":
                v.message = f"{v.message}: {_cell_error(cell) or 'it did not reach the test'}"
            cell.outputs = [*verdict_outputs(v), *_as_text(cell.get("outputs", []))]
            verdicts[gid] = v
        state["verdicts"] = verdicts
        _remove(path / JUDGE_DIR)  # the kernel's side: nothing of it stays with the graded notebook
        if sealed_dir(path).is_dir():  # kept for the staff and a re-judge
            record = {
                "seed": state.get("seed"),
                "judge_s": round(time.perf_counter() - started, 4),
                "verdicts": {g: v.to_dict() for g, v in verdicts.items()},
            }
            (sealed_dir(path) / VERDICTS_FILE).write_text(json.dumps(record, indent=1))
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

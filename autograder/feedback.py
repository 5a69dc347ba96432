"""Feedback students can read without learning the hidden tests (nbgrader issues #917 and #1363).

``nbgrader generate_feedback`` turns each autograded notebook into HTML as it is: the hidden tests'
code (test cells keep it after autograding) and tracebacks that quote it. ``nbgrader_config.py``
adds three steps to nbgrader's own feedback preprocessors, so ``nbgrader generate_feedback`` run by
hand is just as safe: ``ClearHiddenTests`` and ``ClearMarkScheme`` (nbgrader's, as for the release)
remove the hidden region of every test cell and the mark scheme of every written question, and
``RedactTestTracebacks`` below cuts a test cell's traceback to its last line, ``ErrorName:
message``: what failed and why, with the score nbgrader shows beside it.

``feedback`` runs it for a graded work folder and then reads every feedback file back, as text,
and refuses to hand out one that holds a line of a hidden test or of a mark scheme.
"""

from __future__ import annotations

import html
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from . import cells
from .gradebook import api
from .intake import load_names
from .nbg import AutograderError, assignments, notebooks
from .release import REGION

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RedactTestTracebacks(Preprocessor):
    """In test cells, an error output keeps only 'ErrorName: message' (its traceback quotes hidden code)."""

    enabled = Bool(True, help="on unless switched off (nbconvert's preprocessors start off)").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cells.is_test(cell):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources


def hidden_lines(source_nb) -> set[str]:
    """Lines of the hidden tests and mark schemes that appear nowhere public in the notebook (8 characters or
    more).
    """
    hidden, public = set(), set()
    for cell in source_nb.cells:
        for m in REGION.finditer(cell.source):
            if m.group(1) in ("HIDDEN TESTS", "MARK SCHEME"):
                hidden.update(line.strip() for line in m.group(2).splitlines())
        public.update(line.strip() for line in REGION.sub("", cell.source).splitlines())
    return {line for line in hidden - public if len(line) >= 8 and not line.startswith("#")}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self.skip -= tag in ("style", "script") and self.skip > 0

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(path: Path) -> str:
    """What a reader of the HTML sees: tags and syntax highlighting removed, entities and ANSI colours
    decoded.
    """
    parser = _Text()
    parser.feed(path.read_text(errors="replace"))
    return _ANSI.sub("", html.unescape("".join(parser.parts)))


def leaked_lines(root: Path, name: str, feedback_html: Path, submitted: Path | None = None) -> list[str]:
    """Hidden-test lines the feedback shows; a line the student wrote in their own cells is theirs to see."""
    text = html_text(feedback_html)  # a hidden line may stand alone or inside a quoted traceback
    own = ""  # the student's own cells: a hidden line that is part of them (code, comments) is theirs
    if submitted is not None and submitted.exists():
        own = "\n".join(c.source for c in nbformat.read(submitted, 4).cells)
    return sorted(
        line
        for nb in notebooks(root, name)
        for line in hidden_lines(nbformat.read(nb, 4))
        if line in text and line not in own
    )


def feedback(root: Path, work: Path, wanted: list[str] | None = None) -> list[Path]:
    """nbgrader generate_feedback for a graded work folder; returns the feedback files, each checked for
    leaks.
    """
    work = Path(work).resolve()
    if not (work / "gradebook.db").exists():
        raise AutograderError(
            f"{work} holds no graded batch (no gradebook.db): run `autograder grade --work {work}` first"
        )
    names = [n for n in assignments(root, wanted) if any((work / "autograded").glob(f"*/{n}"))]
    if not names:
        raise AutograderError(f"nothing in {work / 'autograded'} to give feedback on")
    files, ids, nbgrader_api = [], load_names(work), api(root, work)
    for name in names:
        out = nbgrader_api.generate_feedback(name, force=True)  # nbgrader's own, in this process
        if not out.get("success"):
            log = (out.get("log", "") + out.get("error", "")).strip()
            raise AutograderError(f"`nbgrader generate_feedback {name}` failed:\n{log[-3000:]}")
        for path in sorted((work / "feedback").glob(f"*/{name}/*.html")):
            leaked = leaked_lines(
                root, name, path, work / "submitted" / path.parts[-3] / name / f"{path.stem}.ipynb"
            )
            if leaked:
                path.unlink()
                raise AutograderError(
                    f"{path} would show {len(leaked)} lines of hidden tests or mark schemes "
                    f"(first: {leaked[0]!r}); "
                    "removed it. Is nbgrader_config.py's GenerateFeedback.preprocessors intact?"
                )
            files.append(path)
            # the same file under the name as handed in, for feedback returned by hand (an LMS upload):
            # nbgrader's release_feedback takes feedback/<id>, where a stand-in id replaces an unsafe name
            by_name = work / "feedback_by_name" / ids.get(path.parts[-3], path.parts[-3]) / name / path.name
            by_name.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, by_name)
    return files

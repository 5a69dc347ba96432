"""The course site: the student notebooks of ``release/`` as a static Jupyter Book, nothing else.

``build`` lays out a book in a temporary folder (a landing page, a table of contents, the release
notebooks copied in as they are, not executed: students run them) and runs ``jupyter-book build``.
It then reads every page back as text and refuses a site that shows a line of a solution, a hidden
test or a mark scheme from ``source/`` (the same secret lines ``autograder release --check`` looks
for), or a page that is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from .feedback import html_text
from .nbg import AutograderError, assignments
from .release import MARKERS, secret_lines

TITLE = "Deep learning: transformers and CNNs"
CONFIG = f"""title: "{TITLE}"
author: the course team
only_build_toc_files: true
execute:
  execute_notebooks: "off"
html:
  use_repository_button: false
sphinx:
  config:
    html_show_copyright: false
"""


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.splitlines()[0][2:].strip()
    return "untitled"


def _intro(names: list[str], titles: dict[str, str]) -> str:
    rows = "\n".join(f"| [{titles[n]}]({n}.ipynb) | `release/{n}/{n}.ipynb` |" for n in names)
    return f"""# {TITLE}

Seven notebooks that follow the lectures on transformers and convolutional networks. Each one has
exercises you complete in JupyterLab: functions to write, checks that stop "Run All" with a message
when something is off, and written questions. These pages show the notebooks as you receive them;
to work on one, fetch it from the *Assignments* tab of the course's JupyterHub (or install the
student environment with `student/install.sh`), fill in every `YOUR CODE HERE` and `YOUR ANSWER
HERE`, run it from the top and submit it there.

| notebook | file |
| --- | --- |
{rows}
"""


def _toc(names: list[str]) -> str:
    return "format: jb-book\nroot: intro\nchapters:\n" + "".join(f"  - file: {n}\n" for n in names)


def leaks(root: Path, html_dir: Path, names: list[str]) -> list[str]:
    """Pages that are missing or show a line only the instructor may see."""
    problems = []
    for name in names:
        page = html_dir / f"{name}.html"
        if not page.exists():
            problems.append(f"{page}: missing")
            continue
        text = html_text(page)
        shown = {
            line.strip() for line in text.splitlines()
        }  # code keeps its lines; a secret line would stand alone
        problems += [f"{page}: contains the marker {m!r}" for m in MARKERS if m in text]
        for nb in sorted((root / "source" / name).glob("*.ipynb")):
            problems += [
                f"{page}: reveals {line!r}"
                for line in sorted(secret_lines(nbformat.read(nb, 4)))
                if line in shown
            ]
    return problems


def build(root: Path, out: Path, wanted: list[str] | None = None, release_dir: Path | None = None) -> Path:
    """Build the site into ``out`` (its pages in ``out/html``); returns the landing page."""
    names = assignments(root, wanted)
    release_dir = release_dir or root / "release"
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp:
        book = Path(tmp)
        titles = {}
        for name in names:
            src = release_dir / name / f"{name}.ipynb"
            if not src.exists():
                raise AutograderError(f"{src} is missing: run `autograder release` first")
            titles[name] = _title(nbformat.read(src, 4))
            shutil.copy(src, book / f"{name}.ipynb")
        (book / "_config.yml").write_text(CONFIG)
        (book / "_toc.yml").write_text(_toc(names))
        (book / "intro.md").write_text(_intro(names, titles))
        shutil.rmtree(out, ignore_errors=True)
        cli = Path(sys.executable).parent / "jupyter-book"
        proc = subprocess.run(
            [str(cli), "build", str(book), "--path-output", str(out)], capture_output=True, text=True
        )
        if proc.returncode:
            raise AutograderError(
                f"jupyter-book build failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
            )
    html_dir = out / "_build" / "html"
    problems = leaks(root, html_dir, names)
    if problems:
        shutil.rmtree(out, ignore_errors=True)
        raise AutograderError(
            "the site would show what students must not see; removed it:\n  " + "\n  ".join(problems[:20])
        )
    return html_dir / "index.html"

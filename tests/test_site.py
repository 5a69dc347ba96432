"""The course site (autograder/site.py): Jupyter Book pages of the student notebooks, and nothing more."""

import shutil

import nbformat
import pytest

from autograder.feedback import html_text
from autograder.nbg import REPO, AutograderError, assignments
from autograder.site import build

A = "03_self_attention"
SOLUTION_LINE = "return scaled_dot_product_attention(q, k, v, mask)"  # self_attention's solution in source/


def test_the_site_shows_every_release_notebook_and_no_solution(tmp_path):
    index = build(REPO, tmp_path / "site")
    html = index.parent
    assert index.exists()  # index.html sends the browser to the landing page, intro.html
    assert "03 · Scaled dot-product self-attention" in html_text(
        html / "intro.html"
    )  # which lists the notebooks
    for name in assignments(REPO):
        page = html / f"{name}.html"
        title = (
            nbformat.read(REPO / "release" / name / f"{name}.ipynb", 4).cells[0].source.splitlines()[0][2:]
        )
        assert page.exists() and title in html_text(page), name
    text = html_text(html / f"{A}.html")
    assert "raise NotImplementedError()" in text and "YOUR ANSWER HERE" in text  # the stubs students fill in
    source_text = "\n".join(c.source for c in nbformat.read(REPO / "source" / A / f"{A}.ipynb", 4).cells)
    assert SOLUTION_LINE in source_text and SOLUTION_LINE not in text
    assert "MARK SCHEME" not in text and "Model answer" not in text


def test_a_release_that_leaks_is_refused(tmp_path):
    doctored = tmp_path / "release"
    shutil.copytree(REPO / "release" / A, doctored / A)
    path = doctored / A / f"{A}.ipynb"
    nb = nbformat.read(path, 4)
    cell = next(
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "self_attention_solution"
    )
    cell.source = cell.source.replace("raise NotImplementedError()", SOLUTION_LINE)
    nbformat.write(nb, path)
    with pytest.raises(AutograderError, match="reveals"):
        build(REPO, tmp_path / "site", [A], release_dir=doctored)
    assert not (tmp_path / "site").exists()  # nothing is left to publish

"""The main job end to end: nbgrader autogrades the example submissions to their expected scores."""

import csv

import pytest

from autograder.cli import main
from autograder.examples import load_examples
from autograder.nbg import REPO, AutograderError, assignments
from autograder.pipeline import grade
from autograder.report import compare_expected, table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(examples_batch):
    # every example of every notebook, in two parallel shards merged into one gradebook (conftest.py; the
    # serial path is graded in tests/test_shards.py, which also checks that both give the same scores)
    work, results, examples, rc = examples_batch
    assert rc == 0
    return work, results, examples


def test_examples_get_expected_scores(graded):
    _, results, examples = graded
    assert {e.student for e in examples} >= {"reference", "untouched"}
    assert compare_expected(results, examples) == []


def test_every_assignment_has_reference_untouched_and_a_mistake():
    for name in assignments(REPO):
        students = {e.student: e for e in load_examples(name)}
        assert "reference" in students and "untouched" in students, name
        assert students["untouched"].expected_score == 0
        partial = [
            e
            for e in students.values()
            if e.replace and 0 < (e.expected_score or 0) < students["reference"].expected_score
        ]
        assert partial, f"{name} needs an example with a typical mistake that gets partial credit"


def test_every_graded_function_has_two_typical_mistakes():
    import nbformat

    for name in assignments(REPO):
        nb = nbformat.read(REPO / "source" / name / f"{name}.ipynb", 4)
        tests = [
            c.metadata["nbgrader"]["grade_id"]
            for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")
        ]
        caught = [
            t
            for e in load_examples(name)
            if e.start == "solution" and e.replace
            for t in (e.expected_failed or [])
        ]
        few = {t: caught.count(t) for t in tests if caught.count(t) < 2}
        assert not few, f"{name}: these tests have fewer than two typical-mistake examples: {few}"


def test_reference_gets_every_autograded_point(graded):
    _, results, _ = graded
    for r in (r for r in results if r.student == "reference"):
        auto = [c for c in r.cells if c.test]
        assert auto and all(c.score == c.max_score for c in auto)
        assert r.score == sum(c.max_score for c in auto)
        assert all(c.needs_manual for c in r.cells if not c.test), "written answers wait for a human"


def test_failures_carry_the_mistake(graded):
    _, results, _ = graded
    msgs = {(r.student, c.grade_id): c.message for r in results for c in r.failed}
    assert "sqrt(d_k)" in msgs[("forgot_scaling", "test_worked_example")]
    assert "NotImplementedError" in msgs[("untouched", "test_scaled_dot_product_attention")]
    assert "the mask is the wrong way round" in msgs[("inverted_mask", "test_scaled_dot_product_attention")]
    text = table(results)
    assert "why tests failed" in text and "forgot_scaling" in text


def test_warnings_on_stderr_do_not_zero_a_test_cell(graded):
    work, results, _ = graded
    noisy = next(r for r in results if r.student == "noisy_but_correct")
    assert noisy.failed == []
    # and the warning really was written inside the graded cell before nbgrader dropped it
    import nbformat

    nb = nbformat.read(
        work / "autograded" / "noisy_but_correct" / "03_self_attention" / "03_self_attention.ipynb", 4
    )
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_causal_mask")
    assert not any(o.output_type == "stream" and o.name == "stderr" for o in cell.outputs)


def test_export_csv_matches_gradebook(graded):
    work, results, _ = graded
    with open(work / "grades.csv", newline="") as f:
        rows = {(r["assignment"], r["student_id"]): float(r["score"]) for r in csv.DictReader(f)}
    for r in results:
        assert rows[(r.assignment, r.student)] == pytest.approx(r.score)


def test_grade_folder_of_submissions(graded, tmp_path, capsys):
    work, _, _ = graded
    subs = tmp_path / "subs"
    import shutil

    shutil.copytree(work / "submitted" / "reference", subs / "alice")
    rc = main(["grade", "03", "--submissions", str(subs), "--work", str(tmp_path / "w")])
    out = capsys.readouterr().out
    assert rc == 0 and "alice" in out and "14.0" in out


def test_refuses_to_empty_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(AutograderError, match="refusing to empty it"):
        grade(REPO, tmp_path, ["03"], tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"

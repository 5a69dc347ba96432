"""The hostile battery (autograder/examples/hostile/): each attack graded beside an honest classmate, in one batch.

Each example states the score nbgrader must give and the integrity row the grader must write; the
issue's list of attacks is checked to be covered. Then the batch is interrupted and re-run.
"""
import csv
import os

import pytest

from autograder.examples import EXAMPLES_DIR, load_examples
from autograder.grading import compare_expected, grade, table
from autograder.nbg import REPO
from autograder.sandbox import SandboxConfig, probe

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not probe()[0], reason=f"no sandbox here: {probe()[1]}")]
A = "03_self_attention"
HOSTILE = EXAMPLES_DIR / "hostile"


def _grade(work):
    return grade(REPO, work, [A], sandbox=SandboxConfig(), cell_timeout=20, examples_dir=HOSTILE)


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile") / "work"
    results, examples = _grade(work)
    return work, results, examples


def test_the_battery_covers_every_attack_the_issue_lists():
    students = {e.student for e in load_examples(A, HOSTILE)}
    assert students >= {"looper", "memory_bomb", "phone_home", "reads_source", "imports_lib", "patches_allclose",
                        "exits", "huge_output", "deletes_test", "edits_test", "stderr_noise", "malformed", "renamed",
                        "wrong_assignment", "extra_cells", "looks_up_answers", "honest"}
    assert all(e.expected_score is not None and e.expected_flags is not None for e in load_examples(A, HOSTILE))


def test_every_hostile_submission_gets_its_score_and_its_integrity_row(battery):
    _, results, examples = battery
    assert compare_expected(results, examples) == [], table(results)


def test_no_attack_changes_the_honest_classmates_grade(battery):
    _, results, _ = battery
    honest = next(r for r in results if r.student == "honest")
    assert honest.score == 14 and honest.failed == [] and honest.flags == [] and honest.sandbox == "sandboxed"
    assert {r.student for r in results} == {e.student for e in load_examples(A, HOSTILE)}  # a row for everyone


def test_integrity_csv_sits_beside_grades_csv_and_names_cells(battery):
    work, _, _ = battery
    assert (work / "grades.csv").is_file()
    with open(work / "integrity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    by = {(r["student"], r["cell"]): r["what"] for r in rows}
    assert "import lib" in by[("imports_lib", "sdpa_solution")]
    assert "put back" in by[("patches_allclose", "test_scaled_dot_product_attention")]
    assert "per-cell timeout" in by[("looper", "causal_mask_solution")]
    assert not any(r["student"] == "honest" for r in rows)


def test_an_interrupted_batch_resumes_and_a_rerun_gives_the_same_scores(battery):
    work, results, _ = battery
    before = {(r.student, r.notebook): r.score for r in results}
    kept = work / "autograded" / "phone_home" / A / f"{A}.ipynb"
    stamp = os.stat(kept).st_mtime_ns
    import shutil
    shutil.rmtree(work / "autograded" / "honest")  # as if the batch had stopped before this student
    again, _ = _grade(work)
    assert {(r.student, r.notebook): r.score for r in again} == before
    assert os.stat(kept).st_mtime_ns == stamp, "a notebook graded before the interruption was graded again"
    assert (work / "autograded" / "honest" / A / f"{A}.ipynb").is_file()

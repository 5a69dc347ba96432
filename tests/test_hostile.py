"""The hostile battery (autograder/examples/hostile/): each attack graded beside an honest classmate,
in one batch.

Each example states the score nbgrader must give and the integrity row the grader must write; the
issue's list of attacks is checked to be covered. Then the batch is interrupted and re-run.
"""

import csv
import os

import pytest

from autograder.examples import EXAMPLES_DIR, grade_examples, load_examples
from autograder.integrity import read_csv
from autograder.nbg import REPO
from autograder.report import compare_expected, table
from autograder.sandbox import SandboxConfig, probe

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not probe()[0], reason=f"no sandbox here: {probe()[1]}")]
A = "03_self_attention"
HOSTILE = EXAMPLES_DIR / "hostile"


def _grade(work):
    return grade_examples(REPO, work, [A], HOSTILE, sandbox=SandboxConfig(), cell_timeout=20)


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile") / "work"
    results, examples = _grade(work)
    return work, results, examples


def test_the_battery_covers_every_attack_the_issue_lists():
    students = {e.student for e in load_examples(A, HOSTILE)}
    assert students >= {
        "looper",
        "memory_bomb",
        "phone_home",
        "reads_source",
        "imports_lib",
        "patches_allclose",
        "exits",
        "huge_output",
        "deletes_test",
        "edits_test",
        "stderr_noise",
        "malformed",
        "renamed",
        "wrong_assignment",
        "extra_cells",
        "looks_up_answers",
        "honest",
    }
    # issue 19: the judge outside the kernel
    assert students >= {
        "silences_ship",  # overriding what carries outputs
        "rewrites_tests",  # rewriting cells on their way in
        "fake_tensors",
        "chooses_inputs",  # replacing what carries inputs
        "chooses_inputs_early",
        "forges_outputs",  # replacing what carries outputs
        "links_to_outside",
        "writes_fd2",
        "prints_markup",
        "claims_graded_cells",
        "links_instructor",
        "patches_allclose",  # blinding the guard changes nothing: it no longer decides
        "borrows_standin",  # a mistake or stand-in reached from the stack; earlier outputs rewritten
        "redirects_outbox",  # a link from its outputs folder to a classmate's sealed outputs
    }
    assert students >= {
        "*",
        "?",
        "[a]",
        "o'neil",
        'say "hi"',
        "`whoami`",
        "Zoë Ångström",
        "Jos\u00e9",
        "Jose\u0301",
        "-rf",
        "Alice",
        "alice",
        "empty_folder",
        "a_file",
        ".hidden",
    }
    assert any(len(s.encode()) == 255 for s in students)  # the longest name a Linux file system takes
    assert all(
        (e.expected_score is not None and e.expected_flags is not None) or e.expected_refused
        for e in load_examples(A, HOSTILE)
    )


def test_every_hostile_submission_gets_its_score_and_its_integrity_row(battery):
    work, results, examples = battery
    assert compare_expected(results, examples, read_csv(work / "integrity.csv")) == [], table(results)


def test_no_attack_changes_the_honest_classmates_grade(battery):
    _, results, _ = battery
    honest = next(r for r in results if r.student == "honest")
    assert honest.score == 14 and honest.failed == [] and honest.flags == [] and honest.sandbox == "sandboxed"
    graded = {e.student for e in load_examples(A, HOSTILE) if not e.expected_refused}
    assert {
        r.student for r in results
    } == graded  # a row for everyone graded: no phantom, none merged or lost


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


def test_each_submission_runs_in_its_own_fresh_process(battery):
    # leaves_traces and looks_for_traces (graded right after it) keep full marks only if nothing of the
    # first (files in /tmp and $HOME, environment, torch attributes, a child process) reaches the second
    from autograder.integrity import runs_by_folder

    work, results, _ = battery
    by = {r.student: r for r in results}
    assert by["leaves_traces"].score == by["looks_for_traces"].score == 14
    starts = [
        e
        for events in runs_by_folder(work / "sandbox" / "events.jsonl").values()
        for e in events
        if e.get("event") == "start"
    ]
    ran = [p for p in (work / "autograded").glob("*/*") if p.is_dir()]  # every submission a kernel ran for
    assert len(starts) >= len(ran) > 25 and len({e["pid"] for e in starts}) == len(starts)


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


def test_feedback_shows_scores_and_messages_but_no_hidden_test(battery):
    # nbgrader issues #917 and #1363: by default its feedback prints the hidden tests and tracebacks into them
    import nbformat
    from nbconvert import HTMLExporter

    from autograder.feedback import feedback, html_text, leaked_lines

    work, results, _ = battery
    from autograder.intake import student_id

    files = feedback(REPO, work, [A])
    graded = [
        r.student
        for r in results
        if (work / "autograded" / student_id(r.student) / A / f"{A}.ipynb").exists()
    ]
    assert len(files) == len(graded)
    # and under each name as handed in (quotes, *, accents), for feedback returned by hand
    assert sorted(p.name for p in (work / "feedback_by_name").iterdir()) == sorted(graded)
    assert (work / "feedback_by_name" / "*" / A / f"{A}.html").is_file()
    for path in files:
        assert leaked_lines(REPO, A, path, work / "submitted" / path.parts[-3] / A / f"{A}.ipynb") == [], path
    text = html_text(next(p for p in files if p.parts[-3] == "patches_allclose"))
    assert "WrongAnswer: the scores look unscaled" in text and "Score" in text
    assert not list((work / "feedback").rglob(".judge")) and not list((work / "feedback").rglob("*.npy"))
    # the check itself can fail: nbconvert's plain HTML of the same notebook shows the hidden tests
    raw = work / "raw.html"
    raw.write_text(
        HTMLExporter().from_notebook_node(
            nbformat.read(work / "autograded" / "patches_allclose" / A / f"{A}.ipynb", 4)
        )[0]
    )
    assert len(leaked_lines(REPO, A, raw)) >= 5


def test_names_are_kept_exactly_and_a_refusal_sets_the_exit_code(battery, capsys):
    from nbgrader.api import Gradebook

    from autograder.cli import EXIT_REFUSED, _report
    from autograder.intake import load_names, student_id
    from course.settings import course_id

    work, results, examples = battery
    names = load_names(work)
    weird = ["*", "o'neil", 'say "hi"', "Jos\u00e9", "Jose\u0301", "-rf"]
    assert all(names[student_id(n)] == n for n in weird)
    with open(work / "grades.csv", newline="", encoding="utf-8") as f:
        exported = {r["student_id"] for r in csv.DictReader(f) if r["assignment"] == A}
    assert exported == {r.student for r in results}  # every graded name exactly as handed in, no stand-in
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}", course_id(REPO)) as gb:
        # nbgrader's own id is the stand-in; the Formgrader shows the name beside it
        assert gb.find_student(student_id("*")).last_name == "*"
    # o'neil's kernel ended itself: one 0 row, under that name, saying why; no student "o"
    oneil = [r for r in results if r.student == "o'neil"]
    assert len(oneil) == 1 and oneil[0].score == 0 and not any(r.student == "o" for r in results)
    assert _report(work, results, examples, 0.0) == EXIT_REFUSED
    out = capsys.readouterr().out
    assert (
        "'empty_folder' / 03_self_attention: an empty folder" in out and f"all {len(examples)} example" in out
    )


def test_the_judge_keeps_its_record_and_no_probe_and_nothing_printed_runs_in_a_browser(battery):
    import json

    import nbformat

    from autograder.intake import student_id

    work, results, _ = battery
    for nb_path in (work / "autograded").glob(f"*/{A}/{A}.ipynb"):
        assert not (nb_path.parent / ".judge").exists(), nb_path  # nothing of the kernel's side stays
        nb = nbformat.read(nb_path, 4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                kinds = set(out.get("data", {}))
                assert kinds <= {"text/plain", "image/png", "image/jpeg"}, (nb_path, kinds)
            if cell.cell_type == "markdown":
                assert "<script" not in cell.source and "<img" not in cell.source
    record = work / "judged" / student_id("honest") / A / "verdicts.json"
    verdicts = json.loads(record.read_text())["verdicts"]
    assert {v["outcome"] for v in verdicts.values()} == {"pass"} and len(verdicts) == 5
    # redirects_outbox, graded after honest, pointed its outputs folder at honest's sealed outputs
    assert sorted(p.name for p in record.parent.iterdir() if p.is_dir()) == sorted(verdicts)
    assert all((record.parent / gid / "manifest.json").is_file() for gid in verdicts)
    markup = work / "autograded" / student_id("prints_markup") / A / f"{A}.ipynb"
    assert "document.title" not in json.dumps([c.get("outputs", []) for c in nbformat.read(markup, 4).cells])

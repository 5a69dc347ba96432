"""A submission's name is data (autograder/intake.py): ids nbgrader can glob safely, refusals that say why.

The end-to-end cases (each name graded between honest classmates) are in the hostile battery,
autograder/examples/hostile/03_self_attention.yml, run by tests/test_hostile.py.
"""

import csv
import glob
import unicodedata

import pytest

from autograder.intake import JUNK, stray, student_id, students, survey
from autograder.pipeline import rename_students

A = "03_self_attention"
ODD = [
    "*",
    "?",
    "[a]",
    "o'neil",
    'say "hi"',
    "`whoami`",
    "two words",
    "José",
    "Jose\u0301",
    "-rf",
    ".",
    "..",
    "é" * 127 + "x",
    "x" * 300,
    "a/b",
    "id-0123456789abcdef",
    "name.",
    "../../etc",
]


@pytest.mark.parametrize("name", ODD)
def test_an_odd_name_gets_an_id_that_no_glob_or_path_can_misread(name):
    sid = student_id(name)
    assert sid != name
    assert glob.escape(sid) == sid and "/" not in sid and not sid.startswith((".", "-"))
    assert len(sid) <= 100 and sid == student_id(name)  # stable across runs and shards


def test_plain_names_are_their_own_ids_and_different_names_never_share_one():
    for name in ("alice", "Alice", "s1234567", "jane.doe", "jane_doe-2", "x@uni.edu"):
        assert student_id(name) == name
    ids = [student_id(n) for n in ODD + ["alice", "Alice"]]
    assert len(set(ids)) == len(ids)
    # NFC and NFD spellings are different folders: two ids, never one merged row
    assert student_id("Jos\u00e9") != student_id("Jose\u0301")


def _folder(tmp_path):
    subs = tmp_path / "subs"
    for name in ("*", "o'neil", "Jos\u00e9", "Jose\u0301", "Alice", "alice"):
        (subs / name / A).mkdir(parents=True)
        (subs / name / A / f"{A}.ipynb").write_text("{}")
    (subs / "empty").mkdir()
    (subs / "a_file").write_text("{}")
    (subs / ".hidden" / A).mkdir(parents=True)
    (subs / "linked").symlink_to(subs / "Alice")
    (subs / ".ipynb_checkpoints").mkdir()
    (subs / "flat").mkdir()
    (subs / "flat" / f"{A}.ipynb").write_text("{}")
    (subs / "as_file").mkdir()
    (subs / "as_file" / A).write_text("{}")
    return subs


def test_every_entry_is_a_student_or_a_refusal_that_names_it(tmp_path):
    subs = _folder(tmp_path)
    found, flags = survey(subs, [A])
    names = [p.name for p in found]
    assert names == sorted(["*", "o'neil", "Jos\u00e9", "Jose\u0301", "Alice", "alice", "flat", "as_file"])
    why = {f.student: f.what for f in flags if f.cell == "-" and f.notebook == "-"}
    assert "empty folder" in why["empty"]
    assert "a file where a student's folder should be" in why["a_file"]
    assert "hidden folder" in why[".hidden"] and "rename" in why[".hidden"]
    assert "symbolic link" in why["linked"]
    assert ".ipynb_checkpoints" in JUNK and ".ipynb_checkpoints" not in why  # a tool's litter, skipped
    # every entry but the litter gets a verdict, so shards divide all of them
    assert set(students(subs)) == set(names) | {"empty", "a_file", ".hidden", "linked"}


def test_near_twins_are_graded_apart_and_each_flagged(tmp_path):
    found, flags = survey(_folder(tmp_path), [A])
    rows = {(f.student, f.what) for f in flags}
    for a, b in (("Jos\u00e9", "Jose\u0301"), ("Jose\u0301", "Jos\u00e9")):
        assert (
            a,
            f"the same name in Unicode normal form NFC as the folder {b!r}: graded apart "
            "(one student twice? keep one folder)",
        ) in rows
    assert any(s == "Alice" and "differ only in case" in w for s, w in rows)
    assert any(s == "alice" and "differ only in case" in w for s, w in rows)
    assert unicodedata.normalize("NFC", "Jose\u0301") == "Jos\u00e9"


def test_an_assignment_that_is_no_folder_is_refused_with_the_layout(tmp_path):
    subs = _folder(tmp_path)
    assert "file where a folder should be" in stray(subs / "as_file", A)
    assert f"without an {A}/ folder" in stray(subs / "flat", A)
    assert stray(subs / "Alice", A) is None


def test_grades_csv_keeps_every_name_exactly_rfc4180_quoted(tmp_path):
    names = {student_id(n): n for n in ('say "hi"', "o'neil", "two words", "a,b", "Zoë\nnewline", "alice")}
    path = tmp_path / "grades.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["assignment", "student_id", "score"])
        w.writerows([A, sid, 1.0] for sid in names)
    rename_students(path, names)
    text = path.read_text(encoding="utf-8")
    assert '"say ""hi"""' in text and '"a,b"' in text  # quotes doubled, commas quoted (RFC 4180)
    with open(path, newline="", encoding="utf-8") as f:
        assert [r["student_id"] for r in csv.DictReader(f)] == list(names.values())

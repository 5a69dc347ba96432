"""Parallel and sharded grading (pipeline.grade_parallel, merge): the same scores as a serial run."""

import csv
import subprocess
import sys

import pytest

from autograder.cli import main, parse_shard
from autograder.examples import grade_examples
from autograder.nbg import REPO, AutograderError

pytestmark = pytest.mark.slow
A = "03_self_attention"


def _grades(work):
    with open(work / "grades.csv", newline="") as f:
        return sorted(
            (r["assignment"], r["student_id"], float(r["score"]), float(r["max_score"]))
            for r in csv.DictReader(f)
            if r["assignment"] == A
        )


def _cells(results):
    return sorted((r.student, c.grade_id, c.score) for r in results for c in r.cells)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    work = tmp_path_factory.mktemp("serial") / "work"
    results, _ = grade_examples(REPO, work, [A])
    return work, results


def test_jobs_give_the_serial_scores(serial, examples_batch):
    # the session's batch of every example, graded as `--jobs 2` (conftest.py), against this serial run
    work, results = serial
    par, merged, _, rc = examples_batch
    assert rc == 0  # examples as expected
    serial_rows = _grades(work)
    students = {row[1] for row in serial_rows}
    # nbgrader's export lists every student of the whole batch under every assignment (0: not submitted)
    assert [row for row in _grades(par) if row[1] in students] == serial_rows
    assert _cells([r for r in merged if r.assignment == A]) == _cells(results)


def test_shards_as_separate_processes_then_merge(serial, tmp_path):
    work, _ = serial
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "autograder", "grade", "03", "--shard", f"{i}/3", "--work", str(d)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, d in enumerate(shards)
    ]
    assert [p.wait() for p in procs] == [0, 0, 0]
    graded = [sorted(p.name for p in (d / "autograded").iterdir()) for d in shards]
    assert sorted(sum(graded, [])) == sorted(
        p.name for p in (work / "autograded").iterdir()
    )  # each student once
    assert all(graded)
    assert main(["merge", *map(str, shards), "--work", str(tmp_path / "merged")]) == 0
    assert _grades(tmp_path / "merged") == _grades(work)


def test_bad_shard_and_mismatched_shards_are_refused(serial, tmp_path):
    for bad in ("3/3", "1", "a/b", "0/0"):
        with pytest.raises(AutograderError, match="--shard"):
            parse_shard(bad)
    work, _ = serial
    other = tmp_path / "other"  # a shard of another batch (other sources, other assignments)
    other.mkdir()
    (other / ".batch").write_text("01_embeddings:0123")
    assert main(["merge", str(work), str(other), "--work", str(tmp_path / "m")]) == 2
    assert not (tmp_path / "m").exists()

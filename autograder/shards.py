"""Parallel and sharded grading on nbgrader's own engine, with one gradebook at the end.

A shard is an ordinary ``autograder grade`` run over every N-th student (``--shard i/N``, students
sorted by name, round robin) into its own work folder, with its own gradebook: shards share nothing,
so they can run as processes on one machine (``--jobs N``), as a Slurm array or a Kubernetes
Indexed Job (``deploy/``). ``merge`` folds the shards into one work folder: a fresh gradebook made
by ``generate_assignment`` (``grading.prepare_gradebook``), each shard's grades and comments copied
into it through nbgrader's API, the autograded notebooks, ``results.json`` and ``integrity.csv``,
then nbgrader's CSV export. The scores are the serial run's (``tests/test_shards.py`` checks it).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

from nbgrader.api import Gradebook

from .grading import FINGERPRINT, CellResult, NotebookResult, prepare_gradebook
from .nbg import COURSE_ID, AutograderError, export, fresh_work_dir


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise AutograderError(
            f"--shard {text!r}: write it as i/N, e.g. 0/4 for the first of four shards"
        ) from None
    if not (n >= 1 and 0 <= i < n):
        raise AutograderError(f"--shard {text!r}: i must be 0 to N-1 and N at least 1")
    return i, n


def _load_results(work: Path) -> list[NotebookResult]:
    path = work / "results.json"
    if not path.exists():
        raise AutograderError(f"{work} holds no results.json: did that shard finish? Re-run it (it resumes).")
    out = []
    for r in json.loads(path.read_text()):
        r["cells"] = [CellResult(**c) for c in r["cells"]]
        out.append(NotebookResult(**r))
    return out


def merge(root: Path, shards: list[Path], out: Path) -> list[NotebookResult]:
    """Fold shard work folders into ``out``: one gradebook, grades.csv, integrity.csv, results.json."""
    shards = [Path(s).resolve() for s in shards]
    stamps = {(s / FINGERPRINT).read_text() if (s / FINGERPRINT).exists() else None for s in shards}
    if len(stamps) != 1 or None in stamps:
        raise AutograderError(
            "the shards were not graded from the same assignments and sources "
            "(their .batch files differ or are missing): grade them again with the same command"
        )
    names = next(iter(stamps)).split(":")[0].split(",")
    out = fresh_work_dir(out)
    prepare_gradebook(root, out, names)
    (out / FINGERPRINT).write_text(next(iter(stamps)))
    results: list[NotebookResult] = []
    flags_rows: list[list[str]] = []
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{out / 'gradebook.db'}", COURSE_ID) as merged:
        # nbgrader's API warns that SQLAlchemy skips an autoflush while it adds a submission: noise, not a problem
        warnings.filterwarnings("ignore", message=".*not in session.*")
        for shard in shards:
            shard_results = _load_results(shard)
            results += shard_results
            with Gradebook(f"sqlite:///{shard / 'gradebook.db'}", COURSE_ID) as gb:
                for name in names:
                    for sub in gb.find_assignment(name).submissions:
                        student = sub.student.id
                        merged.update_or_create_student(student)
                        merged.update_or_create_submission(name, student, timestamp=sub.timestamp)
                        for nb in sub.notebooks:
                            for g in nb.grades:
                                mg = merged.find_grade(g.name, nb.name, name, student)
                                mg.auto_score, mg.manual_score = g.auto_score, g.manual_score
                                mg.extra_credit, mg.needs_manual_grade = g.extra_credit, g.needs_manual_grade
                            for c in nb.comments:
                                mc = merged.find_comment(c.name, nb.name, name, student)
                                mc.auto_comment, mc.manual_comment = c.auto_comment, c.manual_comment
                merged.db.commit()
            for folder in ("submitted", "autograded"):
                if (shard / folder).is_dir():
                    shutil.copytree(shard / folder, out / folder, dirs_exist_ok=True)
            if (shard / "integrity.csv").exists():
                with open(shard / "integrity.csv", newline="") as f:
                    flags_rows += list(csv.reader(f))[1:]
    with open(out / "integrity.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "assignment", "notebook", "cell", "what"])
        w.writerows(flags_rows)
    export(out, out / "grades.csv")
    results.sort(key=lambda r: (r.assignment, r.student, r.notebook))
    (out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results


def shard_dirs(work: Path, n: int) -> list[Path]:
    """Where ``--jobs N`` puts its shards: beside the work folder, so a fresh work folder can take the merge."""
    base = Path(f"{Path(work).resolve()}.shards")
    return [base / str(i) for i in range(n)]


def run_jobs(argv: list[str], work: Path, jobs: int, root: Path | None = None) -> list[Path]:
    """Run ``autograder grade <argv> --shard i/N --work <shard i>`` for i < N as parallel processes."""
    dirs = shard_dirs(work, jobs)
    threads = max(
        1, (os.cpu_count() or 1) // jobs
    )  # torch in each kernel: share the cores, do not fight over them
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    procs = []
    for i, d in enumerate(dirs):
        d.parent.mkdir(parents=True, exist_ok=True)
        log = open(d.parent / f"{i}.log", "w")
        cmd = [
            sys.executable,
            "-m",
            "autograder",
            *(["--root", str(root)] if root else []),
            "grade",
            *argv,
            "--shard",
            f"{i}/{jobs}",
            "--work",
            str(d),
        ]
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log, d))
    failed = []
    for proc, log, d in procs:
        proc.wait()
        log.close()
        if proc.returncode not in (0, 1):  # 1: an example missed its expected score; the merge says which
            failed.append(f"{d} (exit {proc.returncode}; its log: {d.parent / (d.name + '.log')})")
    if failed:
        raise AutograderError("shards failed: " + ", ".join(failed))
    return dirs

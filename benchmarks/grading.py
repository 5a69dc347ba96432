"""Benchmark: grading throughput, where the time goes, serial against parallel shards, and a term's cost.

Makes M copies of the example submissions of one notebook (students renamed), grades them serially
(``autograder.pipeline.grade``) and with ``--jobs J`` (``grade_parallel``: J shards in worker
processes, then ``merge``), checks the scores agree, and prints seconds per submission, the speedup,
a breakdown by stage, and the projected wall time of S students x 7 notebooks on K machines like this
one. With ``--all`` it also grades all example submissions of every notebook serially (the README's
``autograder all``). Stages per submission, from what the batch leaves in its work folder:

* ``nbgrader before kernel``: pass 1 (sanitize), pass 2's set-up and the kernel launcher's start
  (``autograde`` began -> the sandbox launcher's ``start`` event);
* ``kernel start``: bubblewrap, ipykernel and the kernel guard, which imports torch and course
  (``start`` -> the guard's ``ready`` report);
* ``setup cell``: the cells up to the first that imports course (imports, seeds, profile), from
  nbclient's timings;
* ``other cells``: the rest of the notebook, answers and tests (the hidden tests' probes included);
* ``judge (outside the kernel)``: the verdicts, from ``judged/<student>/<assignment>/verdicts.json``;
* ``nbgrader after cells``: kernel shutdown, scoring, gradebook writes (the remainder).

    python benchmarks/grading.py                     # notebook 03, M=3 copies (21 submissions), J=2
    python benchmarks/grading.py --all --json results/grading.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import nbformat

from autograder import integrity
from autograder.examples import grade_examples, load_examples, write_submissions
from autograder.gradebook import fingerprint
from autograder.nbg import REPO, assignments
from autograder.pipeline import grade, grade_parallel
from autograder.sandbox import SandboxConfig
from course.settings import GRADEBOOKS_DIR, JUDGED_DIR


def _scores(work: Path) -> list[tuple[str, float]]:
    with open(work / "grades.csv", newline="") as f:
        return sorted((r["student_id"], float(r["score"])) for r in csv.DictReader(f) if r["score"])


def _busy_cpu_s() -> float:
    """CPU seconds this machine has spent busy (all processes, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _uncached(names: list[str]) -> None:
    """Drop the generated gradebook of this batch, so each timed run pays generate_assignment once."""
    shutil.rmtree(REPO / GRADEBOOKS_DIR / fingerprint(REPO, names)[:24], ignore_errors=True)


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def stages(work: Path, rows) -> dict[str, float]:
    """Mean seconds per submission in each stage (see the module's docstring)."""
    runs = integrity.runs_by_folder(work / "sandbox" / "events.jsonl")
    out: dict[str, list[float]] = {}
    for r in rows:
        folder = work / "autograded" / r.student / r.assignment
        events = runs.get(str(folder.resolve()), [])
        start = next((e["time"] for e in events if e.get("event") == "start"), None)
        ready = next((e["time"] for e in events if e.get("kind") == "ready"), None)
        nb = nbformat.read(folder / f"{r.notebook}.ipynb", 4)
        code = [
            c
            for c in nb.cells
            if c.cell_type == "code" and "iopub.execute_input" in c.metadata.get("execution", {})
        ]
        times = [c.metadata["execution"] for c in code if "shell.execute_reply" in c.metadata["execution"]]
        if start is None or ready is None or not times:
            continue
        first, last = _t(times[0]["iopub.execute_input"]), _t(times[-1]["shell.execute_reply"])
        # the setup cell: the first that imports course (after papermill's parameters cell)
        setup = next(
            (i for i, c in enumerate(code) if "import course" in c.source or "from course" in c.source), 0
        )
        setup_end = _t(times[min(setup, len(times) - 1)]["shell.execute_reply"])
        parts = {
            "nbgrader before kernel": start - r.started,
            "kernel start": ready - start,
            "setup cell": setup_end - first,
            "other cells": last - setup_end,
        }
        record = work / JUDGED_DIR / r.student / r.assignment / "verdicts.json"
        if record.is_file():
            parts["judge (outside the kernel)"] = json.loads(record.read_text()).get("judge_s", 0.0)
        parts["nbgrader after cells"] = r.wall_s - sum(parts.values())
        for k, v in parts.items():
            out.setdefault(k, []).append(v)
    return {k: statistics.mean(v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignment", nargs="?", default="03")
    p.add_argument("--copies", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--all", action="store_true", help="also grade every example submission serially")
    p.add_argument("--students", type=int, default=1000)
    p.add_argument("--nodes", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--json")
    args = p.parse_args()
    name = assignments(REPO, [args.assignment])[0]
    out: dict = dict(assignment=name)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        examples = [
            replace(e, student=f"c{k}_{e.student}") for k in range(args.copies) for e in load_examples(name)
        ]
        write_submissions(examples, REPO, REPO / "release", tmp / "subs")
        n = len(examples)
        _uncached([name])
        cpu0, start = _busy_cpu_s(), time.perf_counter()
        rows = grade(REPO, tmp / "serial", [name], tmp / "subs", sandbox=SandboxConfig())
        serial_s = time.perf_counter() - start
        serial_cores = (_busy_cpu_s() - cpu0) / serial_s
        per_sub = statistics.mean(r.wall_s for r in rows)
        out.update(
            submissions=n,
            serial_s=serial_s,
            serial_s_per_submission=serial_s / n,
            autograde_s_per_submission=per_sub,
            serial_cores_busy=serial_cores,
            stages_s=stages(tmp / "serial", rows),
        )
        _uncached([name])
        start = time.perf_counter()
        grade_parallel(REPO, tmp / "par", [name], tmp / "subs", args.jobs, sandbox=SandboxConfig())
        parallel_s = time.perf_counter() - start
        assert _scores(tmp / "serial") == _scores(tmp / "par"), "parallel and serial scores differ"
        fixed_s = serial_s - per_sub * n  # the batch's own cost: gradebook, sandbox set-up, export
        out.update(
            jobs=args.jobs,
            parallel_s=parallel_s,
            parallel_s_per_submission=parallel_s / n,
            speedup=serial_s / parallel_s,
            fixed_s_per_batch=fixed_s,
        )
        if args.all:
            _uncached(assignments(REPO))
            start = time.perf_counter()
            every, ex = grade_examples(REPO, tmp / "all", None, sandbox=SandboxConfig())
            out.update(all_examples=len(ex), all_examples_s=time.perf_counter() - start)
            out["per_notebook_s"] = {
                a: statistics.mean(r.wall_s for r in every if r.assignment == a)
                for a in sorted({r.assignment for r in every})
            }
    total = args.students * 7
    per_parallel = (out["parallel_s"] - fixed_s) / n
    out["projected_s"] = {str(k): fixed_s + total * per_parallel / k for k in args.nodes}
    print(json.dumps(out, indent=2))
    print(
        f"serial {out['serial_s_per_submission']:.2f} s per submission "
        f"({per_sub:.2f} s in nbgrader's autograde), "
        f"--jobs {args.jobs} {out['parallel_s_per_submission']:.2f} s: "
        f"speedup {out['speedup']:.2f}x; the serial "
        f"run kept {serial_cores:.2f} cores busy"
    )
    for stage, s in out["stages_s"].items():
        print(f"  {stage:<24} {s:5.2f} s per submission")
    if args.all:
        print(f"all {out['all_examples']} example submissions, serially: {out['all_examples_s']:.0f} s")
        for a, s in out["per_notebook_s"].items():
            print(f"  {a:<26} {s:5.2f} s per submission")
    for k, v in out["projected_s"].items():
        print(f"{args.students} students x 7 notebooks on {k} machine(s) like this one: {v / 60:.1f} min")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

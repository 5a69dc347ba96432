"""Benchmark: grading throughput, serial against parallel shards, and what a whole course would take.

Makes M copies of the example submissions of one notebook (students renamed), grades them serially
(one ``autograder grade``) and with ``--jobs J`` (J shards as processes, then ``merge``), checks the
scores agree, and prints seconds per notebook, the speedup, and the projected wall time of S students
x 7 notebooks on K machines like this one: every machine grades its shards with --jobs J, at the
measured per-notebook cost, plus the fixed cost of a shard (gradebook, references, nbgrader start).

    python benchmarks/grading.py                     # notebook 03, M=3 copies (15 notebooks), J=2
    python benchmarks/grading.py --copies 6 --json results/grading.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from autograder.examples import load_examples, write_submissions
from autograder.grading import GRADEBOOKS, cached_gradebook, fingerprint, grade
from autograder.nbg import REPO, assignments
from autograder.sandbox import SandboxConfig
from autograder.shards import merge, run_jobs


def _scores(work: Path) -> list[tuple[str, float]]:
    with open(work / "grades.csv", newline="") as f:
        return sorted((r["student_id"], float(r["score"])) for r in csv.DictReader(f) if r["score"])


def _busy_cpu_s() -> float:
    """CPU seconds this machine has spent busy (all processes, /proc/stat): kernels run in sandboxes
    and subprocesses that a process's own resource usage does not see."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _uncached(name: str) -> None:
    """Drop the generated gradebook of this batch, so each timed run pays generate_assignment once."""
    shutil.rmtree(REPO / GRADEBOOKS / fingerprint(REPO, [name])[:24], ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignment", nargs="?", default="03")
    p.add_argument("--copies", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--students", type=int, default=1000)
    p.add_argument("--nodes", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--json")
    args = p.parse_args()
    name = assignments(REPO, [args.assignment])[0]
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        examples = [
            replace(e, student=f"c{k}_{e.student}") for k in range(args.copies) for e in load_examples(name)
        ]
        write_submissions(examples, REPO, REPO / "release", tmp / "subs")
        n = len(examples)
        _uncached(name)
        cpu0 = _busy_cpu_s()
        start = time.perf_counter()
        grade(REPO, tmp / "serial", [name], tmp / "subs", sandbox=SandboxConfig())
        serial_s = time.perf_counter() - start
        serial_cores = (
            _busy_cpu_s() - cpu0
        ) / serial_s  # cores the serial run keeps busy: N / this bounds the speedup
        _uncached(name)
        start = time.perf_counter()
        cached_gradebook(REPO, [name])  # as `autograder grade --jobs` does: once, before the shards
        dirs = run_jobs([name, "--submissions", str(tmp / "subs")], tmp / "par", args.jobs)
        merge(REPO, dirs, tmp / "par")
        parallel_s = time.perf_counter() - start
        assert _scores(tmp / "serial") == _scores(tmp / "par"), "parallel and serial scores differ"
        # the fixed cost of a shard: a batch of one notebook
        one = tmp / "one"
        (one / "s" / name).mkdir(parents=True)
        shutil.copytree(tmp / "subs" / examples[0].student / name, one / "s" / name, dirs_exist_ok=True)
        _uncached(name)
        start = time.perf_counter()
        grade(REPO, tmp / "onework", [name], one, sandbox=SandboxConfig())
        fixed_s = time.perf_counter() - start - serial_s / n
    per_nb_parallel = (parallel_s - fixed_s) / n
    total = args.students * 7
    projection = {k: fixed_s + total * per_nb_parallel / k for k in args.nodes}
    out = dict(
        assignment=name,
        notebooks=n,
        jobs=args.jobs,
        serial_s=serial_s,
        parallel_s=parallel_s,
        serial_s_per_notebook=serial_s / n,
        parallel_s_per_notebook=parallel_s / n,
        speedup=serial_s / parallel_s,
        serial_cores_busy=serial_cores,
        fixed_s_per_shard=fixed_s,
        projected_s={str(k): v for k, v in projection.items()},
        students=args.students,
    )
    print(json.dumps(out, indent=2))
    print(
        f"serial {serial_s / n:.2f} s per notebook, --jobs {args.jobs} {parallel_s / n:.2f} s per notebook: "
        f"speedup {serial_s / parallel_s:.2f}x (target >= 1.7x on 2 cores); the serial run kept "
        f"{serial_cores:.2f} cores busy"
    )
    for k, v in projection.items():
        print(f"{args.students} students x 7 notebooks on {k} machine(s) like this one: {v / 60:.1f} min")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Autograde submissions with nbgrader and report scores per student and notebook.

Every step is nbgrader's own: ``generate_assignment`` records the assignment (and its hidden
tests) in a fresh gradebook, ``autograde`` runs each submission, ``export`` writes the CSV.
This module only lays out the folders and reads the gradebook back for the table.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from .examples import Example, load_examples, write_submissions
from .nbg import AutograderError, assignments, fresh_work_dir, nbgrader, notebooks
from .release import generate
from .sandbox import SandboxConfig, find_bwrap, install_kernel, nbgrader_options, probe


@dataclass
class CellResult:
    grade_id: str
    score: float
    max_score: float
    test: bool  # an autograded test cell (else a manually graded answer)
    needs_manual: bool
    message: str = ""  # the first line of the error a failed test raised


@dataclass
class NotebookResult:
    student: str
    assignment: str
    notebook: str
    score: float
    max_score: float
    cells: list[CellResult] = field(default_factory=list)
    sandbox: str = "sandboxed"  # or "unsandboxed": graded in an ordinary kernel with the grader's rights
    events: list[str] = field(default_factory=list)  # what the sandbox did to this notebook (wall-time kill, ...)

    @property
    def failed(self) -> list[CellResult]:
        return [c for c in self.cells if c.test and c.score < c.max_score]

    @property
    def needs_manual(self) -> list[CellResult]:
        return [c for c in self.cells if c.needs_manual]


def _error_messages(nb_path: Path) -> dict[str, str]:
    """grade_id -> 'ErrorName: first line of the message' for cells that raised."""
    out = {}
    if not nb_path.exists():
        return out
    for cell in nbformat.read(nb_path, 4).cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        for o in cell.get("outputs", []):
            if gid and o.output_type == "error":
                first = (o.evalue or "").strip().splitlines()
                out[gid] = f"{o.ename}: {first[0] if first else ''}".rstrip(": ")
            elif gid and o.output_type == "stream" and o.name == "stderr" and gid not in out:
                text = o.text.strip()
                out[gid] = "wrote to stderr: " + (text.splitlines()[0][:200] if text else repr(o.text))
    return out


def _test_ids(source_nb: Path) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(source_nb, 4).cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}


def _sandbox_events(work: Path) -> dict[str, list[str]]:
    """notebook folder -> what the sandbox launcher recorded about its kernel, in plain words."""
    path, out = work / "sandbox" / "events.jsonl", {}
    if path.exists():
        for line in path.read_text().splitlines():
            e = json.loads(line)
            if e["event"] == "wall-time":
                out.setdefault(e["cwd"], []).append(f"killed after the {e['limit_s']:.0f} s wall-time limit per notebook")
            elif e["event"] in ("killed", "exit"):
                out.setdefault(e["cwd"], []).append(f"the kernel died (exit code {e['code']})")
    return out


def read_results(root: Path, work: Path, names: list[str], sandbox: str = "sandboxed") -> list[NotebookResult]:
    results, events = [], _sandbox_events(work)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}", "dl-course") as gb:
        for name in names:
            for student in sorted(p.name for p in (work / "autograded").iterdir() if (p / name).is_dir()):
                sub = gb.find_submission(name, student)
                for nb in sorted(sub.notebooks, key=lambda n: n.name):
                    tests = _test_ids(root / "source" / name / f"{nb.name}.ipynb")
                    msgs = _error_messages(work / "autograded" / student / name / f"{nb.name}.ipynb")
                    cells = [
                        CellResult(g.name, float(g.score or 0), float(g.max_score), g.name in tests,
                                   bool(g.needs_manual_grade), msgs.get(g.name, ""))
                        for g in sorted(nb.grades, key=lambda g: g.name)
                    ]
                    folder = str((work / "autograded" / student / name).resolve())
                    results.append(NotebookResult(student, name, nb.name, float(nb.score), float(nb.max_score), cells,
                                                  sandbox, events.get(folder, [])))
    return results


def prepare_sandbox(work: Path, sandbox: bool | SandboxConfig) -> tuple[list[str], dict[str, str], str]:
    """(nbgrader options, environment, "sandboxed" or "unsandboxed"); says so loudly when unsandboxed."""
    if sandbox is False:
        print("WARNING: grading UNSANDBOXED (--no-sandbox): submissions run with your rights, "
              "network, and read access to source/ and the gradebook", flush=True)
        return [], {}, "unsandboxed"
    config = sandbox if isinstance(sandbox, SandboxConfig) else SandboxConfig()
    ok, found = probe(config.bwrap or find_bwrap())
    if not ok:
        banner = "!" * 100
        print(f"{banner}\nWARNING: the grading sandbox cannot start: {found}.\nGrading UNSANDBOXED: submissions run "
              f"with your rights, network, and read access to source/ and the gradebook; every row is marked "
              f"'unsandboxed'.\n{banner}", flush=True)
        return [], {}, "unsandboxed"
    config.bwrap = found
    env = install_kernel(work, config)
    return nbgrader_options(work), env, "sandboxed"


def grade(root: Path, work: Path, wanted: list[str] | None = None, submissions: Path | None = None,
          sandbox: bool | SandboxConfig = True) -> tuple[list[NotebookResult], list[Example]]:
    """Autograde ``submissions`` (``<student>/<assignment>/*.ipynb``), or the example submissions.

    Each notebook runs in the bubblewrap sandbox of ``autograder.sandbox`` unless ``sandbox`` is
    False (or the sandbox cannot start here, which is printed and marked on every row).
    """
    names = assignments(root, wanted)
    work = fresh_work_dir(work)
    options, env, mode = prepare_sandbox(work, sandbox)
    generate(root, work, names)
    examples: list[Example] = []
    if submissions is None:
        for name in names:
            examples += load_examples(name)
        if not examples:
            raise AutograderError(f"no example submissions for {', '.join(names)} in autograder/examples/")
        write_submissions(examples, root, root / "release", work / "submitted")
    else:
        if not submissions.is_dir():
            raise AutograderError(f"{submissions} is not a folder of <student>/<assignment>/<notebook>.ipynb")
        for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
            for name in names:
                if (student_dir / name).is_dir():
                    shutil.copytree(student_dir / name, work / "submitted" / student_dir.name / name)
        if not (work / "submitted").is_dir():
            raise AutograderError(
                f"{submissions} holds no submission of {', '.join(names)}: expected "
                f"{submissions}/<student>/<assignment>/<notebook>.ipynb"
            )
    graded, unfinished = [], {}
    for name in names:
        if any((work / "submitted").glob(f"*/{name}")):
            print(f"autograding {name} ...", flush=True)
            proc = nbgrader(["autograde", name, "--force", *options], root, work, quiet=True, extra_env=env, check=False)
            failed = re.findall(rf"error processing assignment '{re.escape(name)}' for student '([^']+)'", proc.stderr + proc.stdout)
            if proc.returncode and not failed:
                raise AutograderError(f"`nbgrader autograde {name}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            for student in failed:
                print(f"  nbgrader could not finish {student}/{name}: it gets a 0 row that says why", flush=True)
            unfinished[name] = failed
            graded.append(name)
    nbgrader(["export", f"--to={work / 'grades.csv'}"], root, work, quiet=True)
    results = read_results(root, work, graded, mode)
    results += unfinished_results(root, work, unfinished, mode)
    (work / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results, examples


def unfinished_results(root: Path, work: Path, unfinished: dict[str, list[str]], mode: str) -> list[NotebookResult]:
    """Rows for submissions nbgrader could not finish (the kernel died or was killed): 0 points, and why."""
    events, out = _sandbox_events(work), []
    for name, students in unfinished.items():
        for student in students:
            folder = str((work / "autograded" / student / name).resolve())
            why = events.get(folder) or ["nbgrader could not grade this submission (its log is in the autograde output)"]
            for nb in notebooks(root, name):
                cells = nbformat.read(nb, 4).cells
                points = [(c.metadata["nbgrader"]["grade_id"], float(c.metadata["nbgrader"].get("points", 0)),
                           c.metadata["nbgrader"].get("solution", False)) for c in cells
                          if c.metadata.get("nbgrader", {}).get("grade")]
                results = [CellResult(gid, 0.0, pts, not sol, bool(sol)) for gid, pts, sol in points]  # why: in events
                out.append(NotebookResult(student, name, nb.stem, 0.0, sum(p for _, p, _ in points), results, mode, why))
    return out


def table(results: list[NotebookResult]) -> str:
    head = f"{'student':<24} {'notebook':<24} {'score':>6} {'max':>6}  {'manual':>6}  {'kernel':<11}  failed tests"
    lines = [head, "-" * len(head)]
    for r in results:
        failed = ", ".join(c.grade_id for c in r.failed) or "-"
        lines.append(f"{r.student:<24} {r.notebook:<24} {r.score:6.1f} {r.max_score:6.1f}  {len(r.needs_manual):6d}  "
                     f"{r.sandbox:<11}  {failed}")
    notes = [f"  {r.student} / {c.grade_id}: {c.message}" for r in results for c in r.failed if c.message]
    if notes:
        lines += ["", "why tests failed:"] + notes
    events = [f"  {r.student} / {r.notebook}: {e}" for r in results for e in r.events]
    if events:
        lines += ["", "what the sandbox stopped:"] + events
    return "\n".join(lines)


def exported_table(csv_path: Path, results: list[NotebookResult]) -> str:
    """nbgrader export's CSV, as a table of total score per student and assignment."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    graded = {(r.assignment, r.student) for r in results}
    # nbgrader lists every student for every assignment, with 0 where nothing was submitted
    submitted = [r for r in rows if (r["assignment"], r["student_id"]) in graded]
    lines = [f"{'assignment':<24} {'student':<24} {'score':>6} {'max':>6}"]
    for r in sorted(submitted, key=lambda r: (r["assignment"], r["student_id"])):
        lines.append(f"{r['assignment']:<24} {r['student_id']:<24} {float(r['score']):6.1f} {float(r['max_score']):6.1f}")
    if len(rows) > len(submitted):
        lines.append(f"({len(rows) - len(submitted)} rows of students who did not submit an assignment not shown)")
    return "\n".join(lines)


def compare_expected(results: list[NotebookResult], examples: list[Example]) -> list[str]:
    """Differences between the scores the examples got and the ones their spec expects."""
    by_key: dict[tuple[str, str], list[NotebookResult]] = {}
    for r in results:
        by_key.setdefault((r.student, r.assignment), []).append(r)
    problems = []
    for ex in examples:
        got = by_key.get((ex.student, ex.assignment))
        if not got:
            problems.append(f"{ex.assignment}/{ex.student}: was not graded")
            continue
        score = sum(r.score for r in got)
        failed = sorted(c.grade_id for r in got for c in r.failed)
        if ex.expected_score is not None and abs(score - ex.expected_score) > 1e-6:
            problems.append(f"{ex.assignment}/{ex.student}: scored {score:g}, expected {ex.expected_score:g} (failed: {', '.join(failed) or 'none'})")
        if ex.expected_failed is not None and failed != sorted(ex.expected_failed):
            problems.append(f"{ex.assignment}/{ex.student}: failed {failed}, expected {sorted(ex.expected_failed)}")
        messages = {c.grade_id: c.message for r in got for c in r.failed}
        for gid, text in ex.expected_messages.items():
            if text not in messages.get(gid, ""):
                problems.append(f"{ex.assignment}/{ex.student}: {gid} should fail with a message containing "
                                f"{text!r}; got {messages.get(gid, 'no failure')!r}")
    return problems

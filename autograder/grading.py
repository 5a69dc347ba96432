"""Autograde submissions with nbgrader and report scores per student and notebook.

Every step is nbgrader's own: ``generate_assignment`` records the assignment (and its hidden
tests) in a fresh gradebook, ``autograde`` runs each submission, ``export`` writes the CSV.
This module only lays out the folders and reads the gradebook back for the table.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from . import as_submitted, integrity, references
from .examples import EXAMPLES_DIR, Example, load_examples, write_submissions
from .nbg import (
    COURSE_ID,
    REPO,
    WORK_MARKER,
    AutograderError,
    assignments,
    export,
    fresh_work_dir,
    nbgrader,
    notebooks,
)
from .release import generate
from .sandbox import SandboxConfig, find_bwrap, install_kernel, nbgrader_options, probe

FINGERPRINT = ".batch"  # in the work folder: the assignments and sources its gradebook was made from
GRADEBOOKS = Path("build") / "gradebooks"  # under the course directory: generated gradebooks, one per batch


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
    events: list[str] = field(
        default_factory=list
    )  # what the sandbox did to this notebook (wall-time kill, ...)
    flags: list[str] = field(default_factory=list)  # its rows of the integrity report, "cell: what happened"

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
    return {
        c.metadata["nbgrader"]["grade_id"]
        for c in nbformat.read(source_nb, 4).cells
        if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")
    }


def _sandbox_events(work: Path) -> dict[str, list[str]]:
    """notebook folder -> what the sandbox launcher recorded about its last kernel, in plain words."""
    out = {}
    for folder, events in integrity.runs_by_folder(work / "sandbox" / "events.jsonl").items():
        words = [w for w in map(integrity.kernel_words, events) if w]
        if words:
            out[folder] = words
    return out


def read_results(
    root: Path, work: Path, names: list[str], sandbox: str = "sandboxed"
) -> list[NotebookResult]:
    results, events = [], _sandbox_events(work)
    with Gradebook(f"sqlite:///{work / 'gradebook.db'}", COURSE_ID) as gb:
        for name in names:
            for student in sorted(p.name for p in (work / "autograded").iterdir() if (p / name).is_dir()):
                sub = gb.find_submission(name, student)
                for nb in sorted(sub.notebooks, key=lambda n: n.name):
                    tests = _test_ids(root / "source" / name / f"{nb.name}.ipynb")
                    msgs = _error_messages(work / "autograded" / student / name / f"{nb.name}.ipynb")
                    cells = [
                        CellResult(
                            g.name,
                            float(g.score or 0),
                            float(g.max_score),
                            g.name in tests,
                            bool(g.needs_manual_grade),
                            msgs.get(g.name, ""),
                        )
                        for g in sorted(nb.grades, key=lambda g: g.name)
                    ]
                    folder = str((work / "autograded" / student / name).resolve())
                    results.append(
                        NotebookResult(
                            student,
                            name,
                            nb.name,
                            float(nb.score),
                            float(nb.max_score),
                            cells,
                            sandbox,
                            events.get(folder, []),
                        )
                    )
    return results


def prepare_sandbox(
    work: Path, sandbox: bool | SandboxConfig, refs: Path | None = None, test_cells: list[str] | None = None
) -> tuple[list[str], dict[str, str], str]:
    """(nbgrader options, environment, "sandboxed" or "unsandboxed"); says so loudly when unsandboxed."""
    if sandbox is False:
        print(
            "WARNING: grading UNSANDBOXED (--no-sandbox): submissions run with your rights, "
            "network, and read access to source/ and the gradebook",
            flush=True,
        )
        return [], {}, "unsandboxed"
    config = sandbox if isinstance(sandbox, SandboxConfig) else SandboxConfig()
    ok, found = probe(config.bwrap or find_bwrap())
    if not ok:
        banner = "!" * 100
        print(
            f"{banner}\nWARNING: the grading sandbox cannot start: {found}.\nGrading UNSANDBOXED: submissions run "
            f"with your rights, network, and read access to source/ and the gradebook; every row is marked "
            f"'unsandboxed'.\n{banner}",
            flush=True,
        )
        return [], {}, "unsandboxed"
    config.bwrap = found
    config.references, config.test_cells = str(refs or ""), list(test_cells or [])
    env = install_kernel(work, config)
    return nbgrader_options(work), env, "sandboxed"


def fingerprint(root: Path, names: list[str]) -> str:
    """What a gradebook depends on: the source notebooks, nbgrader and its config, the fixtures and lib."""
    import nbgrader as nbgrader_package

    h = hashlib.sha256(nbgrader_package.__version__.encode())
    files = [nb for name in names for nb in notebooks(root, name)] + [root / "nbgrader_config.py"]
    files += sorted((REPO / "autograder" / "references").glob("*.py")) + sorted((REPO / "lib").glob("*.py"))
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def cached_gradebook(root: Path, names: list[str], fp: str | None = None) -> Path | None:
    """``<root>/build/gradebooks/<fingerprint>``: what ``nbgrader generate_assignment`` makes for ``names``.

    generate_assignment takes about 7 s and makes the same gradebook every time from the same sources,
    so it runs once per batch fingerprint; later runs, shards and merges copy its gradebook.db and
    release/. None where that folder cannot be written (then each run generates its own).
    """
    cached = root / GRADEBOOKS / (fp or fingerprint(root, names))[:24]
    if (cached / "gradebook.db").exists():
        return cached
    try:
        staging = fresh_work_dir(cached.with_name(f".{cached.name}.{os.getpid()}"))
    except OSError as e:
        print(f"(no gradebook cache in {cached.parent}: {e})", flush=True)
        return None
    try:
        generate(root, staging, names)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # a failed generation leaves nothing behind
        raise
    try:
        os.rename(staging, cached)  # atomic: a shard that lost the race keeps the winner's copy
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return cached


def prepare_gradebook(root: Path, work: Path, names: list[str], fp: str | None = None) -> None:
    """Put in ``work`` the gradebook (and release/) of ``names``, from the cache or generated there."""
    cached = cached_gradebook(root, names, fp)
    if cached is None:
        generate(root, work, names)
        return
    shutil.copy2(cached / "gradebook.db", work / "gradebook.db")
    shutil.copytree(cached / "release", work / "release", dirs_exist_ok=True)


def open_work(work: Path, stamp: str, fresh: bool) -> tuple[Path, bool]:
    """(work folder, resumed): keep a folder an interrupted run of the same batch (``stamp``) left, else start anew."""
    w = work.resolve()
    if (
        not fresh
        and (w / WORK_MARKER).exists()
        and (w / "gradebook.db").exists()
        and (w / FINGERPRINT).exists()
        and (w / FINGERPRINT).read_text() == stamp
    ):
        print(
            f"resuming the batch in {w}: what is graded there stays graded (--fresh starts over)", flush=True
        )
        return w, True
    w = fresh_work_dir(work)
    return w, False


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.ipynb"))} if folder.is_dir() else {}


def in_shard(student: str, students: list[str], shard: tuple[int, int] | None) -> bool:
    """Shard i of N takes every N-th student, in name order (None: everyone)."""
    if shard is None:
        return True
    i, n = shard
    return sorted(students).index(student) % n == i


def _students(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def grade(
    root: Path,
    work: Path,
    wanted: list[str] | None = None,
    submissions: Path | None = None,
    sandbox: bool | SandboxConfig = True,
    fresh: bool = False,
    cell_timeout: int | None = None,
    examples_dir: Path = EXAMPLES_DIR,
    shard: tuple[int, int] | None = None,
) -> tuple[list[NotebookResult], list[Example]]:
    """Autograde ``submissions`` (``<student>/<assignment>/*.ipynb``), or the example submissions.

    Each notebook runs in the bubblewrap sandbox of ``autograder.sandbox`` unless ``sandbox`` is
    False (or the sandbox cannot start here, which is printed and marked on every row). Every
    submission first passes ``integrity.intake``; what it did is in ``<work>/integrity.csv``. A
    second run of the same batch into the same ``work`` resumes: nbgrader skips what it graded.
    """
    names = assignments(root, wanted)
    fp = fingerprint(root, names)  # hashes every source notebook and lib: once per run
    stamp = ",".join(names) + ":" + fp
    work, resumed = open_work(work, stamp, fresh)
    refs = references.build(names, work / "references")  # lib runs here, outside every student's kernel
    sources = {name: [nbformat.read(nb, 4) for nb in notebooks(root, name)] for name in names}
    test_cells = [
        integrity.cell_hash(src)
        for name in names
        for nb in sources[name]
        for src in integrity.test_cell_sources(nb)
    ]
    options, env, mode = prepare_sandbox(work, sandbox, refs, test_cells)
    if cell_timeout:
        options = [*options, f"--Execute.timeout={int(cell_timeout)}"]
    env = {**references.environment(refs), **env}
    if not resumed:
        prepare_gradebook(root, work, names, fp)
        (work / FINGERPRINT).write_text(stamp)
    examples: list[Example] = []
    if submissions is None:
        for name in names:
            examples += load_examples(name, examples_dir)
        if not examples:
            raise AutograderError(f"no example submissions for {', '.join(names)} in {examples_dir}")
        everyone = sorted({e.student for e in examples})
        examples = [e for e in examples if in_shard(e.student, everyone, shard)]
        submissions = work / "incoming"
        submissions.mkdir(exist_ok=True)  # a shard may hold none of them
        write_submissions(examples, root, root / "release", submissions)
    elif not submissions.is_dir():
        raise AutograderError(f"{submissions} is not a folder of <student>/<assignment>/<notebook>.ipynb")
    release_nbs = {
        name: {nb.name: nbformat.read(root / "release" / name / nb.name, 4) for nb in notebooks(root, name)}
        for name in names
    }
    others = {
        a: {gid for nb in notebooks(root, a) for gid in integrity._grade_ids(nbformat.read(nb, 4))}
        for a in assignments(root)
    }
    flags: list[integrity.Flag] = []
    handed_in: dict[str, list[str]] = {name: [] for name in names}
    everyone = [p.name for p in _students(submissions)]
    for student_dir in _students(submissions):
        if not examples and not in_shard(student_dir.name, everyone, shard):  # examples: chosen above
            continue
        for name in names:
            if (student_dir / name).is_dir():
                handed_in[name].append(student_dir.name)
                dest = work / "submitted" / student_dir.name / name
                before = _contents(dest)
                flags += integrity.intake(
                    student_dir.name, name, student_dir / name, release_nbs[name], others, dest
                )
                if resumed and _contents(dest) != before:  # handed in anew since the last run: grade it again
                    shutil.rmtree(work / "autograded" / student_dir.name / name, ignore_errors=True)
    if not any(handed_in.values()) and shard is None:
        raise AutograderError(
            f"{submissions} holds no submission of {', '.join(names)}: expected "
            f"{submissions}/<student>/<assignment>/<notebook>.ipynb"
        )
    graded, unfinished = [], {}
    for name in names:
        if any((work / "submitted").glob(f"*/{name}")):
            print(f"autograding {name} ...", flush=True)
            proc = nbgrader(["autograde", name, *options], root, work, quiet=True, extra_env=env, check=False)
            failed = re.findall(
                rf"error processing assignment '{re.escape(name)}' for student '([^']+)'",
                proc.stderr + proc.stdout,
            )
            if proc.returncode and not failed:
                raise AutograderError(
                    f"`nbgrader autograde {name}` failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
                )
            for student in failed:
                print(
                    f"  nbgrader could not finish {student}/{name}: it gets a 0 row that says why", flush=True
                )
            unfinished[name] = failed
            graded.append(name)
            as_submitted.keep_all(
                work, name
            )  # the student's own outputs, for whoever marks the written answers
    export(work, work / "grades.csv")
    results = read_results(root, work, graded, mode)
    results += unfinished_results(root, work, unfinished, mode)
    have = {(r.student, r.assignment) for r in results}
    nothing = {name: [s for s in handed_in[name] if (s, name) not in have] for name in names}
    results += unfinished_results(
        root, work, nothing, mode, why="nothing in this submission could be graded (see the integrity report)"
    )
    flags += after_grading_flags(
        work, results, sandbox.memory_gib if isinstance(sandbox, SandboxConfig) else None
    )
    rows = {(r.student, r.assignment, f"{r.notebook}.ipynb"): r for r in results}
    first = {}
    for r in results:
        first.setdefault((r.student, r.assignment), r)
    for (
        f
    ) in flags:  # a flag about a file that is no notebook of the assignment goes to the student's first row
        r = rows.get((f.student, f.assignment, f.notebook)) or first.get((f.student, f.assignment))
        if r is not None:
            r.flags.append(
                f"{f.cell}: {f.what}" if f.notebook == f"{r.notebook}.ipynb" else f"{f.notebook}: {f.what}"
            )
    integrity.write_csv(flags, work / "integrity.csv")
    (work / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results, examples


def after_grading_flags(
    work: Path, results: list[NotebookResult], memory_gib: float | None
) -> list[integrity.Flag]:
    """What the kernels did (the guard's reports, kills) and what the autograded notebooks show."""
    runs, flags = integrity.runs_by_folder(work / "sandbox" / "events.jsonl"), []
    for r in results:
        folder = work / "autograded" / r.student / r.assignment
        path = folder / f"{r.notebook}.ipynb"
        nb = nbformat.read(path, 4) if path.exists() else None
        flags += integrity.kernel_flags(
            r.student, r.assignment, f"{r.notebook}.ipynb", runs.get(str(folder.resolve()), []), nb
        )
        if nb is not None:
            flags += integrity.output_flags(r.student, r.assignment, f"{r.notebook}.ipynb", nb, memory_gib)
    return flags


def unfinished_results(
    root: Path,
    work: Path,
    unfinished: dict[str, list[str]],
    mode: str,
    why: str = "nbgrader could not grade this submission (its log is in the autograde output)",
) -> list[NotebookResult]:
    """Rows for submissions nbgrader could not finish (the kernel died or was killed): 0 points, and why."""
    events, out = _sandbox_events(work), []
    for name, students in unfinished.items():
        for student in students:
            folder = str((work / "autograded" / student / name).resolve())
            reasons = events.get(folder) or [why]
            for nb in notebooks(root, name):
                cells = nbformat.read(nb, 4).cells
                points = [
                    (
                        c.metadata["nbgrader"]["grade_id"],
                        float(c.metadata["nbgrader"].get("points", 0)),
                        bool(c.metadata["nbgrader"].get("solution") or c.metadata["nbgrader"].get("task")),
                    )
                    for c in cells
                    if c.metadata.get("nbgrader", {}).get("grade")
                    or c.metadata.get("nbgrader", {}).get("task")
                ]
                results = [
                    CellResult(gid, 0.0, pts, not manual, manual) for gid, pts, manual in points
                ]  # why: in events
                out.append(
                    NotebookResult(
                        student, name, nb.stem, 0.0, sum(p for _, p, _ in points), results, mode, reasons
                    )
                )
    return out


def table(results: list[NotebookResult]) -> str:
    head = (
        f"{'student':<24} {'notebook':<24} {'score':>6} {'max':>6}  {'manual':>6}  {'kernel':<11}  {'flags':>5}  "
        f"failed tests"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        failed = ", ".join(c.grade_id for c in r.failed) or "-"
        lines.append(
            f"{r.student:<24} {r.notebook:<24} {r.score:6.1f} {r.max_score:6.1f}  {len(r.needs_manual):6d}  "
            f"{r.sandbox:<11}  {len(r.flags):5d}  {failed}"
        )
    notes = [f"  {r.student} / {c.grade_id}: {c.message}" for r in results for c in r.failed if c.message]
    if notes:
        lines += ["", "why tests failed:"] + notes
    events = [f"  {r.student} / {r.notebook}: {e}" for r in results for e in r.events]
    if events:
        lines += ["", "what the sandbox stopped:"] + events
    flags = [f"  {r.student} / {r.notebook} / {f}" for r in results for f in r.flags]
    if flags:
        lines += ["", "integrity report (also in integrity.csv):"] + flags
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
        lines.append(
            f"{r['assignment']:<24} {r['student_id']:<24} {float(r['score']):6.1f} {float(r['max_score']):6.1f}"
        )
    if len(rows) > len(submitted):
        lines.append(
            f"({len(rows) - len(submitted)} rows of students who did not submit an assignment not shown)"
        )
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
            problems.append(
                f"{ex.assignment}/{ex.student}: scored {score:g}, expected {ex.expected_score:g} (failed: {', '.join(failed) or 'none'})"
            )
        if ex.expected_failed is not None and failed != sorted(ex.expected_failed):
            problems.append(
                f"{ex.assignment}/{ex.student}: failed {failed}, expected {sorted(ex.expected_failed)}"
            )
        messages = {c.grade_id: c.message for r in got for c in r.failed}
        for gid, text in ex.expected_messages.items():
            if text not in messages.get(gid, ""):
                problems.append(
                    f"{ex.assignment}/{ex.student}: {gid} should fail with a message containing "
                    f"{text!r}; got {messages.get(gid, 'no failure')!r}"
                )
        flags = [f for r in got for f in r.flags]
        if ex.expected_flags is not None:
            if not ex.expected_flags and flags:
                problems.append(f"{ex.assignment}/{ex.student}: expected no integrity rows, got {flags}")
            for text in ex.expected_flags:
                if not any(text in f for f in flags):
                    problems.append(
                        f"{ex.assignment}/{ex.student}: no integrity row mentions {text!r}; rows: {flags}"
                    )
    return problems

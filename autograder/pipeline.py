"""The grader's one road: a folder of submissions in, one gradebook, grades.csv and report out.

``grade(root, work, wanted, submissions, chosen=...)`` takes
``DIR/<student>/<assignment>/<notebook>.ipynb`` for the students it is given (every one by default);
examples (``autograder/examples.py``), shards and real submissions only feed it. A
``Batch`` reads each source and release notebook once and owns the state of a run: its work folder,
sandbox, the names behind stand-in ids, the flags and the per-submission outcomes. Each submission is
graded by nbgrader's own ``autograde``, in this process, through ``NbGraderAPI.autograde`` (one
student at a time): nbgrader says per student whether it finished, and its preprocessors (with the
course's steps in ``nbgrader_config.py``) write every file, as ``nbgrader autograde`` by hand would.
Scores are read back from the gradebook only (``report.py``).

A second run into the same work folder resumes: nbgrader skips what it graded (``force=False``), and a
submission whose files changed since is graded again. ``--jobs N`` runs N shards of the same road in
worker processes, each with its own gradebook, and merges them (``merge``).
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course.settings import ENV_PROFILE, JUDGED_DIR

from . import cells, gradebook, integrity, report
from .intake import Intake, load_names, save_names, stray, student_id, students, survey
from .nbg import WORK_MARKER, AutograderError, assignments, environment, fresh_work_dir, notebooks
from .sandbox import SandboxConfig, find_bwrap, install_kernel, kernel_options, probe

STAMP = ".batch"  # in the work folder: the assignments and sources its gradebook was made from


@dataclass
class Outcome:
    """What nbgrader said about one submission: finished or not, and how long it took."""

    ok: bool
    error: str = ""
    wall_s: float = 0.0
    started: float = 0.0  # seconds since the epoch


@dataclass
class Batch:
    root: Path
    work: Path
    names: list[str]
    sources: dict[str, dict[str, nbformat.NotebookNode]]  # assignment -> notebook file -> source notebook
    stamp: str
    resumed: bool = False
    mode: str = "sandboxed"
    sandbox: SandboxConfig | None = None
    env: dict[str, str] = field(default_factory=dict)  # for nbgrader and the kernels it starts
    overrides: dict[str, dict] = field(default_factory=dict)  # nbgrader config: Class -> trait -> value
    ids: dict[str, str] = field(default_factory=dict)  # nbgrader id -> the student's name as handed in
    flags: list[integrity.Flag] = field(default_factory=list)
    outcomes: dict[tuple[str, str], Outcome] = field(default_factory=dict)  # (id, assignment) -> outcome

    @classmethod
    def open(cls, root: Path, work: Path, wanted: list[str] | None = None, fresh: bool = False) -> Batch:
        """Read the sources once; keep the work folder an interrupted run of the same batch left."""
        names = assignments(root, wanted)
        sources = {n: {p.name: nbformat.read(p, 4) for p in notebooks(root, n)} for n in names}
        fp = gradebook.fingerprint(root, names)
        stamp = ",".join(names) + ":" + fp
        w = Path(work).resolve()
        same = (w / WORK_MARKER).exists() and (w / STAMP).exists() and (w / STAMP).read_text() == stamp
        if not fresh and same and (w / "gradebook.db").exists():
            print(
                f"resuming the batch in {w}: what is graded there stays graded (--fresh starts over)",
                flush=True,
            )
            return cls(root, w, names, sources, stamp, resumed=True, ids=load_names(w))
        w = fresh_work_dir(w)
        gradebook.prepare(root, w, names, fp)
        (w / STAMP).write_text(stamp)
        return cls(root, w, names, sources, stamp)

    def release(self, name: str) -> dict[str, nbformat.NotebookNode]:
        return {nb: nbformat.read(self.work / "release" / name / nb, 4) for nb in self.sources[name]}

    def test_ids(self, name: str) -> set[str]:
        return {
            gid
            for nb in self.sources[name].values()
            for gid, c in cells.graded(nb).items()
            if cells.is_test(c)
        }

    def name_of(self, sid: str) -> str:
        return self.ids.get(sid, sid)


def prepare_kernels(batch: Batch, sandbox: bool | SandboxConfig, cell_timeout: int | None) -> None:
    """The sandbox kernel and nbgrader's settings (the judge needs nothing prepared: autograder/steps.py)."""
    batch.env = {ENV_PROFILE: os.environ.get(ENV_PROFILE, "smoke")}
    batch.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if cell_timeout:
        batch.overrides.setdefault("Execute", {})["timeout"] = int(cell_timeout)
    if sandbox is False:
        print(
            "WARNING: grading UNSANDBOXED (--no-sandbox): submissions run with your rights, network, and "
            "read access to source/ and the gradebook",
            flush=True,
        )
        batch.mode = "unsandboxed"
        return
    config = sandbox if isinstance(sandbox, SandboxConfig) else SandboxConfig()
    ok, found = probe(config.bwrap or find_bwrap())
    if not ok:
        bar = "!" * 100
        print(
            f"{bar}\nWARNING: the grading sandbox cannot start: {found}.\n"
            "Grading UNSANDBOXED: submissions run with "
            "your rights, network, and read access to source/ and the gradebook; every row is marked "
            f"'unsandboxed' and the summary says so.\n{bar}",
            flush=True,
        )
        batch.mode = "unsandboxed"
        return
    tests = [nb for name in batch.names for nb in batch.sources[name].values()]
    config.bwrap = found
    config.test_cells = [integrity.cell_hash(t) for nb in tests for t in integrity.test_cell_sources(nb)]
    batch.env.update(install_kernel(batch.work, config))
    for cls, traits in kernel_options(batch.work).items():
        batch.overrides.setdefault(cls, {}).update(traits)
    batch.sandbox = config


def take_in(batch: Batch, submissions: Path, chosen: list[str] | None = None) -> list[tuple[str, str]]:
    """Intake of every chosen student's folders; returns the (id, assignment) pairs handed in."""
    if not submissions.is_dir():
        raise AutograderError(f"{submissions} is not a folder of <student>/<assignment>/<notebook>.ipynb")
    others = {
        a: {g for nb in notebooks(batch.root, a) for g in cells.graded(nbformat.read(nb, 4))}
        for a in assignments(batch.root)
    }
    intakes = {name: Intake(name, batch.release(name), others) for name in batch.names}
    folders, refusals = survey(submissions, batch.names)
    batch.flags += [f for f in refusals if chosen is None or f.student in chosen]
    handed_in = []
    for folder in folders:
        if chosen is not None and folder.name not in chosen:
            continue
        sid = student_id(folder.name)
        batch.ids[sid] = folder.name
        for name in batch.names:
            why = stray(folder, name)
            if why:
                batch.flags.append(integrity.Flag(folder.name, name, "-", "-", why))
            if why or not (folder / name).is_dir():
                continue
            dest = batch.work / "submitted" / sid / name
            before = {p.name: p.read_bytes() for p in sorted(dest.glob("*.ipynb"))}
            batch.flags += intakes[name].take(folder.name, folder / name, dest)
            after = {p.name: p.read_bytes() for p in sorted(dest.glob("*.ipynb"))}
            if batch.resumed and after != before:  # handed in anew since the last run: grade it again
                shutil.rmtree(batch.work / "autograded" / sid / name, ignore_errors=True)
            handed_in.append((sid, name))
    save_names(batch.ids, batch.work)
    return handed_in


def record_names_and_empty(batch: Batch, handed_in: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Stand-ins' names into the gradebook (the Formgrader shows them); a 0 in the gradebook and grades.csv,
    without a kernel, for submissions with nothing gradable; returns the submissions left to autograde."""
    empty = [
        (sid, a) for sid, a in handed_in if not any((batch.work / "submitted" / sid / a).glob("*.ipynb"))
    ]
    with gradebook.open_gradebook(batch.root, batch.work) as gb:
        for sid, name in batch.ids.items():
            if sid != name:
                gb.update_or_create_student(sid, last_name=name)
        for sid, a in empty:
            gb.update_or_create_student(sid)
            gb.update_or_create_submission(a, sid)
            batch.outcomes[(sid, a)] = Outcome(
                False, "no gradable notebook was handed in (see the integrity report)"
            )
    return [h for h in handed_in if h not in empty]


def autograde(batch: Batch, handed_in: list[tuple[str, str]]) -> None:
    """nbgrader's autograde for each submission, in this process; one outcome per (id, assignment)."""
    api = gradebook.api(batch.root, batch.work, batch.overrides)
    logs = batch.work / "logs"
    logs.mkdir(exist_ok=True)
    with environment(**batch.env), warnings.catch_warnings():
        # nbgrader's API warns that SQLAlchemy skips an autoflush while it adds a submission: noise
        warnings.filterwarnings("ignore", message=".*not in session.*")
        handed_in = record_names_and_empty(batch, handed_in)
        for name in batch.names:
            todo = sorted(sid for sid, a in handed_in if a == name)
            if todo:
                print(f"autograding {name}: {len(todo)} submissions ...", flush=True)
            for sid in todo:
                began, start = time.time(), time.perf_counter()
                out = api.autograde(name, sid, force=False, create=True)
                wall = time.perf_counter() - start
                (logs / f"{sid}.{name}.log").write_text(out.get("log", "") + out.get("error", ""))
                ok = bool(out.get("success"))
                batch.outcomes[(sid, name)] = Outcome(ok, out.get("error", ""), wall, began)
                if not ok:
                    print(
                        f"  nbgrader could not finish {batch.name_of(sid)!r} / {name}: a 0 row says why",
                        flush=True,
                    )


def results(batch: Batch) -> list[report.NotebookResult]:
    """One row per graded (or failed) submission notebook, names mapped back, flags attached."""
    runs = integrity.runs_by_folder(batch.work / "sandbox" / "events.jsonl")
    rows: list[report.NotebookResult] = []
    with gradebook.open_gradebook(batch.root, batch.work) as gb:
        for (sid, name), outcome in sorted(batch.outcomes.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            folder = batch.work / "autograded" / sid / name
            events = [w for w in map(integrity.kernel_words, runs.get(str(folder), [])) if w]
            if outcome.ok and folder.is_dir():
                got = report.from_gradebook(gb, sid, name, batch.test_ids(name), folder)
            else:
                last = (
                    outcome.error.strip().splitlines()
                    or ["nothing could be graded (see the integrity report)"]
                )[-1]
                got = report.without_results(sid, name, batch.sources[name], events or [last[:300]])
            for r in got:
                r.sandbox, r.events = batch.mode, r.events or events
                r.wall_s, r.started = outcome.wall_s / max(1, len(got)), outcome.started
                batch.flags += after_grading_flags(batch, r, runs.get(str(folder), []))
                r.student = batch.name_of(sid)
            rows += got
    attach_flags(rows, batch.flags)
    return rows


def after_grading_flags(batch: Batch, r: report.NotebookResult, events: list[dict]) -> list[integrity.Flag]:
    """What the kernel did (the guard's reports, kills) and what the autograded notebook shows."""
    sid, name, file = r.student, r.assignment, f"{r.notebook}.ipynb"
    path = batch.work / "autograded" / sid / name / file
    nb = nbformat.read(path, 4) if path.exists() else None
    who = batch.name_of(sid)
    flags = integrity.kernel_flags(who, name, file, events, nb)
    if nb is not None:
        flags += integrity.output_flags(
            who, name, file, nb, batch.sandbox.memory_gib if batch.sandbox else None
        )
    return flags


def attach_flags(rows: list[report.NotebookResult], flags: list[integrity.Flag]) -> None:
    """Each flag on its notebook's row; a flag about a file that is no notebook of it on the student's first
    row.
    """
    by_file = {(r.student, r.assignment, f"{r.notebook}.ipynb"): r for r in rows}
    first: dict[tuple[str, str], report.NotebookResult] = {}
    for r in rows:
        first.setdefault((r.student, r.assignment), r)
    for f in flags:
        r = by_file.get((f.student, f.assignment, f.notebook)) or first.get((f.student, f.assignment))
        if r is not None:
            r.flags.append(
                f"{f.cell}: {f.what}" if f.notebook == f"{r.notebook}.ipynb" else f"{f.notebook}: {f.what}"
            )


def finish(batch: Batch, rows: list[report.NotebookResult]) -> None:
    """grades.csv (nbgrader's export, names mapped back), integrity.csv and results.json."""
    gradebook.export(batch.root, batch.work, batch.work / "grades.csv")
    rename_students(batch.work / "grades.csv", batch.ids)
    integrity.write_csv(batch.flags, batch.work / "integrity.csv")
    report.save(rows, batch.work / "results.json")


def rename_students(csv_path: Path, ids: dict[str, str]) -> None:
    """nbgrader's CSV with every stand-in id replaced by the name it stands for (RFC 4180 quoting)."""
    if not any(k != v for k, v in ids.items()):
        return
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    for r in rows:
        r["student_id"] = ids.get(r["student_id"], r["student_id"])
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def grade(
    root: Path,
    work: Path,
    wanted: list[str] | None,
    submissions: Path,
    sandbox: bool | SandboxConfig = True,
    fresh: bool = False,
    cell_timeout: int | None = None,
    chosen: list[str] | None = None,
) -> list[report.NotebookResult]:
    """Autograde ``submissions`` (``<student>/<assignment>/*.ipynb``; only ``chosen`` students if given)."""
    batch = Batch.open(root, work, wanted, fresh)
    prepare_kernels(batch, sandbox, cell_timeout)
    handed_in = take_in(batch, Path(submissions), chosen)
    if not handed_in and chosen is None:
        raise AutograderError(
            f"{submissions} holds no submission of {', '.join(batch.names)}: expected "
            f"{submissions}/<student>/<assignment>/<notebook>.ipynb"
        )
    autograde(batch, handed_in)
    rows = results(batch)
    finish(batch, rows)
    return rows


def in_shard(everyone: list[str], shard: tuple[int, int] | None) -> list[str]:
    """Shard i of N takes every N-th student, in name order (None: everyone)."""
    names = sorted(everyone)
    return names if shard is None else names[shard[0] :: shard[1]]


def _grade_shard(args: tuple) -> Path:
    root, work, wanted, submissions, sandbox, fresh, cell_timeout, chosen, threads = args
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)  # kernels share the cores
    grade(root, work, wanted, submissions, sandbox, fresh, cell_timeout, chosen)
    return work


def grade_parallel(
    root: Path, work: Path, wanted, submissions: Path, jobs: int, **options
) -> list[report.NotebookResult]:
    """``jobs`` shards of ``grade`` in worker processes, each into its own work folder, then ``merge``."""
    names = assignments(root, wanted)
    gradebook.cached(root, names)  # generated once, before the shards copy it
    everyone = students(submissions)
    base = Path(f"{Path(work).resolve()}.shards")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    tasks = [
        (
            root,
            base / str(i),
            wanted,
            submissions,
            options.get("sandbox", True),
            options.get("fresh", False),
            options.get("cell_timeout"),
            in_shard(everyone, (i, jobs)),
            threads,
        )
        for i in range(jobs)
    ]
    import multiprocessing

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        dirs = list(pool.map(_grade_shard, tasks))
    return merge(root, dirs, work)


def merge(root: Path, shards: list[Path], out: Path) -> list[report.NotebookResult]:
    """Fold shard work folders into ``out``: one gradebook, grades.csv, integrity.csv, results.json."""

    shards = [Path(s).resolve() for s in shards]
    stamps = {(s / STAMP).read_text() if (s / STAMP).exists() else None for s in shards}
    if len(stamps) != 1 or None in stamps:
        raise AutograderError(
            "the shards were not graded from the same assignments and sources (their .batch "
            "files differ or are missing): grade them again with the same command"
        )
    stamp = stamps.pop()
    names = stamp.split(":")[0].split(",")
    for s in shards:
        if not (s / "results.json").exists():
            raise AutograderError(
                f"{s} holds no results.json: did that shard finish? Re-run it (it resumes)."
            )
    out = fresh_work_dir(out)
    gradebook.prepare(root, out, names)
    (out / STAMP).write_text(stamp)
    rows, flags, ids = [], [], {}
    with gradebook.open_gradebook(root, out) as merged:
        for shard in shards:
            gradebook.copy_grades(root, shard, merged, names)
            rows += report.load(shard / "results.json")
            ids.update(load_names(shard))
            for folder in ("submitted", "autograded", JUDGED_DIR):
                if (shard / folder).is_dir():
                    shutil.copytree(shard / folder, out / folder, dirs_exist_ok=True)
            flags += integrity.read_csv(shard / "integrity.csv")
    save_names(ids, out)
    rows.sort(key=lambda r: (r.assignment, r.student, r.notebook))
    batch = Batch(root, out, names, {}, stamp, ids=ids, flags=flags)
    finish(batch, rows)
    return rows

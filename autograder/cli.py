"""The instructor's command line: ``autograder --help``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from course.settings import ENV_DATA_DIR, WORK_DIR

from .nbg import AutograderError, course_root


def _cmd_release(args) -> int:
    from .release import release

    root = course_root(args.root)
    problems = release(root, args.assignments, check=args.check)
    if problems:
        print("release/ is out of date with source/ (run `autograder release`):\n  " + "\n  ".join(problems))
        return 1
    if args.check:
        print("release/ is in sync with source/ and reveals no solution or hidden test")
    return 0


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


EXIT_OK, EXIT_EXAMPLES, EXIT_ERROR, EXIT_REFUSED = 0, 1, 2, 3  # documented in the README


def _report(work: Path, results, examples, start: float) -> int:
    from .integrity import read_csv
    from .report import compare_expected, exported_table, refused, table

    flags = read_csv(work / "integrity.csv")
    print("\nscores per student and notebook (nbgrader gradebook):\n")
    print(table(results))
    print(f"\nnbgrader export -> {work / 'grades.csv'}:\n")
    print(exported_table(work / "grades.csv", results))
    print(f"\nintegrity report: {work / 'integrity.csv'} ({len(flags)} rows)")
    print(f"autograded notebooks in {work / 'autograded'}; graded in {time.perf_counter() - start:.0f} s")
    if any(r.sandbox == "unsandboxed" for r in results):
        print("NOT SANDBOXED: these submissions ran with your rights (see the warning above)")
    away = refused(results, flags)
    if away:
        print(
            "\nrefused, with no score (each says why and how to fix it):\n  "
            + "\n  ".join(f"{f.student!r} / {f.assignment}: {f.what}" for f in away)
        )
    if examples:
        problems = compare_expected(results, examples, flags)
        if problems:
            print("\nexample submissions did NOT get their expected scores:\n  " + "\n  ".join(problems))
            return EXIT_EXAMPLES
        print(f"all {len(examples)} example submissions got their expected scores")
    return EXIT_REFUSED if away else EXIT_OK


def _submissions(args, root: Path, work: Path):
    """(the submissions folder, the examples written there): real submissions, or the examples."""
    from .examples import EXAMPLES_DIR, write_examples
    from .nbg import assignments

    if args.submissions:
        return Path(args.submissions), []
    folder = EXAMPLES_DIR / args.examples if args.examples else EXAMPLES_DIR
    examples, out = write_examples(
        root, assignments(root, args.assignments), folder, Path(f"{work.resolve()}.incoming")
    )
    return out, examples


def _cmd_grade(args) -> int:
    from .intake import students
    from .pipeline import grade, grade_parallel, in_shard
    from .sandbox import SandboxConfig

    root, work, start = course_root(args.root), Path(args.work), time.perf_counter()
    if args.jobs > 1 and args.shard:
        raise AutograderError("--jobs runs the shards itself: give --jobs or --shard, not both")
    submissions, examples = _submissions(args, root, work)
    limits = dict(memory_gib=args.memory_gib, wall_s=args.wall_s, max_processes=args.max_processes)
    options = dict(
        sandbox=False if args.no_sandbox else SandboxConfig(**limits),
        fresh=args.fresh,
        cell_timeout=args.cell_timeout,
    )
    if args.jobs > 1:
        results = grade_parallel(root, work, args.assignments, submissions, args.jobs, **options)
        print(f"graded in {args.jobs} parallel shards, merged into {work}")
    else:
        chosen = None
        if args.shard:
            chosen = in_shard(students(submissions), parse_shard(args.shard))
            examples = [e for e in examples if e.student in chosen]
        results = grade(root, work, args.assignments, submissions, chosen=chosen, **options)
    return _report(work, results, examples, start)


def _cmd_merge(args) -> int:
    from .pipeline import merge

    root = course_root(args.root)
    start = time.perf_counter()
    results = merge(root, [Path(s) for s in args.shards], Path(args.work))
    return _report(Path(args.work), results, [], start)


def _cmd_run(args) -> int:
    from .runner import run, summary

    root = course_root(args.root)
    results = run(root, Path(args.out), args.profile, args.assignments, args.timeout)
    print()
    print(summary(results))
    print(f"executed notebooks and metrics in {Path(args.out) / args.profile}")
    return 0 if all(r.status == "ok" for r in results) else 1


def _cmd_outputs(args) -> int:
    from .nbg import assignments, notebooks
    from .runner import store_checked_outputs

    root = course_root(args.root)
    names = assignments(root, args.assignments)
    for name in names:
        for nb in notebooks(root, name):
            n = store_checked_outputs(nb)
            print(f"source/{name}/{nb.name}: stored the outputs of {n} checked cells")
    return 0


def _cmd_feedback(args) -> int:
    from .feedback import feedback

    root = course_root(args.root)
    files = feedback(root, Path(args.work), args.assignments)
    print(
        f"{len(files)} feedback files in {Path(args.work) / 'feedback'}, each checked: no hidden-test line, "
        "no traceback into a test cell"
    )
    return 0


def _cmd_site(args) -> int:
    from .site import build

    index = build(course_root(args.root), Path(args.out), args.assignments)
    print(f"course site (student notebooks only) built: {index}")
    return 0


def _cmd_student_wheel(args) -> int:
    from .student import build_wheel

    course_root(args.root)
    wheel = build_wheel(Path(args.out))
    print(f"{wheel}\nstudents install it with: bash student/install.sh {wheel}")
    return 0


def _cmd_all(args) -> int:
    args.check = False
    rc = _cmd_release(args)
    return rc or _cmd_grade(args)


def _cmd_samples(args) -> int:
    from .samples import make_samples

    make_samples(Path(args.mirror))
    return 0


def _sandbox_options(p) -> None:
    from .sandbox import SandboxConfig

    d = SandboxConfig()
    p.add_argument(
        "--no-sandbox",
        action="store_true",
        help="grade in ordinary kernels with your rights (every row is marked unsandboxed)",
    )
    p.add_argument(
        "--memory-gib",
        type=float,
        default=d.memory_gib,
        help=f"memory limit per kernel (default {d.memory_gib:g})",
    )
    p.add_argument(
        "--wall-s",
        type=float,
        default=d.wall_s,
        help=f"wall-time limit per notebook (default {d.wall_s:g} s)",
    )
    p.add_argument(
        "--max-processes",
        type=int,
        default=d.max_processes,
        help=f"process and thread limit per kernel (default {d.max_processes})",
    )
    p.add_argument(
        "--cell-timeout",
        type=int,
        default=None,
        help="nbgrader's per-cell timeout in seconds (default: nbgrader_config.py's Execute.timeout)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start the batch over; by default a re-run into the same --work keeps what was graded",
    )


def _grading_commands(sub) -> None:
    g = sub.add_parser(
        "grade", help="autograde submissions (default: the example submissions) and print scores"
    )
    g.add_argument("assignments", nargs="*")
    g.add_argument(
        "--submissions", help="folder of <student>/<assignment>/<notebook>.ipynb (default: examples)"
    )
    g.add_argument("--work", default=str(WORK_DIR), help="folder for nbgrader's gradebook and outputs")
    g.add_argument(
        "--jobs", type=int, default=1, help="grade in N parallel shards on this machine, then merge them"
    )
    g.add_argument(
        "--shard",
        help="grade only shard i of N (every N-th student by name), e.g. 0/4; `autograder merge` folds them",
    )
    g.add_argument(
        "--examples",
        help="a folder of example sets under autograder/examples (e.g. hostile) instead of the usual ones",
    )
    _sandbox_options(g)
    g.set_defaults(func=_cmd_grade)

    m = sub.add_parser(
        "merge", help="fold shard work folders (autograder grade --shard i/N) into one gradebook"
    )
    m.add_argument("shards", nargs="+", help="the shards' --work folders")
    m.add_argument("--work", default=str(WORK_DIR), help="the merged folder (made anew)")
    m.set_defaults(func=_cmd_merge)

    fb = sub.add_parser(
        "feedback", help="nbgrader generate_feedback for a graded batch, without the hidden tests"
    )
    fb.add_argument("assignments", nargs="*")
    fb.add_argument("--work", default=str(WORK_DIR), help="the folder `autograder grade` graded into")
    fb.set_defaults(func=_cmd_feedback)

    a = sub.add_parser("all", help="release, then autograde the example submissions and check their scores")
    a.add_argument("assignments", nargs="*")
    a.add_argument("--work", default=str(WORK_DIR))
    _sandbox_options(a)
    a.set_defaults(func=_cmd_all, submissions=None, examples=None, jobs=1, shard=None)


def _course_commands(sub) -> None:
    r = sub.add_parser("release", help="build release/ from source/ with nbgrader generate_assignment")
    r.add_argument("assignments", nargs="*", help="names or number prefixes, e.g. 03 (default: all)")
    r.add_argument(
        "--check", action="store_true", help="only check that release/ is up to date and leaks nothing"
    )
    r.set_defaults(func=_cmd_release)

    st = sub.add_parser(
        "site", help="build the course site (Jupyter Book) from release/: student versions only"
    )
    st.add_argument("assignments", nargs="*")
    st.add_argument("--out", default="build/site", help="output folder (pages in <out>/_build/html)")
    st.set_defaults(func=_cmd_site)

    sw = sub.add_parser(
        "student-wheel", help="build dl-course-student: the course package without lib or autograder"
    )
    sw.add_argument("--out", default="build/student")
    sw.set_defaults(func=_cmd_student_wheel)

    n = sub.add_parser("run", help="execute source notebooks with papermill; keep outputs and metrics")
    n.add_argument("assignments", nargs="*")
    n.add_argument("--profile", choices=["smoke", "full"], default="smoke")
    n.add_argument("--out", default="build/runs")
    n.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: none)")
    n.set_defaults(func=_cmd_run)

    o = sub.add_parser("outputs", help="execute source notebooks and store the outputs nbval compares")
    o.add_argument("assignments", nargs="*")
    o.set_defaults(func=_cmd_outputs)

    s = sub.add_parser("make-samples", help="rebuild course/data_samples from a full data mirror")
    s.add_argument("mirror", help="a folder laid out like ../shared/data")
    s.set_defaults(func=_cmd_samples)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="autograder", description=__doc__)
    p.add_argument("--root", help="course directory (default: this repository)")
    sub = p.add_subparsers(dest="command", required=True)
    _course_commands(sub)
    _grading_commands(sub)
    args = p.parse_args(argv)
    if os.environ.get(
        ENV_DATA_DIR
    ):  # meant from this shell; kernels run in the notebook's or submission's folder
        os.environ[ENV_DATA_DIR] = str(Path(os.environ[ENV_DATA_DIR]).expanduser().resolve())
    try:
        return args.func(args)
    except AutograderError as e:
        print(f"autograder: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

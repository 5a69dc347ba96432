"""Benchmark: seconds per notebook when autograding the example submissions with and without the sandbox.

Grades the same examples twice per round, in ordinary kernels (``sandbox=False``) and in the bubblewrap
sandbox (``autograder.sandbox``), alternating the order between rounds, and prints seconds per notebook
of each and their difference (target: the sandbox adds at most 1 s per notebook).

    python benchmarks/sandbox.py                 # 03_self_attention, 2 rounds
    python benchmarks/sandbox.py 01 03 --rounds 1 --json results/sandbox.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from autograder.nbg import REPO
from autograder.pipeline import grade
from autograder.sandbox import SandboxConfig, probe


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*", default=["03"])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args()
    ok, why = probe()
    if not ok:
        raise SystemExit(f"no sandbox here: {why}")
    per_nb = {"plain": [], "sandbox": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = ["plain", "sandbox"] if i % 2 == 0 else ["sandbox", "plain"]
            for mode in order:
                t0 = time.perf_counter()
                results = grade(
                    REPO,
                    Path(tmp) / f"{mode}{i}",
                    args.assignments,
                    sandbox=False if mode == "plain" else SandboxConfig(),
                )
                per_nb[mode].append((time.perf_counter() - t0) / len(results))
                print(
                    f"round {i + 1} {mode}: {len(results)} notebooks, {per_nb[mode][-1]:.2f} s per notebook",
                    flush=True,
                )
    plain, boxed = statistics.median(per_nb["plain"]), statistics.median(per_nb["sandbox"])
    figures = dict(
        assignments=args.assignments,
        rounds=args.rounds,
        notebooks=len(results),
        plain_s_per_notebook=plain,
        sandbox_s_per_notebook=boxed,
        overhead_s_per_notebook=boxed - plain,
    )
    print(json.dumps(figures, indent=2))
    print(
        f"sandbox overhead: {boxed - plain:+.2f} s per notebook ({plain:.2f} -> {boxed:.2f}); target <= 1 s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

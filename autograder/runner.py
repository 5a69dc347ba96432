"""Run source notebooks end to end with papermill under a profile.

For every notebook it keeps the executed copy and a metrics JSON (what the notebook passed to
``course.record``, plus status and wall time) under ``<out>/<profile>/<assignment>/``, and
writes ``summary.json`` beside them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course.settings import CELL_TIMEOUT_S, ENV_METRICS_FILE, ENV_PROFILE

from .nbg import assignments, environment, notebooks


@dataclass
class RunResult:
    assignment: str
    notebook: str
    profile: str
    status: str  # "ok" or "failed"
    wall_s: float
    executed: str
    error: str = ""
    metrics: dict = field(default_factory=dict)


def run_notebook(nb: Path, out_dir: Path, profile: str, timeout_s: int | None = None) -> RunResult:
    import papermill as pm

    out_dir = out_dir.resolve()  # the kernel runs in the notebook's folder: a relative path would land there
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / nb.name
    recorded = out_dir / f"{nb.stem}.recorded.json"
    recorded.unlink(missing_ok=True)
    status, error = "ok", ""
    start = time.perf_counter()
    try:
        with environment(**{ENV_METRICS_FILE: str(recorded), ENV_PROFILE: profile}):
            pm.execute_notebook(
                str(nb),
                str(executed),
                parameters={"profile": profile},
                cwd=str(nb.parent),
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=timeout_s,
            )
    except pm.PapermillExecutionError as e:
        status, error = "failed", f"cell {e.exec_count}: {e.ename}: {e.evalue}"
    wall = time.perf_counter() - start
    metrics = json.loads(recorded.read_text()) if recorded.exists() else {}
    recorded.unlink(missing_ok=True)
    result = RunResult(
        nb.parent.name, nb.name, profile, status, round(wall, 2), str(executed), error, metrics
    )
    (out_dir / f"{nb.stem}.metrics.json").write_text(json.dumps(asdict(result), indent=2))
    return result


def run(
    root: Path, out: Path, profile: str, wanted: list[str] | None = None, timeout_s: int | None = None
) -> list[RunResult]:
    results, names = [], assignments(root, wanted)
    for name in names:
        for nb in notebooks(root, name):
            print(f"running {name}/{nb.name} ({profile}) ...", flush=True)
            r = run_notebook(nb, out / profile / name, profile, timeout_s)
            print(f"  {r.status} in {r.wall_s:.1f} s" + (f": {r.error}" if r.error else ""), flush=True)
            results.append(r)
    (out / profile).mkdir(parents=True, exist_ok=True)
    (out / profile / "summary.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results


def summary(results: list[RunResult]) -> str:
    head = f"{'notebook':<40} {'profile':<8} {'status':<7} {'wall s':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.assignment + '/' + r.notebook:<40} {r.profile:<8} {r.status:<7} {r.wall_s:8.1f}")
    lines.append(f"{'total':<40} {'':<8} {'':<7} {sum(r.wall_s for r in results):8.1f}")
    return "\n".join(lines)


CHECK_TAG = "nbval-check-output"


def store_checked_outputs(nb: Path, timeout_s: int = CELL_TIMEOUT_S) -> int:
    """Execute a source notebook (smoke profile) and keep only the outputs that nbval compares.

    ``pytest --nbval-lax`` compares the cells tagged ``nbval-check-output`` with their stored
    outputs; every other cell is stored without outputs, so that source diffs stay readable.
    The hidden tests judge in process here (``course.grading.ship`` with ``lib`` importable).
    Returns the number of cells whose outputs were stored.
    """
    import nbformat
    from nbclient import NotebookClient

    original = nbformat.read(nb, 4)
    executed = nbformat.read(nb, 4)
    with environment(**{ENV_PROFILE: "smoke"}):
        NotebookClient(
            executed,
            timeout=timeout_s,
            kernel_name="python3",
            resources={"metadata": {"path": str(nb.parent)}},
        ).execute()
    stored = 0
    for cell, done in zip(original.cells, executed.cells):
        if cell.cell_type != "code":
            continue
        if CHECK_TAG in cell.metadata.get("tags", []):
            # nbval treats a cell without an execution count as never run
            cell.outputs, cell.execution_count = done.outputs, done.execution_count
            stored += 1
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(original, nb)
    return stored

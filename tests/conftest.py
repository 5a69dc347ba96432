"""Shared test setup: smoke profile, no downloads, and where the real data mirror is."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Every notebook kernel started by the tests (nbval, nbgrader, papermill) inherits these.
os.environ["COURSE_PROFILE"] = "smoke"
os.environ["COURSE_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")


def _mirror() -> Path | None:
    for candidate in (os.environ.get("COURSE_DATA_DIR"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist" / "train.npz").is_file():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline data mirror (COURSE_DATA_DIR or ../shared/data), laid out as its README says."""
    path = _mirror()
    if path is None:
        pytest.skip("no data mirror: set COURSE_DATA_DIR to a folder laid out like ../shared/data")
    return path


@pytest.fixture(scope="session")
def examples_batch(tmp_path_factory):
    """Every example submission of every notebook, graded once for the session as `autograder grade --jobs 2`
    does it (two shards in worker processes, merged into one gradebook): (work folder, rows, examples).
    test_grading.py checks it; test_shards.py compares a serial run and separate shards with it."""
    from autograder.cli import main
    from autograder.examples import load_examples
    from autograder.nbg import assignments
    from autograder.report import load

    work = tmp_path_factory.mktemp("grading") / "work"
    rc = main(["grade", "--jobs", "2", "--work", str(work)])
    examples = [e for name in assignments(REPO) for e in load_examples(name)]
    return work, load(work / "results.json"), examples, rc


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def pytest_collection_modifyitems(config, items):
    """nbval's cells of the source notebooks run whole notebooks: they are the slowest items, mark them slow
    (`-m 'not slow'` then leaves the quick unit tests)."""
    for item in items:
        if item.nodeid.startswith("source/") or type(item).__name__ == "IPyNbCell":
            item.add_marker(pytest.mark.slow)

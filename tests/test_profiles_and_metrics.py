"""course.profiles resolution order, course.setup, course.record."""

import json

import pytest
import torch

import course
from course import metrics
from course.profiles import Profile, resolve_profile


def test_resolution_order(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert resolve_profile("smoke").name == "smoke"  # the parameters cell wins
    assert resolve_profile().name == "full"  # then the environment variable
    monkeypatch.delenv("COURSE_PROFILE")
    p = resolve_profile()
    assert p.name == "smoke" and "nbgrader" in p.reason  # nbgrader runs are always small
    monkeypatch.delenv("NBGRADER_EXECUTION")
    assert resolve_profile().name == (
        "full" if torch.cuda.is_available() or torch.backends.mps.is_available() else "smoke"
    )


def test_bad_profiles_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="'huge' is not a profile"):
        resolve_profile("huge")
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError, match="COURSE_PROFILE='fast' is not a profile"):
        resolve_profile()


def test_pick():
    assert Profile("smoke", "").pick(smoke=1, full=50) == 1
    assert Profile("full", "").pick(smoke=1, full=50) == 50


def test_setup_seeds_and_prints(capsys):
    s = course.setup("smoke", seed=3)
    a = torch.rand(3)
    course.setup("smoke", seed=3)
    assert torch.equal(a, torch.rand(3))
    assert s.device.type in ("cpu", "cuda", "mps")
    assert "profile=smoke" in capsys.readouterr().out


def test_record_writes_json(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    monkeypatch.setenv("COURSE_METRICS_FILE", str(target))
    course.record(acc=torch.tensor(0.5), curve=[1, 2], colour=torch.tensor([1.0, 2.0]))
    course.record(nan=float("nan"))
    got = json.loads(target.read_text())
    assert (
        got["acc"] == 0.5 and got["curve"] == [1, 2] and got["colour"] == [1.0, 2.0] and got["nan"] == "nan"
    )
    with pytest.raises(TypeError, match="record\\(\\) takes"):
        course.record(bad=object())
    assert "bad" not in metrics.recorded()


def test_grading_sizes_apply_only_under_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    p = resolve_profile()
    assert not p.grading and p.pick(smoke=4, full=50, grading=1) == 4
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    p = resolve_profile()
    assert p.grading and "grading" in p.reason and p.pick(smoke=4, full=50, grading=1) == 1
    assert p.pick(smoke=4, full=50) == 4  # no grading size given: the smoke size
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert resolve_profile().pick(smoke=4, full=50, grading=1) == 50  # an explicit full run stays full

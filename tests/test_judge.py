"""The judge: verdicts decided outside the kernel from shipped plain data (autograder/judge.py).

Each case runs one probe twice, as grading does: on a "student" namespace (writing real files with
``course.grading.write``) and on a reference namespace, then ``decide``s. The references here are
formulas written in the test, not lib.
"""

import json
import math

import numpy as np
import pytest
import torch

from autograder import judge
from course.grading import MANIFEST, Probe, Refused, plain, write


def _probe(p):
    f = p.get("f")
    x = p.randn(3, 4)
    p.call("f(x)", f, x, msg="f should double its input")
    p.mistake("f(x)", "you tripled it", lambda t: 3 * t, x)


def _run(student_fn, tmp_path, probe=_probe, seed=7, points=2.0, reference_fn=lambda t: 2 * t):
    mine = Probe("test_f", seed, {"f": student_fn} if student_fn is not None else {})
    try:
        probe(mine)
    except Exception as e:
        mine.values["__stopped__"] = f"{type(e).__name__}: {e}"
    write(tmp_path / "test_f", mine)
    ref = Probe("test_f", seed, {"f": reference_fn}, reference=True)
    probe(ref)
    return judge.decide("test_f", points, ref, judge.read_shipped(tmp_path / "test_f"))


@pytest.mark.parametrize(
    "student, outcome, points, words",
    [
        (lambda t: 2 * t, "pass", 2.0, ""),
        (lambda t: (2 * t).float(), "pass", 2.0, ""),  # float32 where the reference is float64
        (lambda t: t + t + 1e-9, "pass", 2.0, ""),  # within tolerance
        (lambda t: 3 * t, "fail", 0.0, "you tripled it"),  # a known mistake is named
        (lambda t: 2 * t + 1, "fail", 0.0, "f should double its input"),
        (lambda t: (2 * t)[:2], "fail", 0.0, "has shape (2, 4), expected (3, 4)"),
        (lambda t: (2 * t).tolist(), "fail", 0.0, "is not a tensor"),  # a nested list
        (lambda t: 1 / 0, "fail", 0.0, "raised ZeroDivisionError"),
        (None, "fail", 0.0, "NameError: f is not defined"),
        (lambda t: torch.full_like(t, float("nan")), "fail", 0.0, "NaN"),
    ],
)
def test_verdicts(student, outcome, points, words, tmp_path):
    v = _run(student, tmp_path)
    assert (v.outcome, v.points) == (outcome, points), v
    assert words in v.message


def test_the_student_message_never_shows_an_expected_value_the_staff_message_shows_the_error(tmp_path):
    v = _run(lambda t: 2 * t + 0.5, tmp_path)
    ref = Probe("test_f", 7, {"f": lambda t: 2 * t}, reference=True)
    _probe(ref)
    expected = ref.arrays[0]
    assert not any(f"{x:.3f}" in v.message for x in expected.ravel())
    assert "largest absolute error 0.5" in v.detail


def test_inputs_depend_on_the_seed_so_a_table_of_answers_from_another_submission_fails(tmp_path):
    answers = {}

    def lookup_then_replay(t):  # records answers at seed 1, replays them at seed 2
        return answers.setdefault("a", 2 * t)

    assert _run(lookup_then_replay, tmp_path / "one", seed=1).outcome == "pass"
    assert _run(lookup_then_replay, tmp_path / "two", seed=2).outcome == "fail"


class Sneaky(torch.Tensor):
    """A tensor subclass that claims to equal anything."""

    def __eq__(self, other):
        return True


@pytest.mark.parametrize(
    "value, why",
    [
        (torch.zeros(2).as_subclass(Sneaky), "cannot be graded"),
        (torch.zeros(2, dtype=torch.complex64), "dtype complex64"),
        (torch.zeros(2).to_sparse(), "sparse"),
        (object(), "cannot be graded"),
        ({1: 2}, "cannot be graded"),  # dict keys must be strings
        (np.zeros(2, dtype=object), "dtype object"),
    ],
)
def test_values_that_cannot_cross_as_plain_data_are_refused(value, why):
    with pytest.raises(Refused, match=why):
        plain(value, [])


def test_a_refused_value_is_the_students_fail_not_a_crash(tmp_path):
    v = _run(lambda t: (2 * t).as_subclass(Sneaky), tmp_path)
    assert v.outcome == "fail" and "cannot be graded" in v.message


# ------------------------------------------------------------------------------------------ junk files
def _shipped_ok(tmp_path):
    mine = Probe("test_f", 7, {"f": lambda t: 2 * t})
    _probe(mine)
    write(tmp_path / "test_f", mine)
    return tmp_path / "test_f"


def _pickle_npy(path):
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


JUNK = {
    "manifest is not JSON": lambda d: (d / MANIFEST).write_text("{not json"),
    "manifest without values": lambda d: (d / MANIFEST).write_text(json.dumps({"arrays": 0})),
    "array count out of range": lambda d: (d / MANIFEST).write_text(
        json.dumps({"values": {}, "arrays": 10**9})
    ),
    "an array missing": lambda d: (d / "0.npy").unlink(),
    "a pickled object array": lambda d: _pickle_npy(d / "0.npy"),
    "an array that is text": lambda d: (d / "0.npy").write_text("hello"),
    "an array that is a link": lambda d: ((d / "0.npy").unlink(), (d / "0.npy").symlink_to("/etc/passwd")),
    "a huge array header": lambda d: np.lib.format.write_array_header_1_0(
        open(d / "0.npy", "wb"), {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    ),
    "a reference to a missing array": lambda d: (d / MANIFEST).write_text(
        json.dumps({"values": {"f(x)": {"array": 5}}, "arrays": 1})
    ),
    "values nested 100,000 deep": lambda d: (d / MANIFEST).write_text(
        '{"values": {"f(x)": ' + '{"list": [' * 100_000 + "]}" * 100_000 + '}, "arrays": 1}'
    ),
    "values nested 40 deep": lambda d: (d / MANIFEST).write_text(
        json.dumps({"values": {"f(x)": json.loads('{"list": [' * 40 + "]}" * 40)}, "arrays": 1})
    ),
    "a value of an unknown kind": lambda d: (d / MANIFEST).write_text(
        json.dumps({"values": {"f(x)": {"pickle": "gASV"}}, "arrays": 1})
    ),
}


@pytest.mark.parametrize("name", sorted(JUNK))
def test_junk_shipped_files_fail_the_test_and_never_crash_the_judge(name, tmp_path):
    folder = _shipped_ok(tmp_path)
    JUNK[name](folder)
    ref = Probe("test_f", 7, {"f": lambda t: 2 * t}, reference=True)
    _probe(ref)
    try:
        shipped = judge.read_shipped(folder)
    except judge.Unreadable as e:
        shipped = e
    v = judge.decide("test_f", 2.0, ref, shipped)
    assert v.outcome == "fail" and v.points == 0.0, (name, v)


def test_a_folder_that_is_a_link_is_unreadable(tmp_path):
    real = _shipped_ok(tmp_path)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(judge.Unreadable, match="not a plain folder"):
        judge.read_shipped(tmp_path / "link")


def test_nothing_shipped_is_no_output_and_a_broken_reference_is_a_judge_error(tmp_path):
    ref = Probe("test_f", 7, {"f": lambda t: 2 * t}, reference=True)
    _probe(ref)
    assert judge.decide("test_f", 2.0, ref, None).outcome == "no-output"
    v = judge.verdict("no_such_assignment", "test_f", 2.0, 7, tmp_path / "nothing")
    assert v.outcome == "judge-error" and "staff" in v.message


# ------------------------------------------------------------------------------------- partial credit
def _two_parts(p):
    f = p.get("f")
    p.parts("doubles")
    p.call("f(x)", f, p.randn(4))
    p.parts("keeps shape")
    p.call("f(matrix)", f, p.randn(2, 3))


@pytest.mark.parametrize(
    "student, points",
    [(lambda t: 2 * t, 4.0), (lambda t: 2 * t if t.dim() == 1 else t, 3.0), (lambda t: t, 0.0)],
)
def test_parts_share_the_points_by_weight(student, points, tmp_path):
    mine = Probe("test_f", 3, {"f": student})
    _two_parts(mine)
    write(tmp_path / "s", mine)
    ref = Probe("test_f", 3, {"f": lambda t: 2 * t}, reference=True)
    _two_parts(ref)
    v = judge.decide("test_f", 4.0, ref, judge.read_shipped(tmp_path / "s"), {"doubles": 3, "keeps shape": 1})
    assert v.points == points
    assert v.outcome == {4.0: "pass", 3.0: "partial", 0.0: "fail"}[points]


# --------------------------------------------------------------------------------- float comparisons
@pytest.mark.parametrize(
    "expected, got, ok",
    [
        ([1.0, 2.0], [1.0 + 5e-7, 2.0], True),  # absolute tolerance
        ([1e6, 2e6], [1e6 * (1 + 5e-6), 2e6], True),  # relative tolerance (atol alone would refuse)
        ([1.0, math.inf], [1.0, math.inf], True),
        ([1.0, math.inf], [1.0, 1e308], False),
        ([1.0, math.nan], [1.0, math.nan], True),
        ([1.0, math.nan], [1.0, 0.0], False),
        ([1.0, 2.0], [1.0, 2.001], False),
    ],
)
def test_floats_pass_within_the_absolute_or_relative_tolerance_nan_and_inf_in_place(expected, got, ok):
    check = dict(atol=1e-6, rtol=1e-5, exact=False, dtype=False, msg="")
    diff = judge._compare(np.array(expected), np.array(got), check, "x")
    assert (diff is None) == ok, diff


def test_a_drawn_case_equal_to_a_fixed_one_is_judged_under_its_own_key(tmp_path):
    def twice(p):
        f = p.get("f")
        for x in (torch.ones(2), torch.ones(2)):  # the same case twice, as a random draw can repeat one
            p.call("f(ones)", f, x)
            p.mistake("f(ones)", "you tripled it", lambda t: 3 * t, x)

    v = _run(lambda t: 2 * t, tmp_path / "a", probe=twice)
    assert v.outcome == "pass"
    v = _run(lambda t: 3 * t, tmp_path / "b", probe=twice)
    assert v.outcome == "fail" and v.message == "you tripled it"

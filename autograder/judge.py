"""The judge: decides each hidden test outside the student's process, from plain data.

Inside the sandbox a hidden test only calls the notebook's functions on inputs drawn from a seed and
ships what they return (``course/grading.py``). Here, in the grader's process, the same probe
(``autograder/probes``) runs on ``lib`` with the same seed, and ``decide`` compares: a pure function
of (what lib gave, what was shipped, how each output is checked, known mistakes) with a fixed order
of outcomes, as DOMjudge's ``determineVerdict``:

1. ``judge-error``: the reference run or the judge itself failed. Never the student's fault: the
   cell is left for the staff to grade by hand (``FlagJudgeErrors``), not scored 0.
2. ``no-output``: nothing was shipped (the cell stopped before its test ran).
3. per check, in the probe's order: an exception the student's code raised, a value that cannot
   be graded (a subclass, a lazy object), a different structure or shape, different values (a known
   mistake's message when the output matches one), else it passes.

Floats pass within the absolute OR the relative tolerance; NaN and infinities must sit where the
reference has them. Any float dtype is compared as float64 unless the probe asks for the dtype.
Messages have two audiences: ``message`` for the student (the concept, never an expected value) and
``detail`` for the staff (the largest difference, shapes, the key).

Shipped files are read as data only: a regular file in the folder, size-checked, ``.npy`` headers
checked against an allow-list of dtypes before loading, ``allow_pickle=False``; JSON with a size cap.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from course.grading import DTYPES, MANIFEST, MAX_ELEMENTS, Probe, _seed_for

MAX_FILE_BYTES = 8 * MAX_ELEMENTS + 4096  # an .npy of the largest array allowed, float64
MAX_MANIFEST_BYTES = 2_000_000
MAX_TOTAL_BYTES = 128 * 2**20  # all the arrays of one test together
MAX_DEPTH = 16  # nesting of shipped values (tuples of lists of ...)
OUTCOMES = ("pass", "partial", "fail", "no-output", "judge-error")
STAFF_WILL_GRADE = "the grader could not judge this test: the course staff will grade it by hand"


@dataclass
class Verdict:
    grade_id: str
    outcome: str  # one of OUTCOMES
    points: float
    max_points: float
    message: str = ""  # the student's: the concept, no expected values
    detail: str = ""  # the staff's: keys, differences, tracebacks
    failed: list[str] = field(default_factory=list)  # keys of the checks that failed

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def to_dict(self) -> dict:
        return asdict(self)


class Unreadable(Exception):
    """Shipped files that are not plain data of the allowed kinds: the student's outputs, so a fail."""


# ---------------------------------------------------------------------------------------- reading
def read_shipped(folder: Path) -> tuple[dict, list[np.ndarray]]:
    """(values, arrays) from ``folder`` (manifest.json and 0.npy, 1.npy ...), or ``Unreadable``."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise Unreadable("the outputs folder is not a plain folder")
    manifest = _regular(folder / MANIFEST, MAX_MANIFEST_BYTES)
    try:
        data = json.loads(manifest.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise Unreadable(f"manifest.json is not JSON ({type(e).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("values"), dict):
        raise Unreadable("manifest.json has no table of values")
    n = data.get("arrays")
    if type(n) is not int or not 0 <= n <= 10_000:
        raise Unreadable("manifest.json does not say how many arrays there are")
    files = [_regular(folder / f"{i}.npy", MAX_FILE_BYTES) for i in range(n)]
    if sum(f.stat().st_size for f in files) > MAX_TOTAL_BYTES:
        raise Unreadable(f"the arrays together are larger than {MAX_TOTAL_BYTES:,} bytes")
    return data["values"], [_read_array(f) for f in files]


def _regular(path: Path, limit: int) -> Path:
    if path.is_symlink() or not path.is_file():
        raise Unreadable(f"{path.name} is missing or not a regular file")
    if path.stat().st_size > limit:
        raise Unreadable(f"{path.name} is larger than {limit:,} bytes")
    return path


def _read_array(path: Path) -> np.ndarray:
    """An .npy file whose header names an allowed dtype and a bounded shape; nothing else is loaded."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            reader = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }[version]
            shape, _, dtype = reader(f)
        except Exception as e:
            raise Unreadable(f"{path.name} is not an .npy array ({type(e).__name__})") from None
        if dtype.hasobject or dtype.name not in DTYPES or not all(type(s) is int for s in shape):
            raise Unreadable(f"{path.name} holds {dtype}, not a number or boolean array")
        if math.prod(shape) > MAX_ELEMENTS:
            raise Unreadable(f"{path.name} has more than {MAX_ELEMENTS:,} elements")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        raise Unreadable(f"{path.name} cannot be read ({type(e).__name__})") from None


# --------------------------------------------------------------------------------------- comparing
def _resolve(value, arrays, depth: int = 0):
    """Plain data back to Python: arrays in place, tuples and lists as lists, dicts as dicts."""
    if depth > MAX_DEPTH:
        raise Unreadable(f"values nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        if set(value) == {"array"} and type(value["array"]) is int:
            if not 0 <= value["array"] < len(arrays):
                raise Unreadable("an array reference points nowhere")
            return arrays[value["array"]]
        if set(value) in ({"tuple"}, {"list"}) and isinstance(next(iter(value.values())), list):
            return [_resolve(v, arrays, depth + 1) for v in next(iter(value.values()))]
        if set(value) == {"dict"} and isinstance(value["dict"], dict):
            return {str(k): _resolve(v, arrays, depth + 1) for k, v in value["dict"].items()}
        if set(value) == {"dtype"}:
            return ("dtype", str(value["dtype"]))
        raise Unreadable("a value of an unknown kind")
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise Unreadable("a value of an unknown kind")


def _compare(expected, got, check: dict, where: str = "") -> tuple[str, str] | None:
    """None if ``got`` passes, else (student's words, staff's words) for the first difference."""
    if isinstance(expected, list):
        if not isinstance(got, list):
            return "returned a single value where several are expected", f"{where}: {type(got).__name__}"
        if len(got) != len(expected):
            return f"returned {len(got)} values where {len(expected)} are expected", where
        for i, (e, g) in enumerate(zip(expected, got)):
            diff = _compare(e, g, check, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return (
                "returned different entries",
                f"{where}: keys {sorted(got) if isinstance(got, dict) else got}",
            )
        for k in expected:
            diff = _compare(expected[k], got[k], check, f"{where}[{k!r}]")
            if diff:
                return diff
        return None
    if isinstance(expected, np.ndarray):
        return _compare_array(expected, got, check, where)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool) and not check["exact"]:
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            return _compare_array(np.asarray(expected, float), np.asarray(got, float), check, where)
        if isinstance(got, np.ndarray) and got.shape == ():
            return _compare_array(np.asarray(expected, float), got, check, where)
        return "is not a number", f"{where}: {type(got).__name__}"
    if got == expected and type(got) is type(expected):
        return None
    if isinstance(expected, int) and isinstance(got, int) and not isinstance(got, bool) and got == expected:
        return None
    if isinstance(got, np.ndarray) and got.shape == () and got.item() == expected:
        return None
    return "has a different value", f"{where}: {got!r:.80}"


def _compare_array(expected: np.ndarray, got, check: dict, where: str) -> tuple[str, str] | None:
    if isinstance(got, (bool, int, float)) and expected.shape == ():
        got = np.asarray(got)
    if not isinstance(got, np.ndarray):
        return "is not a tensor", f"{where}: {type(got).__name__}"
    if got.shape != expected.shape:
        return (f"has shape {tuple(got.shape)}, expected {tuple(expected.shape)}", where)
    if check["dtype"] and got.dtype != expected.dtype:
        return f"has dtype {got.dtype}, expected {expected.dtype}", where
    if check["exact"] or expected.dtype == bool:
        if got.dtype == bool and expected.dtype != bool or got.dtype != bool and expected.dtype == bool:
            return f"has dtype {got.dtype}, expected {expected.dtype}", where
        if np.array_equal(got, expected):
            return None
        return "has different values", f"{where}: {int((got != expected).sum())} entries differ"
    e, g = expected.astype(np.float64), got.astype(np.float64)
    nan_e, nan_g = np.isnan(e), np.isnan(g)
    if (nan_e != nan_g).any():
        return "has NaN where the reference has numbers (or the other way round)", where
    inf = np.isinf(e) | np.isinf(g)
    if (e[inf] != g[inf]).any():
        return "has infinities where the reference has numbers (or the other way round)", where
    ok = ~(nan_e | inf)
    err = np.abs(g[ok] - e[ok])
    if (err <= np.maximum(check["atol"], check["rtol"] * np.abs(e[ok]))).all():
        return None
    worst = float(err.max())
    rel = float((err / np.maximum(np.abs(e[ok]), 1e-300)).max())
    tolerance = f"atol {check['atol']}, rtol {check['rtol']}"
    detail = f"{where}: largest absolute error {worst:.3g}, relative {rel:.3g} ({tolerance})"
    return "has different values", detail


# ----------------------------------------------------------------------------------------- deciding
def decide(
    grade_id: str, max_points: float, reference: Probe, shipped, weights: dict | None = None
) -> Verdict:
    """The verdict on one test cell. ``shipped``: (values, arrays), None (nothing shipped) or Unreadable."""
    if shipped is None:
        return Verdict(
            grade_id, "no-output", 0.0, max_points, "the test did not run: the cell stopped before it"
        )
    if isinstance(shipped, Unreadable):
        why = f"the outputs could not be read: {shipped}"
        return Verdict(grade_id, "fail", 0.0, max_points, why, why, ["*"])
    values, arrays = shipped
    if not reference.checks:
        raise JudgeError(f"the probe {grade_id} records nothing to check")
    parts = list(dict.fromkeys(c["part"] for c in reference.checks.values()))
    weights = {p: float((weights or {}).get(p, 1.0)) for p in parts}
    failed_parts: dict[str, tuple[str, str]] = {}
    failed: list[str] = []
    for key, check in reference.checks.items():
        if check["part"] in failed_parts:
            continue
        words = _check_one(key, check, reference, values, arrays)
        if words:
            failed_parts[check["part"]] = words
            failed.append(key)
    total = sum(weights.values()) or 1.0
    share = sum(w for p, w in weights.items() if p not in failed_parts) / total
    points = round(max_points * share, 2)
    outcome = "pass" if not failed_parts else ("partial" if points > 0 else "fail")
    message = "; ".join(w[0] for w in failed_parts.values())
    detail = "; ".join(w[1] for w in failed_parts.values())
    return Verdict(grade_id, outcome, points, max_points, message, detail, failed)


def _check_one(key: str, check: dict, reference: Probe, values: dict, arrays) -> tuple[str, str] | None:
    label = check["msg"] or f"{key}: differs from the reference"
    if key not in values:
        stopped = str(values.get("__stopped__", ""))[:300]
        why = f"the test stopped before {key} ({stopped})" if stopped else f"no output for {key}"
        return why, why
    got_raw = values[key]
    if isinstance(got_raw, dict) and set(got_raw) == {"error"}:
        return f"{key}: your code raised {str(got_raw['error'])[:300]}", f"{key}: raised"
    if isinstance(got_raw, dict) and set(got_raw) == {"refused"}:
        return f"{key}: {str(got_raw['refused'])[:300]}", f"{key}: refused"
    expected_raw = reference.values[key]
    if isinstance(expected_raw, dict) and set(expected_raw) <= {"error", "refused"}:
        raise JudgeError(f"the reference run failed on {key}: {expected_raw}")
    try:
        got = _resolve(got_raw, arrays)
    except Unreadable as e:
        return f"{key}: {e}", f"{key}: {e}"
    expected = _resolve(expected_raw, reference.arrays)
    diff = _compare(expected, got, check, key)
    if diff is None:
        return None
    for message, value, m_arrays in reference.mistakes.get(key, []):
        if _compare(_resolve(value, m_arrays), got, check, key) is None:
            return message, f"{diff[1]} (matches the known mistake)"
    return f"{label} ({diff[0]})" if check["msg"] else f"{key} {diff[0]}", diff[1]


class JudgeError(Exception):
    """The grader's side failed: never the student's fault."""


# ------------------------------------------------------------------------------------ the reference run
def probe_module(assignment: str):
    """autograder/probes/n<assignment>.py, or None when the assignment has no probes."""
    name = f"autograder.probes.n{assignment}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


def probe_file(assignment: str) -> Path | None:
    module = probe_module(assignment)
    return Path(module.__file__) if module else None


def reference_run(assignment: str, grade_id: str, seed: int) -> Probe:
    """The probe on lib with the submission's seed: the expected values, checks and known mistakes."""
    module = probe_module(assignment)
    if module is None or not hasattr(module, grade_id):
        raise JudgeError(f"autograder/probes has no probe {grade_id} for {assignment}")
    probe = Probe(grade_id, _seed_for(seed, grade_id), dict(module.reference()), reference=True)
    getattr(module, grade_id)(probe)
    return probe


def verdict(assignment: str, grade_id: str, max_points: float, seed: int, shipped_dir: Path) -> Verdict:
    """Judge one test cell of one submission; any failure on the grader's side is a judge error."""
    try:
        reference = reference_run(assignment, grade_id, seed)
        shipped = None
        if shipped_dir.exists() or shipped_dir.is_symlink():
            try:
                shipped = read_shipped(shipped_dir)
            except Unreadable as e:
                shipped = e
        weights = getattr(probe_module(assignment), "PARTS", {}).get(grade_id)
        return decide(grade_id, max_points, reference, shipped, weights)
    except Exception as e:
        return Verdict(
            grade_id,
            "judge-error",
            0.0,
            max_points,
            STAFF_WILL_GRADE,
            f"{type(e).__name__}: {e}",
        )


def judge_in_process(grade_id: str, namespace: dict, cwd: Path, seed: int = 0) -> Verdict:
    """Outside the grader (nbval, papermill, an instructor's JupyterLab): probe, reference, verdict here."""
    import tempfile

    from course.grading import write

    assignment = Path(cwd).name
    module = probe_module(assignment)
    if module is None or not hasattr(module, grade_id):
        return Verdict(grade_id, "judge-error", 0.0, 1.0, f"no probe {grade_id} for {assignment}")
    probe = Probe(grade_id, _seed_for(seed, grade_id), namespace)
    _run_probe(getattr(module, grade_id), probe)
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp) / grade_id, probe)
        return verdict(assignment, grade_id, 1.0, seed, Path(tmp) / grade_id)


def _run_probe(fn, probe: Probe) -> None:
    try:
        fn(probe)
    except Exception as e:
        probe.values["__stopped__"] = f"{type(e).__name__}: {str(e)[:300]}"

"""The inside half of the judge: hidden tests call your functions and send the results out as plain data.

A hidden test in a graded cell is one line::

    ship("test_causal_mask", globals())

``ship`` runs that test's *probe* (``autograder/probes/n<assignment>.py``, given to the kernel only
while it is graded): it draws inputs from a seed the grader chose for this submission, calls the
notebook's functions on them and writes what they return to ``.judge/out/<grade_id>/`` beside the
notebook, as ``.npy`` arrays (no pickle) and JSON. Nothing here compares anything: the grader, outside
the kernel, runs the same probe with ``lib`` on the same inputs and decides (``autograder/judge.py``).
No expected value exists in the kernel, so there is nothing in it to read or to fake.

Outside the grader (an instructor's source notebook under nbval or papermill, with ``autograder`` and
``lib`` importable) ``ship`` judges at once, in process, and raises ``AssertionError`` with the judge's
message when the test fails. This module holds no test and no solution.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import torch

JUDGE_DIR = ".judge"  # beside the notebook: seed.json and probe.py in, out/<grade_id>/ out
SEED_FILE, PROBE_FILE, OUT_DIR, MANIFEST = "seed.json", "probe.py", "out", "manifest.json"
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)  # exactly these: a subclass is refused, not trusted
MAX_ELEMENTS = 4_000_000  # per array that crosses the boundary
MAX_JSON_CHARS = 200_000  # per plain value
PLAIN = (bool, int, float, str, type(None))


class Refused(Exception):
    """A value that cannot cross the boundary as plain data (a subclass, a lazy object, too large)."""


def plain(value, arrays: list | None = None, depth: int = 0):
    """``value`` as JSON-able data; a tensor or array becomes ``{"array": i}``, the array ``arrays[i]``."""
    if depth > 8:
        raise Refused("nested more than 8 levels deep")
    kind = type(value)
    if kind in PLAIN:
        return value
    if kind in TENSOR_TYPES or kind is np.ndarray:
        array = _array(value)
        if arrays is None:
            return {"array": array}
        arrays.append(array)
        return {"array": len(arrays) - 1}
    if kind is torch.Size:
        return {"tuple": [int(s) for s in value]}
    if kind is torch.dtype:
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, np.generic) and kind.__module__ == "numpy":
        return plain(value.item(), arrays, depth)
    if kind in (tuple, list):
        items = [plain(v, arrays, depth + 1) for v in value]
        return {"tuple": items} if kind is tuple else {"list": items}
    if kind is dict and all(type(k) is str for k in value):
        return {"dict": {k: plain(v, arrays, depth + 1) for k, v in value.items()}}
    raise Refused(
        f"a {kind.__module__}.{kind.__qualname__} cannot be graded: return tensors, numbers or tuples"
    )


def _array(value) -> np.ndarray:
    if type(value) is np.ndarray:
        if value.dtype.name not in DTYPES:
            raise Refused(f"an array of dtype {value.dtype.name} cannot be graded")
        out = np.ascontiguousarray(value).copy()
    else:
        if value.layout != torch.strided or value.is_meta or value.is_nested:
            raise Refused(f"a {value.layout} tensor cannot be graded: return an ordinary (dense) tensor")
        name = str(value.dtype).removeprefix("torch.")
        if name == "bfloat16":
            value, name = value.float(), "float32"
        if name not in DTYPES:
            raise Refused(f"a tensor of dtype {name} cannot be graded")
        out = torch.Tensor.numpy(torch.Tensor.contiguous(torch.Tensor.cpu(torch.Tensor.detach(value)))).copy()
    if out.size > MAX_ELEMENTS:
        raise Refused(f"an array of {out.size:,} elements is too large to grade (at most {MAX_ELEMENTS:,})")
    return out


class Probe:
    """One hidden test's inputs and calls, run twice on the same seed: on the notebook (``ship``) and on
    ``lib`` (``reference``, outside the kernel only), so one piece of code defines the inputs of both.

    A probe module's function ``test_<name>(p)`` draws inputs with ``p.randn`` and friends, gets the
    functions it tests with ``p.get(name)`` and records what they give with ``p.call`` or ``p.put``,
    each under a key and with how it is checked (``atol``, ``rtol``, ``exact``) and the message a
    student reads when it fails. ``p.mistake`` (reference run only) records what a typical mistake
    gives, so the judge can name it.
    """

    def __init__(self, grade_id: str, seed: int, namespace: dict, reference: bool = False):
        self.grade_id, self.namespace, self.reference = grade_id, namespace, reference
        self.gen = torch.Generator().manual_seed(int(seed) % 2**63)
        self.seed = int(seed)
        self.values: dict[str, object] = {}  # key -> plain value, {"error": ...} or {"refused": ...}
        self.arrays: list[np.ndarray] = []
        self.checks: dict[str, dict] = {}  # key -> how it is judged (kept from the reference run only)
        self.mistakes: dict[str, list] = {}  # key -> [(message, plain value)], reference run only
        self.latest: dict[str, str] = {}  # key asked for -> the key it was recorded under last
        self.part = "all"

    # ----------------------------------------------------------------------------------------- inputs
    def randn(self, *shape, dtype=torch.float64):
        return torch.randn(*shape, generator=self.gen, dtype=dtype)

    def rand(self, *shape, dtype=torch.float64):
        return torch.rand(*shape, generator=self.gen, dtype=dtype)

    def randint(self, low: int, high: int, shape=(), dtype=torch.int64):
        return torch.randint(low, high, tuple(shape), generator=self.gen, dtype=dtype)

    def choice(self, options):
        return options[int(torch.randint(len(options), (), generator=self.gen))]

    def get(self, name: str):
        """What the notebook (or lib) binds to ``name``; a missing name is recorded when it is called."""
        if name not in self.namespace:
            return _Missing(name)
        return self.namespace[name]

    @contextlib.contextmanager
    def standin(self, name: str, fn):
        """Bind ``name`` to ``fn`` while the block runs: a later function is tested on a correct earlier one,
        so one bug costs points once. In the reference run lib's own functions are used as they are."""
        if self.reference:
            yield
            return
        had, old = name in self.namespace, self.namespace.get(name)
        self.namespace[name] = fn
        try:
            yield
        finally:
            if had:
                self.namespace[name] = old
            else:
                self.namespace.pop(name, None)

    # ---------------------------------------------------------------------------------------- records
    def call(self, key: str, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` on copies of the inputs, recorded under ``key``; returns the result, or
        None if it raised (the exception is recorded). Check options as for ``put``."""
        opts = {k: kwargs.pop(k) for k in ("atol", "rtol", "exact", "msg", "dtype") if k in kwargs}
        args, kwargs = _copied(args), _copied(kwargs)
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # the student's exception is an outcome, judged outside
            self._record(key, {"error": f"{type(e).__name__}: {str(e)[:300]}"}, opts)
            return None
        self.put(key, result, **opts)
        return result

    def put(self, key: str, value, atol=1e-6, rtol=1e-5, exact=False, dtype=False, msg="") -> None:
        """Record an output or an observation. ``exact``: equal values (integers, booleans, strings);
        ``dtype``: the dtype must match too (otherwise any float dtype is compared as float64)."""
        opts = dict(atol=atol, rtol=rtol, exact=exact, dtype=dtype, msg=msg)
        if type(value) is _Missing:
            self._record(
                key, {"error": f"NameError: {value.name} is not defined: run the cell that defines it"}, opts
            )
            return
        try:
            data = plain(value, self.arrays)
        except Refused as e:
            data = {"refused": str(e)}
        except Exception as e:  # a lazy object that fails when touched
            data = {"refused": f"touching the value raised {type(e).__name__}: {str(e)[:200]}"}
        self._record(key, data, opts)

    def _record(self, key: str, data, opts: dict) -> None:
        asked, n = key, 1
        while key in self.values:  # a drawn case equal to a fixed one: both runs name it alike
            n += 1
            key = f"{asked} ({n})"
        self.latest[asked] = key
        self.values[key] = data
        defaults = dict(atol=1e-6, rtol=1e-5, exact=False, dtype=False, msg="")
        self.checks[key] = {**defaults, **opts, "part": self.part}

    def mistake(self, key: str, message: str, fn, *args, **kwargs) -> None:
        """Reference run only: what a typical mistake ``fn`` gives on the same inputs, with its message."""
        if not self.reference:
            return
        with contextlib.suppress(Exception):
            arrays: list = []
            self.mistakes.setdefault(key, []).append(
                (message, plain(fn(*_copied(args), **_copied(kwargs)), arrays), arrays)
            )

    def parts(self, name: str) -> None:
        """Checks recorded from here on belong to part ``name`` (the probe module's PARTS weighs them)."""
        self.part = name


def mistake(fn):
    """Marks a probe module's typical-mistake function: evaluated outside only, never given to a kernel
    (a near-solution, such as attention without the scaling, must not be there to borrow)."""
    return fn


def standin(name: str):
    """Marks a correct implementation of the notebook's ``name``, used while a later function is tested.
    A kernel gets it only with the tests that use it, after ``name``'s own test was sealed."""

    def mark(fn):
        return fn

    return mark


class _Missing:
    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise NameError(f"{self.name} is not defined: run the cell that defines it (and keep its name)")


def _copied(obj):
    if type(obj) in TENSOR_TYPES:
        return obj.detach().clone()
    if type(obj) in (list, tuple):
        return type(obj)(_copied(o) for o in obj)
    if type(obj) is dict:
        return {k: _copied(v) for k, v in obj.items()}
    return obj


# ------------------------------------------------------------------------------------------- shipping
def load_probe(path: Path):
    spec = importlib.util.spec_from_file_location(f"_probe_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(folder: Path, probe: Probe) -> None:
    """The probe's record as plain files: manifest.json and one .npy per array."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i, array in enumerate(probe.arrays):
        np.save(folder / f"{i}.npy", array, allow_pickle=False)
    manifest = {"grade_id": probe.grade_id, "values": probe.values, "arrays": len(probe.arrays)}
    text = json.dumps(manifest, allow_nan=True)
    (folder / MANIFEST).write_text(text[: 50 * MAX_JSON_CHARS])


def ship(grade_id: str, namespace: dict) -> None:
    """Run the hidden test ``grade_id`` on this notebook's functions and send the results out."""
    judge = Path.cwd() / JUDGE_DIR
    seed_file = judge / SEED_FILE
    if not seed_file.is_file():
        return _judge_here(grade_id, namespace)
    seed = json.loads(seed_file.read_text())["seed"]
    module = load_probe(judge / PROBE_FILE)
    probe = Probe(grade_id, _seed_for(seed, grade_id), namespace)
    try:
        getattr(module, grade_id)(probe)
    except Exception as e:  # what was recorded still goes out; the judge says where it stopped
        probe.values["__stopped__"] = f"{type(e).__name__}: {str(e)[:300]}"
    write(judge / OUT_DIR / grade_id, probe)


def _seed_for(seed: int, grade_id: str) -> int:
    """One seed per test, derived from the submission's seed (the same inside and outside)."""
    import hashlib

    digest = hashlib.sha256(f"{seed}:{grade_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def _judge_here(grade_id: str, namespace: dict) -> None:
    """Outside the grader: judge at once with lib (an instructor's checkout), else say what is missing."""
    try:
        judge = importlib.import_module("autograder.judge")
    except ImportError:
        print(f"[{grade_id}] the hidden tests run only when the course staff grade this notebook")
        return
    verdict = judge.judge_in_process(grade_id, namespace, Path.cwd())
    if not verdict.passed:
        raise AssertionError(verdict.message)


__all__ = ["Probe", "Refused", "plain", "ship", "mistake", "standin", "JUDGE_DIR"]

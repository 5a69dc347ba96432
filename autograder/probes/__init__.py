"""The hidden tests' probes: what each test calls, on which inputs, and how its outputs are checked.

One module per assignment, ``n<assignment>.py`` (``n03_self_attention.py``). Each function named like
a test cell's ``grade_id`` takes a ``course.grading.Probe`` ``p`` and

* draws its inputs from ``p`` (``p.randn``, ``p.rand``, ``p.randint``: a seed per submission and test,
  so every submission gets other numbers and no answer can be looked up),
* gets what it tests with ``p.get(name)``, and calls it with ``p.call(key, fn, *args, msg=...)`` or
  records an observation with ``p.put(key, value, msg=...)``, saying how it is checked (``atol``,
  ``rtol``, ``exact``, ``dtype``) and what a student reads when it fails (the concept, no value),
* names typical mistakes with ``p.mistake(key, message, wrong_fn, *args)`` (evaluated outside only),
* tests a later function on a correct earlier one with ``with p.standin(name, fn):``.

The same function runs twice on the same seed (mugrade's one code, two runs): inside the sandbox on
the student's notebook (``course.grading.ship``, which writes plain files) and outside on ``lib``,
whose objects the module's ``reference()`` returns under the notebook's names (``autograder.judge``).
These modules never import ``lib`` at module level (the kernel that runs them has no ``lib``), and
hold no expected value. ``PARTS`` (optional) shares a test's points between its parts
(``p.parts(name)``); without it a test is all or nothing.
"""

import ast
import functools
from pathlib import Path

OUTSIDE_ONLY = "reference"  # builds lib's namespace: never in a kernel


def _decorator(node) -> tuple[str, str | None] | None:
    """("mistake", None) or ("standin", name) for a def marked with course.grading's decorators."""
    for d in getattr(node, "decorator_list", []):
        if isinstance(d, ast.Name) and d.id == "mistake":
            return "mistake", None
        if isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "standin":
            arg = d.args[0] if d.args else None
            return "standin", arg.value if isinstance(arg, ast.Constant) else None
    return None


def _defined(node) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def _used(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def needed(tree: ast.Module, grade_id: str) -> set[str]:
    """Top-level names the test ``grade_id`` reaches, following every name but mistakes' bodies."""
    defs: dict[str, ast.AST] = {}
    for node in tree.body:
        for name in _defined(node):
            defs.setdefault(name, node)
    seen, todo = set(), [grade_id]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        node = defs[name]
        if (_decorator(node) or ("", None))[0] == "mistake" or name == OUTSIDE_ONLY:
            continue
        todo += sorted(_used(node) - seen)
    return seen


def kernel_source(path: Path, grade_id: str) -> str:
    """The probe module as the kernel gets it while ``grade_id`` runs (parsed once per file version)."""
    path = Path(path)
    return _kernel_source(str(path), path.stat().st_mtime_ns, grade_id)


@functools.lru_cache(maxsize=256)
def _kernel_source(path: str, mtime_ns: int, grade_id: str) -> str:
    """The probe module cut for ``grade_id``.

    Typical mistakes (``@mistake``) and ``reference()`` become stubs: they run outside only, and a
    near-solution must not be there to borrow. A stand-in (``@standin(name)``, a correct earlier
    function) stays only if this test uses it; the earlier test it could answer is sealed by then.
    """
    tree = ast.parse(Path(path).read_text())
    keep = needed(tree, grade_id)
    body = []
    for node in tree.body:
        mark = _decorator(node)
        names = _defined(node)
        outside = names == [OUTSIDE_ONLY] or (mark and (mark[0] == "mistake" or names[0] not in keep))
        if outside:
            stub = f"def {names[0]}(*args, **kwargs):\n    raise RuntimeError('outside the kernel only')\n"
            node = ast.parse(stub).body[0]
        body.append(node)
    tree.body = body
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"

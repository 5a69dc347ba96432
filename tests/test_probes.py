"""The probes (autograder/probes): what a kernel is given while a test runs, and nothing more.

A kernel gets one test's probe at a time (``kernel_source``): never ``reference()``, never a typical
mistake (a near-solution to borrow), and a stand-in (a correct earlier function) only with the tests
that use it, never with the test of the function it stands in for.
"""

import ast

import pytest

from autograder.judge import probe_file
from autograder.nbg import REPO, assignments
from autograder.probes import _decorator, kernel_source, needed

NAMES = assignments(REPO)


def _tree(name):
    return ast.parse(probe_file(name).read_text())


def _tests(tree):
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


def _calls(tree, method):
    """Every ``p.<method>(...)`` call in the module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == method:
            yield node


def _marks(tree):
    return {n.name: _decorator(n) for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("name", NAMES)
def test_every_probe_module_has_a_probe_per_test_cell(name):
    import nbformat

    from autograder import cells
    from autograder.nbg import notebooks

    tests = set(_tests(_tree(name)))
    graded = {
        cells.grade_id(c)
        for nb in notebooks(REPO, name)
        for c in nbformat.read(nb, 4).cells
        if cells.is_test(c)
    }
    assert graded == tests


@pytest.mark.parametrize("name", NAMES)
def test_typical_mistakes_and_stand_ins_are_marked(name):
    tree = _tree(name)
    marks = _marks(tree)
    for call in _calls(tree, "mistake"):
        fn = call.args[2] if len(call.args) > 2 else None
        if isinstance(fn, ast.Name) and fn.id in marks:
            assert marks[fn.id] == ("mistake", None), (
                f"{name}: {fn.id} is a typical mistake: mark it @mistake"
            )
    for call in _calls(tree, "standin"):
        target, fn = call.args[0], call.args[1]
        if isinstance(fn, ast.Name) and fn.id in marks:
            want = ("standin", target.value if isinstance(target, ast.Constant) else None)
            assert marks[fn.id] == want, f"{name}: {fn.id} stands in for {want[1]}: mark it @standin"


@pytest.mark.parametrize("name", NAMES)
def test_a_kernel_never_holds_a_mistake_a_reference_or_a_stand_in_for_what_it_tests(name):
    path = probe_file(name)
    tree = _tree(name)
    marks = _marks(tree)
    for gid in _tests(tree):
        given = ast.parse(kernel_source(path, gid))
        kept = {n.name: n for n in given.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        stub = "raise RuntimeError('outside the kernel only')"
        for fn, mark in marks.items():
            body = ast.unparse(kept[fn].body[0]) if kept[fn].body else ""
            if fn == "reference" or (mark and mark[0] == "mistake"):
                assert body == stub, f"{name}/{gid}: the kernel would get {fn}"
        tested = {
            c.args[0].value
            for c in _calls(
                ast.Module(body=[n for n in tree.body if _reaches(tree, gid, n)], type_ignores=[]), "get"
            )
            if c.args and isinstance(c.args[0], ast.Constant)
        }
        for fn, mark in marks.items():
            if mark and mark[0] == "standin" and mark[1] in tested:
                body = ast.unparse(kept[fn].body[0]) if kept[fn].body else ""
                assert body == stub, (
                    f"{name}/{gid} tests {mark[1]} but its kernel would get the stand-in {fn}"
                )


def _reaches(tree, gid, node):
    names = needed(tree, gid)
    return isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names


def test_kernel_source_cuts_what_it_should_on_a_module_written_here(tmp_path):
    path = tmp_path / "n99_demo.py"
    path.write_text(
        "from course.grading import mistake, standin\n"
        "def reference():\n    return {'f': 1}\n"
        "@standin('f')\ndef _f(x):\n    return 2 * x\n"
        "@mistake\ndef _f_tripled(x):\n    return 3 * x\n"
        "def test_f(p):\n    p.call('f', p.get('f'), 1)\n    p.mistake('f', 'tripled', _f_tripled, 1)\n"
        "def test_g(p):\n    with p.standin('f', _f):\n        p.call('g', p.get('g'), 1)\n"
    )
    f_src, g_src = kernel_source(path, "test_f"), kernel_source(path, "test_g")
    assert "2 * x" not in f_src and "3 * x" not in f_src and "{'f': 1}" not in f_src
    assert "2 * x" in g_src and "3 * x" not in g_src
    compile(f_src, "f", "exec"), compile(g_src, "g", "exec")

"""The hidden tests' reference values: computed with lib outside the kernel, complete and reproducible."""

import ast
import re

import nbformat
import pytest
import torch

from autograder import references
from autograder.nbg import REPO, assignments, notebooks
from course import grading

_CALL = re.compile(r"""\breference\(\s*["']([^"']+)["']""")


def _cells(name):
    for nb in notebooks(REPO, name):
        yield from nbformat.read(nb, 4).cells


def test_every_reference_a_hidden_test_reads_has_a_fixture_and_every_fixture_is_read():
    for name in assignments(REPO):
        wanted = {m for c in _cells(name) for m in _CALL.findall(c.source)}
        have = set(references.fixtures(name))
        assert wanted <= have, (
            f"{name}: hidden tests read {sorted(wanted - have)}, which autograder/references/n{name}.py lacks"
        )
        assert have <= wanted, f"{name}: fixtures {sorted(have - wanted)} are read by no test cell"
        for c in _cells(name):  # a test cell reads its own entry, so a failure points at the right fixture
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            for used in _CALL.findall(c.source):
                assert used == gid, f"{name}/{gid} reads the reference values of {used}"


def test_no_notebook_cell_imports_lib_or_autograder():
    # graded kernels cannot import them (the sandbox does not hold them); hidden tests use
    # course.grading.reference
    for name in assignments(REPO):
        for c in _cells(name):
            if c.cell_type != "code":
                continue
            tree = ast.parse(
                "\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            )
            mods = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
            mods += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
            bad = [m for m in mods if m.split(".")[0] in ("lib", "autograder")]
            assert not bad, f"{name}/{c.metadata.get('nbgrader', {}).get('grade_id')} imports {bad}"


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


def test_builds_are_identical_and_load_without_pickled_code(tmp_path):
    names = assignments(REPO)
    first, second = references.build(names, tmp_path / "a"), references.build(names, tmp_path / "b")
    for name in names:
        a = torch.load(
            first / f"{name}.pt", weights_only=True
        )  # plain data only: no code crosses into the kernel
        b = torch.load(second / f"{name}.pt", weights_only=True)
        assert _equal(a, b), f"{name}: two builds differ; seed every input the fixtures make"


def test_float64_and_non_square_cases_survive(tmp_path):
    out = references.build(["03_self_attention"], tmp_path)
    cases = torch.load(out / "03_self_attention.pt", weights_only=True)["test_scaled_dot_product_attention"][
        "cases"
    ]
    assert all(c["q"].dtype == torch.float64 for c in cases)
    assert any(c["q"].shape[-2] != c["k"].shape[-2] for c in cases)  # N != M
    # the values are lib's: check one against the formula by hand
    c = cases[0]
    w = torch.softmax(c["q"] @ c["k"].transpose(-2, -1) / c["q"].shape[-1] ** 0.5, dim=-1)
    assert torch.allclose(c["expected"][1], w) and torch.allclose(c["expected"][0], w @ c["v"])


def test_reference_reads_the_file_and_says_how_to_make_a_missing_one(tmp_path, monkeypatch):
    monkeypatch.setenv(grading.ENV_REFERENCES, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="autograder references"):
        grading.reference("test_causal_mask", "03_self_attention")
    references.build(["03_self_attention"], tmp_path)
    n, mask = grading.reference("test_causal_mask", "03_self_attention")[2]
    assert n == 5 and torch.equal(mask, torch.ones(5, 5, dtype=torch.bool).tril())
    with pytest.raises(KeyError, match="rebuild it"):
        grading.reference("test_nothing", "03_self_attention")


def test_default_folder_is_build_references_of_the_course_directory(monkeypatch):
    monkeypatch.delenv(grading.ENV_REFERENCES, raising=False)
    monkeypatch.chdir(REPO / "source" / "03_self_attention")
    assert grading.reference_file() == REPO / "build" / "references" / "03_self_attention.pt"

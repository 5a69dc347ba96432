"""pyproject.toml and environment.yml declare the same dependencies."""

import re
import tomllib

import yaml

ALIASES = {"pytorch": "torch"}  # conda name -> pip name


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    name = m.group(1).lower().replace("_", "-")
    spec = ",".join(sorted(s.strip() for s in m.group(2).replace(" ", "").split(",") if s.strip()))
    # conda writes an exact pin as `=x` or `==x`, pip as `==x`
    spec = re.sub(r"(?<![=<>!~])=(?!=)", "==", spec)
    return ALIASES.get(name, name), spec


def _conda(repo):
    env = yaml.safe_load((repo / "environment.yml").read_text())
    deps = {}
    for d in env["dependencies"]:
        for req in d["pip"] if isinstance(d, dict) else [d]:
            name, spec = _split(req)
            if name not in ("python", "pip"):
                deps[name] = spec
    return env, deps


def test_same_dependencies(repo):
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    pip_deps = dict(_split(r) for r in pyproject["dependencies"])
    _, conda_deps = _conda(repo)
    assert conda_deps == pip_deps, (
        f"only in pyproject: {sorted(set(pip_deps.items()) - set(conda_deps.items()))}; "
        f"only in environment.yml: {sorted(set(conda_deps.items()) - set(pip_deps.items()))}"
    )


def test_same_python(repo):
    requires = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["requires-python"]
    env, _ = _conda(repo)
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11" and ">=3.11" in requires and "<3.12" in requires


def test_torch_pins(repo):
    pip_deps = dict(
        _split(r) for r in tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    assert pip_deps["torch"] == "==2.14.1" and pip_deps["torchvision"] == "==0.29.1"

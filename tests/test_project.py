"""Packaging and set-up promises: one dependency list, a reproducible sample, a light import."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from trailkit.sample import write_sample

from .conftest import ROOT, SAMPLE


CONDA_NAMES = {"python-isal": "isal"}  # conda-forge's name -> PyPI's


def _names(requirements):
    names = {re.split(r"[<>=\[ ]", r.strip())[0].lower().replace("_", "-") for r in requirements}
    return {CONDA_NAMES.get(n, n) for n in names}


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip
    assert _names(conda + [r for r in pip if r != "-e ."]) - {"python", "pip"} == _names(project["dependencies"])
    # the same version bounds (>=X, or ==X for a pinned one) in both
    pins = {re.split(r"[<>=\[ ]", r)[0].lower(): re.search(r"[<>=]=.*$", r).group() for r in project["dependencies"]
            if re.search(r"[<>=]=", r)}
    for d in conda + pip:
        name = CONDA_NAMES.get(re.split(r"[<>= ]", d)[0], re.split(r"[<>= ]", d)[0])
        if name in pins:
            assert re.search(r"[<>=]=[^;]*", d).group().strip() == pins[name].split(";")[0].strip(), d


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix == ".gz"}


def test_sample_regenerates_byte_identically(tmp_path):
    counts = write_sample(tmp_path)
    assert _digest(tmp_path) == _digest(SAMPLE)
    assert counts["records"] > 1000 and counts["files"] > 100
    assert sum(p.stat().st_size for p in SAMPLE.rglob("*.gz")) < 3 * 1024 * 1024


def test_import_is_light():
    code = ("import sys, trailkit; bad = [m for m in ('boto3', 'pyathena', 'ipywidgets', 'duckdb', 'matplotlib') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_answers_without_importing_pandas_pyarrow_or_sqlglot(tmp_path):
    """Start-up is most of a repeated question's time: the CLI's path stays clear of the heavy imports."""
    code = ("import sys; from trailkit.cli import main; "
            "[main(a) for a in (['ips', 'AKIA3PARTNERSYNC0001', '--format', 'csv', '--allow', '203.0.113.0/24'], "
            "['usage', 'AKIA3PARTNERSYNC0001', '--limit', '2'], ['ips', 'AKIA3PARTNERSYNC0001', '--no-cache'])]; "
            "print([m for m in ('pandas', 'pyarrow', 'numpy', 'sqlglot') if m in sys.modules], file=sys.stderr)")
    env = {**os.environ, "TRAILKIT_CACHE": str(tmp_path)}
    # a first run may transpile (sqlglot); the question asked again must not need it
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert proc.stderr.strip().splitlines()[-1] == "[]"
    assert "198.51.100.77" in proc.stdout


def _imports() -> dict[str, set[str]]:
    """Every trailkit module and the trailkit modules it imports, at any depth of the file (lazy imports
    inside functions and TYPE_CHECKING blocks included: a circle is a circle however late it closes)."""
    import ast

    package = ROOT / "trailkit"
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                named = {f"{target}.{a.name}" for a in node.names}
                # "from . import questions" imports the module; "from . import __version__" the package
                found |= (named & modules.keys()) or {target}
                found |= {target} if named - modules.keys() else set()
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_no_import_circle_in_the_package():
    graph = _imports()
    assert {"trailkit.engines.layout", "trailkit.engines.local", "trailkit.engines.cache"} <= set(graph)
    state: dict[str, str] = {}

    def visit(module, path):
        state[module] = "open"
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                raise AssertionError("import circle: " + " -> ".join(path + [module, dep]))
            if dep not in state:
                visit(dep, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_the_rooms_point_one_way():
    """Layout knowledge is imported by the engine, the cache and the scan, and imports none of them."""
    graph = _imports()
    engines = {m for m in graph if m.startswith("trailkit.engines.")}
    assert not graph["trailkit.engines.layout"] & engines
    for module in ("local", "cache", "scan"):
        assert "trailkit.engines.layout" in graph[f"trailkit.engines.{module}"], module
        assert "trailkit.engines.local" not in graph[f"trailkit.engines.{module}"] or module == "local"


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "trailkit").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}

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
    pins = {re.split(r"[<>=\[ ]", r)[0].lower(): r.split(">=")[-1] for r in project["dependencies"]}
    for d in conda + pip:
        name = CONDA_NAMES.get(re.split(r"[<>= ]", d)[0], re.split(r"[<>= ]", d)[0])
        if name in pins:
            assert d.endswith(">=" + pins[name]), d


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

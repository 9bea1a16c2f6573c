"""The install: the core dependencies are what separation imports; training and evaluation are extras, and a
command whose extra is missing says which to install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from vocalsep.cli import main

from .conftest import path_without_ffmpeg

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")


def _closure(requirements) -> set[str]:
    """The distributions ``requirements`` bring, with their own (installed) dependencies."""
    seen: set[str] = set()
    todo = [_name(r) for r in requirements]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [_name(r) for r in metadata.requires(name) or [] if "extra ==" not in r]
        except metadata.PackageNotFoundError:
            pass
    return seen


def test_core_dependencies_are_what_separation_imports(tiny_model):
    core = [_name(r) for r in PYPROJECT["dependencies"]]
    for heavy in ("tensorflow", "keras", "librosa", "musdb", "museval", "mir-eval"):
        assert heavy not in core
    assert {"tensorflow", "keras"} <= {_name(r) for r in PYPROJECT["optional-dependencies"]["train"]}
    assert {"musdb", "museval", "mir-eval"} <= {_name(r) for r in PYPROJECT["optional-dependencies"]["eval"]}
    code = ("import sys; before = set(sys.modules)  # less what the interpreter's start-up imported\n"
            "import numpy as np; from vocalsep import Separator\n"
            f"Separator({str(tiny_model)!r}).separate(np.zeros((20000, 2), np.float32), 44100)\n"
            "print('MODULES', ' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    modules = out.split("MODULES", 1)[1].split()
    dists = metadata.packages_distributions()
    used = {_name(d) for m in modules if m not in sys.stdlib_module_names for d in dists.get(m, [])}
    assert "tensorflow" not in used and "keras" not in used
    optional = {"charset-normalizer"}  # numpy.f2py imports it when it happens to be installed
    assert used - {"vocalsep"} - optional <= _closure(PYPROJECT["dependencies"]), "separation imports a non-core package"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.mark.parametrize("module", ["tensorflow", "keras"])
def test_train_without_the_training_extra(monkeypatch, tmp_path, module):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    res = _run("train", "--out", tmp_path / "run", "--steps", "1")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().count("\n") == 0
    assert 'vocalsep train: needs the training extra' in res.output and 'pip install "vocalsep[train]"' in res.output
    assert not (tmp_path / "run").exists()


def test_keras_backend_without_the_training_extra(monkeypatch, tmp_path, tiny_model, write_audio):
    src = write_audio("song.wav", 0.3)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    res = _run("separate", src, "-o", tmp_path / "out", "--model", tiny_model, "--backend", "keras")
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0
    assert "keras backend" in res.output and 'pip install "vocalsep[train]"' in res.output


@pytest.mark.parametrize("protocol, module", [("sisec18", "museval"), ("mir1k", "mir_eval")])
def test_evaluate_without_the_evaluation_extra(monkeypatch, tmp_path, protocol, module):
    monkeypatch.setitem(sys.modules, module, None)
    res = _run("evaluate", "--data", tmp_path, "--protocol", protocol, "--method", "mixture")
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0
    assert "vocalsep evaluate: needs the evaluation extra" in res.output and 'vocalsep[eval]' in res.output


def test_tests_skip_without_ffmpeg(tmp_path):
    """On a machine without ffmpeg, the tests that import museval (which imports musdb, which needs ffmpeg)
    skip with a reason instead of failing."""
    env = dict(os.environ, PATH=path_without_ffmpeg(os.environ.get("PATH", ""), tmp_path))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_evaluate.py",
                           "-k", "museval or stems_folder"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "3 skipped" in proc.stdout and "apt-get install ffmpeg" in proc.stdout

"""The import contracts in pyproject.toml hold, and they would catch a cycle or a wrong-way import.

``lint-imports`` (import-linter) reads the contracts; CI runs it too. The negative cases copy
the package to a temporary directory, add one bad import and check that the linter fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as lint; lint()"]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("importlinter") is None,
                                reason="import-linter not installed (pip install -e '.[test]')")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([*LINT, "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_contracts_are_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    shutil.copytree(ROOT / "genlab", tmp_path / "genlab",
                    ignore=shutil.ignore_patterns("__pycache__", "assets"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "genlab" / "assets").mkdir()
    shutil.copy(ROOT / "genlab" / "assets" / "__init__.py", tmp_path / "genlab" / "assets")
    path = tmp_path / "genlab" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("module, line, broken", [
    # decode imports sampling; sampling importing decode closes a cycle inside a package
    ("core/generation/sampling/__init__.py", "import genlab.core.generation.decode  # noqa",
     "No import cycles"),
    # a lower layer reaching up
    ("core/training/loop.py", "import genlab.core.experiments.sweep  # noqa",
     "Faces over the API"),
    # the core importing the UI
    ("core/io.py", "import rich  # noqa", "The core never imports"),
])
def test_a_deliberate_violation_breaks_the_build(tmp_path, module, line, broken):
    result = _lint(_copy_with(tmp_path, module, line))
    assert result.returncode != 0
    broken_lines = [ln for ln in result.stdout.splitlines() if ln.endswith(" BROKEN")]
    assert [ln for ln in broken_lines if ln.startswith(broken)], result.stdout[-2000:]

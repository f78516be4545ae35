"""Dependencies point down, and the CLI starts light (each check in a fresh interpreter).

* ``genlab --help`` and ``genlab sample --help`` import no torch/transformers/peft.
* Importing every ``genlab.core`` module (found by walking the package, so new modules are
  covered automatically) pulls in none of the UI stack or genlab's faces.
* The core never prints.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import genlab.core

HEAVY = ("torch", "transformers", "peft", "datasets", "accelerate")
UI = ("textual", "rich", "typer", "click", "genlab.cli", "genlab.tui")
CORE_DIR = Path(genlab.core.__file__).parent


def _loaded_after(code: str) -> set[str]:
    """Top-level-and-dotted module names in sys.modules after running ``code`` afresh."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _hits(modules: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))


@pytest.mark.parametrize("argv", [["--help"], ["sample", "--help"]], ids=" ".join)
def test_cli_help_does_not_import_torch(argv):
    code = (
        "import io, contextlib\n"
        "from genlab.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        app({argv!r})\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), e.code\n"
    )
    loaded = _loaded_after(code)
    assert _hits(loaded, HEAVY) == []
    # The options are generated from the configs' knobs, which are standard library only, as
    # are the error types the CLI's error boundary maps (genlab.core.errors).
    core = _hits(loaded, ("genlab.core",))
    assert [m for m in core if m != "genlab.core"
            and not m.startswith(("genlab.core.configs", "genlab.core.errors"))] == []


def test_configs_import_only_the_standard_library():
    before = _loaded_after("pass")
    after = _loaded_after("import genlab.core.configs")
    new = {m.split(".")[0] for m in after - before}
    assert sorted(new - set(sys.stdlib_module_names) - {"genlab"}) == []


def test_core_imports_no_ui():
    import pkgutil

    names = sorted(m.name for m in pkgutil.walk_packages(genlab.core.__path__, "genlab.core."))
    assert {"genlab.core.configs", "genlab.core.training.loop", "genlab.core.io"} <= set(names)
    code = "import genlab.core\n" + "\n".join(f"import {n}" for n in names)
    assert _hits(_loaded_after(code), UI) == []


def test_core_never_prints():
    offenders = []
    for path in sorted(CORE_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{path.relative_to(CORE_DIR)}:{node.lineno}" for node in ast.walk(tree)
                      if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                      and node.func.id == "print"]
    assert offenders == []

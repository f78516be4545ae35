"""``genlab tui`` on the command line: light to start, clear when misused."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from genlab.cli import app

HEAVY = ("torch", "transformers", "peft", "datasets", "accelerate")


def _modules_after(code: str) -> set[str]:
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str], extra: tuple[str, ...] = ()) -> list[str]:
    banned = (*HEAVY, *extra)
    return sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))


def test_tui_help_does_not_import_torch():
    code = (
        "import io, contextlib\n"
        "from genlab.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        app(['tui', '--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), e.code\n"
    )
    assert _heavy(_modules_after(code), ("genlab.core.modeling.loading",
                                         "genlab.core.generation.decode")) == []


def test_building_the_app_does_not_import_torch():
    """The app paints before torch loads: building it (every screen imported) stays light."""
    code = "from genlab.tui.app import make_app\nmake_app(model='x')\n"
    modules = _modules_after(code)
    assert "genlab.tui.screens.train" in modules and "textual_plotext" in modules
    assert _heavy(modules, ("genlab.core.modeling.loading", "genlab.core.generation.decode",
                            "genlab.core.training.train")) == []


def test_tui_without_a_model_uses_the_shipped_one_or_says_it_is_missing(monkeypatch):
    from genlab import assets

    monkeypatch.setattr(assets, "default_model_installed", lambda: False)
    result = CliRunner().invoke(app, ["tui"])
    assert result.exit_code == 2
    assert "--model is required" in result.output

    started = {}
    monkeypatch.setattr(assets, "default_model_installed", lambda: True)
    monkeypatch.setattr("genlab.tui.app.GenlabApp.run", lambda self: started.update(
        model=self.model_name))
    result = CliRunner().invoke(app, ["tui"])
    assert result.exit_code == 0, result.output
    assert started["model"] == assets.DEFAULT_MODEL_DIR


def test_tui_rejects_a_bad_adapter_spec(tmp_path):
    result = CliRunner().invoke(app, ["tui", "--model", "m", "--adapter", "nodir"])
    assert result.exit_code == 2
    assert "NAME=DIR" in result.output

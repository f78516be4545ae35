"""The command reference (docs/cli.md) is generated from the CLI itself and must stay current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current(tmp_path):
    out = tmp_path / "cli.md"
    subprocess.run(
        [sys.executable, "-m", "typer", "genlab.cli", "utils", "docs", "--name", "genlab",
         "--output", str(out)],
        check=True, cwd=ROOT, capture_output=True,
    )
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed, (
        "docs/cli.md is stale: regenerate it with "
        "`python -m typer genlab.cli utils docs --name genlab --output docs/cli.md`")


def test_readme_names_every_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("sample", "train", "merge", "pretrain", "tui", "compare", "sweep", "report"):
        assert f"genlab {command}" in readme, command

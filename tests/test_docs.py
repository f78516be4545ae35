"""The command reference (docs/cli.md) is generated from the CLI itself and must stay current."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
GENERATED_WITH_TYPER = "0.29.2"
"""docs/cli.md was generated with this typer; other versions format details differently."""
REGENERATE = "docs/cli.md is stale: regenerate it with `python scripts/cli_docs.py`"


def _commands_and_flags(text: str) -> tuple[list[str], set[str]]:
    """The command headings and every long option named in a generated reference."""
    headings = re.findall(r"^#+ `(genlab[^`]*)`", text, flags=re.M)
    option_names = re.findall(r"^\* `([^`]*)`", text, flags=re.M)  # "* `-t, --temp T`: ..."
    flags = {flag for names in option_names for flag in re.findall(r"--[a-z][a-z0-9-]*", names)}
    return headings, flags


def test_cli_reference_is_current(tmp_path):
    out = tmp_path / "cli.md"
    subprocess.run([sys.executable, "scripts/cli_docs.py", "--output", str(out)],
                   check=True, cwd=ROOT, capture_output=True)
    generated = out.read_text(encoding="utf-8")
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    if typer.__version__ == GENERATED_WITH_TYPER:
        assert generated == committed, REGENERATE
    else:  # another typer renders metavars and spacing its own way: compare the substance
        assert _commands_and_flags(generated) == _commands_and_flags(committed), REGENERATE
    headings, flags = _commands_and_flags(committed)
    assert "genlab sample" in headings and "--temperature" in flags


def _load_cli_docs():
    path = ROOT / "scripts" / "cli_docs.py"
    spec = importlib.util.spec_from_file_location("genlab_cli_docs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_code_reads_verbatim():
    """The examples are code blocks: a quote must be a quote there, not ``&quot;``."""
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert not re.findall(r"&(?:quot|#x27|gt|lt|amp);", committed)
    assert 'genlab sample --prompt "Once upon a time"' in committed


def test_fix_markdown_unescapes_code_and_escapes_prose_tags():
    fix = _load_cli_docs().fix_markdown
    text = ("Examples:\n\n    genlab x --p &quot;a&#x27;b&quot; &gt; out\n\n"
            "* `--out DIR`: Default: runs/&lt;time&gt;, &#x27;q&#x27; &amp; more.\n\n"
            "    under the list item: prose &lt;b&gt;\n\n"
            "```console\n$ genlab &lt;x&gt;\n```\n"
            "An &amp;amp; stays an entity&#x27;s text.")
    assert fix(text).split("\n") == [
        "Examples:", "", "    genlab x --p \"a'b\" > out", "",
        "* `--out DIR`: Default: runs/\\<time>, 'q' & more.", "",
        "    under the list item: prose \\<b>", "",
        "```console", "$ genlab <x>", "```",
        "An &amp;amp; stays an entity's text.",
    ]


def test_readme_names_every_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("sample", "train", "merge", "pretrain", "tui", "compare", "sweep", "report"):
        assert f"genlab {command}" in readme, command


def test_counts_in_the_docs_match_the_files():
    """The numbers of prompts, cells and rows the docs quote are those of the shipped files."""
    import yaml

    specs_md = (ROOT / "docs" / "specs.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stories = [line for line in (ROOT / "prompts" / "stories.txt").read_text().splitlines()
               if line.strip()]
    spec = yaml.safe_load((ROOT / "prompts" / "specs" / "temperature-top-k.yaml").read_text())
    cells = 1
    for values in spec["axes"].values():
        cells *= len(values)
    assert f"{cells} cells x {len(stories)} prompts x {spec['samples']} samples" in specs_md
    rows = {name: len((ROOT / "demo" / "facts" / f"{name}.jsonl").read_text().splitlines())
            for name in ("train", "eval")}
    assert f"two wordings ({rows['train']} rows)" in readme
    assert f"never trained on ({rows['eval']} rows)" in readme

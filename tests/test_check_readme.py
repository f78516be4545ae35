"""scripts/check_readme.py: its markers, its matching, and a run over a tiny synthetic README."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = "```"


def _load():
    path = ROOT / "scripts" / "check_readme.py"
    spec = importlib.util.spec_from_file_location("genlab_check_readme", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


check_readme = _load()


def _readme(tmp_path: Path, *parts: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def test_blocks_commands_and_their_expected_output():
    text = "\n".join([
        "# Title", "", "```bash", "echo unmarked", "```",
        '<!-- check-readme skip="pip install" only="genlab" -->',
        f"{FENCE}bash", "# a comment line", "pip install x && genlab a --long \\", "  --flag",
        "", "pip install y && python -m pytest -q", "genlab b  # trailing comment", FENCE,
        "<!-- check-readme-output stream=stderr -->", FENCE, "err line", FENCE,
    ])
    [step] = check_readme.plan(check_readme.parse_blocks(text))
    assert [(c.text, c.line) for c in step.commands] == [
        ("genlab a --long --flag", 9), ("genlab b  # trailing comment", 13)]
    assert step.options == {"skip": "pip install", "only": "genlab"} and step.line == 8
    assert list(step.expected) == ["stderr"]
    assert step.expected["stderr"].lines == ["err line"]
    assert step.expected["stderr"].line == 17


@pytest.mark.parametrize("text, problem", [
    ("<!-- check-readme -->\nno fence here", "right before a fenced code block"),
    ("<!-- check-readme -->\n```\necho never closed", "never closes"),
    ("<!-- check-readme colums=80 -->\n```\necho\n```", "unknown option 'colums'"),
    ("<!-- check-readme-output -->\n```\nx\n```", "needs a check-readme block"),
    ("<!-- check-readme -->\n```\necho a \\\n```", "ends inside a command"),
    ("<!-- check-readme -->\n```\necho\n```\n<!-- check-readme-output stream=both -->\n```\n```",
     "stream='both'"),
])
def test_malformed_markers_are_named(text, problem):
    with pytest.raises(check_readme.ReadmeError, match=problem):
        check_readme.plan(check_readme.parse_blocks(text))


def test_matching_is_exact_except_for_the_ellipsis():
    match = check_readme.matches
    assert match(["a", "b"], ["a", "b"])
    assert not match(["a", "b"], ["a", "c"])
    assert not match(["a"], ["a", "b"])
    assert match(["took …s; ok"], ["took 12.5s; ok"])
    assert not match(["took …s; ok"], ["took 12.5s; not ok"])
    assert match(["first", "…", "last"], ["first", "x", "y", "last"])
    assert match(["first", "…", "last"], ["first", "last"])
    assert not match(["first", "…", "last"], ["first", "x"])
    assert match(["a.b (c)"], ["a.b (c)"]) and not match(["a.b (c)"], ["axb (c)"])  # literal
    assert check_readme.normalise("\x1b[1mbold\x1b[0m   \r\n\n\nx\n\n") == ["bold", "", "", "x"]


def test_a_readme_that_holds_passes(tmp_path, capsys):
    readme = _readme(
        tmp_path, "<!-- check-readme -->", FENCE, "printf 'one\\ntwo  \\n' > f.txt",
        "cat f.txt", FENCE, "<!-- check-readme-output -->", FENCE, "one", "two", FENCE,
        "<!-- check-readme exit=3 -->", FENCE, "echo 'bad: took 1.2 s' >&2; exit 3",
        "echo 'second: out'; echo 'second: err' >&2; exit 3", FENCE,
        "<!-- check-readme-output stream=stderr -->", FENCE, "bad: took … s", "second: err", FENCE,
        "<!-- check-readme-output -->", FENCE, "second: out", FENCE,
        "<!-- check-readme cols=57 -->", FENCE,
        "python -c 'import os, sys; print(os.get_terminal_size().columns, sys.stdout.isatty())'",
        FENCE, "<!-- check-readme-output -->", FENCE, "57 True", FENCE,
        "<!-- check-readme -->", FENCE, "ls prompts/stories.txt demo/facts/train.jsonl", FENCE,
        "<!-- check-readme slow -->", FENCE, "exit 1", FENCE,
    )
    for name in check_readme.COPIED:  # the commands see copies of these folders
        (tmp_path / name).symlink_to(ROOT / name)
    assert check_readme.main([str(readme)]) == 0
    out = capsys.readouterr().out
    assert "6 commands run, all as the README shows, 1 slow ones skipped" in out
    assert check_readme.main([str(readme), "--slow"]) == 1  # the slow one exits 1


def test_a_mismatch_exits_1_with_a_diff(tmp_path, capsys):
    readme = _readme(
        tmp_path, "<!-- check-readme -->", FENCE, "echo 'Prompt 1: hello'; echo 'row 2'", FENCE,
        "<!-- check-readme-output -->", FENCE, "Prompt 1: hello", "row 3", FENCE,
        "<!-- check-readme -->", FENCE, "echo oops >&2; exit 2", FENCE,
    )
    assert check_readme.main([str(readme)]) == 1
    out = capsys.readouterr().out
    assert "ok    README.md:3" in out  # its exit status is right; its output is not:
    assert "FAIL  README.md:3  the output differs from the README:" in out
    assert "README.md:7 (expected)" in out and "stdout of the block at README.md:3" in out
    assert "-row 3" in out and "+row 2" in out
    assert "FAIL  README.md:12  echo oops" in out
    assert "exit status 2, the README expects 0; stderr ends:" in out and "oops" in out
    assert "2 problems" in out


def test_a_malformed_readme_exits_2(tmp_path, capsys):
    readme = _readme(tmp_path, "<!-- check-readme-output -->", FENCE, "x", FENCE)
    assert check_readme.main([str(readme)]) == 2
    assert "needs a check-readme block" in capsys.readouterr().err


def test_the_readme_marks_its_quick_start_and_its_output():
    steps = check_readme.plan(check_readme.parse_blocks(
        (ROOT / "README.md").read_text(encoding="utf-8")))
    first = steps[0]
    assert [c.text for c in first.commands] == [
        'genlab sample --prompt "Once upon a time" -t 0,0.7,1.5 --top-k 0,10 --max-new-tokens 40']
    assert first.options.get("cols") == "120" and "stdout" in first.expected
    commands = [c.text for step in steps for c in step.commands]
    assert not any(c.startswith(("pip ", "python -m pytest")) for c in commands)


@pytest.mark.parametrize("cols", ["", " cols=40"])
def test_a_command_past_its_timeout_is_stopped_and_fails(tmp_path, capsys, cols):
    readme = _readme(tmp_path, f"<!-- check-readme timeout=1{cols} -->", FENCE, "sleep 20", FENCE)
    assert check_readme.main([str(readme)]) == 1
    out = capsys.readouterr().out
    assert "exit status 124" in out and "timed out after 1 s" in out

"""Run the README's marked commands and compare what they print with what the README shows.

The README marks what to check with HTML comments (invisible on GitHub), each right before a
fenced code block:

    <!-- check-readme cols=120 skip="pip install" -->
    ```bash
    genlab sample --prompt "Once upon a time" --max-new-tokens 8
    ```
    <!-- check-readme-output -->
    ```
    Prompt 1: Once upon a time
    …
    ```

``check-readme`` runs every command of the block, in README order, with bash in one temporary
directory shared by all of them (holding copies of the repository's ``prompts/`` and ``demo/``,
which the commands read), against the genlab already installed (the one beside this Python),
with ``HF_HUB_OFFLINE=1``. A command is a line (lines ending in ``\\`` continue it); blank lines
and ``#`` comment lines are not run. Each must exit 0 unless the marker says otherwise. Options:

  cols=N       stdout is a terminal N columns wide (a pseudo-terminal; escape codes removed);
               without it stdout is a pipe, with COLUMNS and LINES unset
  exit=N       the exit status the command must end with (default 0)
  skip=PREFIX  leave out the ``&&`` steps that start with PREFIX (``skip="pip install"``: the
               check tests the installed genlab and never installs anything)
  only=PREFIX  run only the commands that start with PREFIX (after skip)
  slow         run only with ``--slow`` (commands that take minutes)
  timeout=S    seconds each command may take (default 300)

``check-readme-output`` compares the block with what the commands of the preceding
``check-readme`` block printed, one after another (option ``stream=stdout``, the default, or
``stream=stderr``); several output blocks may follow, one per stream.
Matching: trailing spaces and blank lines at either end are ignored, and lines must be equal,
except that ``…`` in an expected line matches any text there, and a line holding only ``…``
matches any number of lines: use it for what varies (timings, memory, paths with a time
stamp), and say in the README that it varies.

    python scripts/check_readme.py            # README.md beside this script's repository
    python scripts/check_readme.py --slow     # the slow ones too
    python scripts/check_readme.py --list     # show what would run, run nothing

Exit status: 0 all matched; 1 a command failed or printed something else (a diff shows it);
2 the README's markers are malformed.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPIED = ("prompts", "demo")
"""Repository folders the commands read by relative path; copied into the temp directory."""
MARKER = re.compile(r"^\s*<!--\s*check-readme(-output)?(\s.*?)?\s*-->\s*$")
RUN_OPTIONS = {"cols", "exit", "skip", "only", "slow", "timeout"}
OUTPUT_OPTIONS = {"stream"}
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>()][0-9A-B]?")
ANY = "…"


class ReadmeError(Exception):
    """A malformed marker: the line and what is wrong."""


@dataclass
class Block:
    """A marked fenced block: its kind, marker options, content lines and first line number."""

    output: bool
    options: dict[str, str]
    lines: list[str]
    line: int


@dataclass
class Command:
    """One command to run and where it is in the README."""

    text: str
    line: int


@dataclass
class Step:
    """A ``check-readme`` block: its commands, options and the output blocks that follow it."""

    commands: list[Command]
    options: dict[str, str]
    line: int
    expected: dict[str, Block] = field(default_factory=dict)  # stream -> output block


@dataclass
class Result:
    """What a command did: exit status, its two streams (normalised) and its wall time."""

    status: int
    stdout: str
    stderr: str
    seconds: float


# ----------------------------------------------------------------------------- parsing


def _options(text: str, allowed: set[str], line: int) -> dict[str, str]:
    options = {}
    for word in shlex.split(text or ""):
        key, _, value = word.partition("=")
        if key not in allowed:
            raise ReadmeError(f"line {line}: unknown option {key!r} (known: "
                              f"{', '.join(sorted(allowed))})")
        options[key] = value
    return options


def parse_blocks(text: str) -> list[Block]:
    """Every marked block of a README, in order."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        found = MARKER.match(lines[i])
        i += 1
        if not found:
            continue
        output, start = bool(found.group(1)), i
        options = _options(found.group(2), OUTPUT_OPTIONS if output else RUN_OPTIONS, i)
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines) or not lines[i].lstrip().startswith("```"):
            raise ReadmeError(f"line {start}: a check-readme marker must come right before a "
                              "fenced code block")
        fence, fence_at, body = lines[i].strip()[:3], i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise ReadmeError(f"line {start}: the code block after the marker never closes")
        blocks.append(Block(output, options, body, fence_at + 2))
        i += 1
    return blocks


def _steps(text: str, options: dict[str, str]) -> str:
    """The command with the ``&&`` steps named by ``skip`` left out ("" if none remain)."""
    skip = options.get("skip")
    if not skip:
        return text
    return " && ".join(s.strip() for s in text.split("&&") if not s.strip().startswith(skip))


def block_commands(block: Block) -> list[Command]:
    """The commands of a ``check-readme`` block: continuation lines joined, comments left out."""
    commands, pending, first = [], "", 0
    for offset, raw in enumerate(block.lines):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        first = first if pending else block.line + offset
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        text = _steps(pending + line, block.options)
        pending = ""
        if text and text.startswith(block.options.get("only", "")):
            commands.append(Command(text, first))
    if pending:
        raise ReadmeError(f"line {first}: the block ends inside a command (a last line ending "
                          "in a backslash)")
    return commands


def plan(blocks: list[Block]) -> list[Step]:
    """The blocks of commands to run, each with the output blocks that follow it."""
    steps: list[Step] = []
    last: Step | None = None
    for block in blocks:
        if not block.output:
            commands = block_commands(block)
            last = Step(commands, block.options, block.line) if commands else None
            steps += [last] if last else []
            continue
        stream = block.options.get("stream", "stdout")
        if stream not in ("stdout", "stderr"):
            raise ReadmeError(f"line {block.line}: stream={stream!r} (stdout or stderr)")
        if last is None or stream in last.expected:
            raise ReadmeError(f"line {block.line}: a check-readme-output block needs a "
                              "check-readme block with a command right before it")
        last.expected[stream] = block
    return steps


# ----------------------------------------------------------------------------- matching


def normalise(text: str) -> list[str]:
    """Lines without escape codes, carriage returns, trailing spaces or outer blank lines."""
    lines = [line.rstrip() for line in ANSI.sub("", text).replace("\r", "").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def line_matches(expected: str, actual: str) -> bool:
    """Equal, where each ``…`` of the expected line stands for any text."""
    if ANY not in expected:
        return expected == actual
    pattern = ".*?".join(re.escape(part) for part in expected.split(ANY))
    return re.fullmatch(pattern, actual) is not None


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` fits ``expected`` (a line that is only ``…`` matches any lines)."""

    @cache
    def fit(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i] == ANY:
            return any(fit(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and line_matches(expected[i], actual[j]) and fit(i + 1, j + 1)

    return fit(0, 0)


# ----------------------------------------------------------------------------- running


def _kill(proc: subprocess.Popen) -> None:
    """Stop a command and everything it started (its own session), and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def _run_on_terminal(argv: list[str], cols: int, cwd: Path, env: dict[str, str],
                     timeout: float) -> tuple[int, bytes, bytes]:
    """Run with stdout on a pseudo-terminal ``cols`` wide; stderr to a file."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                                stderr=err, start_new_session=True)
        os.close(slave)
        chunks, deadline = [], time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if select.select([master], [], [], 0.5)[0]:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: every writer of the terminal has closed it
                        break
                    if not data:
                        break
                    chunks.append(data)
            else:
                raise subprocess.TimeoutExpired(argv, timeout)
            status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # still writing, or closed the terminal but runs on
            _kill(proc)
            raise
        finally:
            os.close(master)
        err.seek(0)
        return status, b"".join(chunks), err.read()


def _run_on_pipe(argv: list[str], cwd: Path, env: dict[str, str],
                 timeout: float) -> tuple[int, bytes, bytes]:
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise
    return proc.returncode, out, err


def run_command(text: str, options: dict[str, str], cwd: Path, env: dict[str, str]) -> Result:
    """Run one command with bash; a timeout counts as exit status 124."""
    argv = ["bash", "-c", text]
    cols = int(options["cols"]) if options.get("cols") else 0
    env = dict(env)
    if cols:
        env.update(COLUMNS=str(cols), LINES="50", TERM=env.get("TERM") or "xterm-256color")
    start = time.perf_counter()
    timeout = float(options.get("timeout") or 300)
    try:
        if cols:
            status, out, err = _run_on_terminal(argv, cols, cwd, env, timeout)
        else:
            status, out, err = _run_on_pipe(argv, cwd, env, timeout)
    except subprocess.TimeoutExpired:
        status, out, err = 124, b"", f"timed out after {timeout:g} s".encode()
    return Result(status, out.decode("utf-8", errors="replace"),
                  err.decode("utf-8", errors="replace"), time.perf_counter() - start)


def child_env() -> dict[str, str]:
    """The environment of the commands: offline, this Python's genlab first on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    scripts = dict.fromkeys([sysconfig.get_path("scripts"), str(Path(sys.executable).parent)])
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PATH=os.pathsep.join([*scripts, env.get("PATH", "")]))
    return env


def status_problem(result: Result, options: dict[str, str]) -> str | None:
    """A wrong exit status, with the end of stderr, or None."""
    want = int(options.get("exit") or 0)
    if result.status == want:
        return None
    tail = "\n".join(normalise(result.stderr)[-15:])
    return f"exit status {result.status}, the README expects {want}; stderr ends:\n{tail}"


def output_problems(step: Step, results: list[Result], readme: str) -> list[str]:
    """A diff per stream whose output (the block's commands, one after another) differs."""
    found = []
    for stream, block in step.expected.items():
        actual = [line for result in results for line in normalise(getattr(result, stream))]
        expected = normalise("\n".join(block.lines))
        if not matches(expected, actual):
            diff = difflib.unified_diff(expected, actual, f"{readme}:{block.line} (expected)",
                                        f"{stream} of the block at {readme}:{step.line}",
                                        lineterm="")
            found.append("\n".join(diff))
    return found


# ----------------------------------------------------------------------------- main


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + ANY


def _say(mark: str, where: str, text: str, problem: str | None = None) -> None:
    print(f"{mark}  {where}  {text}", flush=True)
    if problem:
        print("\n".join("      " + line for line in problem.splitlines()), flush=True)


def run_step(step: Step, work: Path, env: dict[str, str], readme: str) -> int:
    """Run a block's commands, then compare its output; print each; return the failures."""
    results, failed = [], 0
    for command in step.commands:
        result = run_command(command.text, step.options, work, env)
        results.append(result)
        problem = status_problem(result, step.options)
        failed += problem is not None
        _say("FAIL" if problem else "ok  ", f"{readme}:{command.line}",
             f"{_short(command.text)} ({result.seconds:.1f} s)", problem)
    for problem in output_problems(step, results, readme):
        failed += 1
        _say("FAIL", f"{readme}:{step.line}", "the output differs from the README:", problem)
    return failed


def check(readme: Path, slow: bool, keep: bool) -> int:
    """Run every selected block in README order; print one line per command and any diffs."""
    steps = plan(parse_blocks(readme.read_text(encoding="utf-8")))
    work = Path(tempfile.mkdtemp(prefix="check-readme-"))
    for name in COPIED:
        if (readme.parent / name).is_dir():
            shutil.copytree(readme.parent / name, work / name)
    env, failed, ran, skipped, start = child_env(), 0, 0, 0, time.perf_counter()
    try:
        for step in steps:
            if "slow" in step.options and not slow:
                skipped += len(step.commands)
                for command in step.commands:
                    _say("skip", f"{readme.name}:{command.line}",
                         f"{_short(command.text)} (slow: --slow runs it)")
                continue
            failed += run_step(step, work, env, readme.name)
            ran += len(step.commands)
    finally:
        if keep:
            print(f"the commands ran in {work} (kept)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"check_readme: {ran} commands run, "
          + (f"{failed} problems" if failed else "all as the README shows")
          + (f", {skipped} slow ones skipped" if skipped else "")
          + f" ({time.perf_counter() - start:.0f} s)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("readme", nargs="?", type=Path, default=REPO / "README.md")
    ap.add_argument("--slow", action="store_true", help="also run the commands marked slow")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--list", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args(argv)
    try:
        if args.list:
            for step in plan(parse_blocks(args.readme.read_text(encoding="utf-8"))):
                compared = ", ".join(step.expected) or "exit status only"
                for command in step.commands:
                    print(f"{args.readme.name}:{command.line}  [{compared}]  {command.text}")
            return 0
        return check(args.readme, args.slow, args.keep)
    except ReadmeError as exc:
        print(f"check_readme: {args.readme}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

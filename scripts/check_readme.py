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

``check-readme-output`` compares the block with what the last command of the preceding
``check-readme`` block printed (option ``stream=stdout``, the default, or ``stream=stderr``).
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
    """One command to run, where it is in the README, and what it must print."""

    text: str
    line: int
    options: dict[str, str]
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
            commands.append(Command(text, first, block.options))
    if pending:
        raise ReadmeError(f"line {first}: the block ends inside a command (a last line ending "
                          "in a backslash)")
    return commands


def plan(blocks: list[Block]) -> list[Command]:
    """The commands to run, each with the output blocks that follow its block."""
    commands: list[Command] = []
    last: Command | None = None
    for block in blocks:
        if not block.output:
            found = block_commands(block)
            commands += found
            last = found[-1] if found else None
            continue
        stream = block.options.get("stream", "stdout")
        if stream not in ("stdout", "stderr"):
            raise ReadmeError(f"line {block.line}: stream={stream!r} (stdout or stderr)")
        if last is None or stream in last.expected:
            raise ReadmeError(f"line {block.line}: a check-readme-output block needs a "
                              "check-readme block with a command right before it")
        last.expected[stream] = block
    return commands


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


def run_command(command: Command, cwd: Path, env: dict[str, str]) -> Result:
    """Run one command with bash; a timeout counts as exit status 124."""
    argv = ["bash", "-c", command.text]
    cols = int(command.options["cols"]) if command.options.get("cols") else 0
    env = dict(env)
    if cols:
        env.update(COLUMNS=str(cols), LINES="50", TERM=env.get("TERM") or "xterm-256color")
    start = time.perf_counter()
    timeout = float(command.options.get("timeout") or 300)
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


def problems(command: Command, result: Result, readme: str) -> list[str]:
    """What differs from the README: a wrong exit status, or a diff per stream."""
    found = []
    want = int(command.options.get("exit") or 0)
    if result.status != want:
        tail = "\n".join(normalise(result.stderr)[-15:])
        found.append(f"exit status {result.status}, the README expects {want}; stderr ends:\n"
                     f"{tail}")
    for stream, block in command.expected.items():
        actual = normalise(getattr(result, stream))
        expected = normalise("\n".join(block.lines))
        if not matches(expected, actual):
            diff = difflib.unified_diff(expected, actual, f"{readme}:{block.line} (expected)",
                                        f"{stream} of the command", lineterm="")
            found.append("\n".join(diff))
    return found


# ----------------------------------------------------------------------------- main


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + ANY


def check(readme: Path, slow: bool, keep: bool) -> int:
    """Run every selected command in README order; print one line each and any diffs."""
    commands = plan(parse_blocks(readme.read_text(encoding="utf-8")))
    work = Path(tempfile.mkdtemp(prefix="check-readme-"))
    for name in COPIED:
        if (readme.parent / name).is_dir():
            shutil.copytree(readme.parent / name, work / name)
    env, failed, skipped, start = child_env(), 0, 0, time.perf_counter()
    try:
        for command in commands:
            where = f"{readme.name}:{command.line}"
            if "slow" in command.options and not slow:
                skipped += 1
                print(f"skip  {where}  {_short(command.text)} (slow: --slow runs it)")
                continue
            result = run_command(command, work, env)
            found = problems(command, result, readme.name)
            failed += bool(found)
            print(f"{'FAIL' if found else 'ok  '}  {where}  {_short(command.text)} "
                  f"({result.seconds:.1f} s)", flush=True)
            for problem in found:
                print("\n".join("      " + line for line in problem.splitlines()), flush=True)
    finally:
        if keep:
            print(f"the commands ran in {work} (kept)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    ran = len(commands) - skipped
    print(f"check_readme: {ran} commands, {ran - failed} as the README shows, {failed} not"
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
            for command in plan(parse_blocks(args.readme.read_text(encoding="utf-8"))):
                streams = ",".join(command.expected) or "exit status only"
                print(f"{args.readme.name}:{command.line}  [{streams}]  {command.text}")
            return 0
        return check(args.readme, args.slow, args.keep)
    except ReadmeError as exc:
        print(f"check_readme: {args.readme}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

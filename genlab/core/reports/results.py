"""Output directories of ``genlab compare`` and ``genlab sweep``, and their ``results.jsonl``.

Owns the on-disk contract that makes both commands resumable:

```
<out>/
  spec.json       the resolved spec ({"kind", "name", ...}); a rerun into the same directory
                  must have the same identity (compare: everything but batching and device;
                  sweep: everything but the budget, pruner and retrain settings)
  results.jsonl   one strict-JSON object per finished cell or trial, appended and flushed as
                  each finishes; the source of truth for what is done
  report.md  report.html  plots/*.png     written by genlab.core.reports.report
```

Appends are one ``os.write`` of a whole line on an ``O_APPEND`` descriptor under an exclusive
``flock`` (where available), so several worker processes can append to one file without ever
interleaving or tearing lines. A process killed mid-write leaves at most one partial last
line: readers skip lines that do not parse, and ``repair_results`` truncates the file to its
last complete line before a run appends again.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from genlab.core.training.run_dir import jsonable, write_json_atomic

RESULTS_FILE = "results.jsonl"
SPEC_FILE = "spec.json"
DEFAULT_ROOT = "runs"


class OutDirError(ValueError):
    """The output directory cannot be used for this spec (one-line message)."""


def default_out_dir(kind: str, name: str, root: str | Path = DEFAULT_ROOT) -> Path:
    """``root/<kind>-<YYYYmmdd-HHMMSS>-<name>``, never an existing directory (not created)."""
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or kind
    base = Path(root) / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{label}"
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{n}")
        n += 1
    return candidate


def check_out_dir(out: str | Path, kind: str, identity: dict[str, Any]) -> bool:
    """Check that ``out`` is new, empty, or a resumable output of the same spec.

    Returns:
        True when ``out`` already holds this spec's output (the run resumes it).

    Raises:
        OutDirError: ``out`` is a file, a non-empty unrelated directory, or holds another spec.
    """
    out = Path(out)
    if not out.exists():
        return False
    if not out.is_dir():
        raise OutDirError(f"--out {out}: exists and is not a directory")
    spec_file = out / SPEC_FILE
    if not spec_file.is_file():
        if any(out.iterdir()):
            raise OutDirError(f"--out {out}: exists, is not empty and holds no {SPEC_FILE}; "
                              f"choose a new directory")
        return False
    try:
        stored = json.loads(spec_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise OutDirError(f"--out {out}: cannot read its {SPEC_FILE} ({err})") from None
    if stored.get("kind") != kind:
        raise OutDirError(f"--out {out}: holds a {stored.get('kind')} output, not a {kind}; "
                          "choose another directory")
    mine = jsonable(identity)
    theirs = stored.get("identity", {})
    if mine != theirs:
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise OutDirError(f"--out {out}: holds the results of a different spec (differs in: "
                          f"{', '.join(differ)}); choose another --out to start afresh")
    return True


def open_out_dir(out: str | Path, spec_data: dict[str, Any], identity: dict[str, Any]) -> None:
    """Create ``out`` (if needed), write ``spec.json`` and repair ``results.jsonl``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / SPEC_FILE, {**spec_data, "identity": identity})
    repair_results(out / RESULTS_FILE)


def append_row(path: str | Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one strict-JSON line, atomically with respect to other appenders."""
    data = (json.dumps(jsonable(row), allow_nan=False, ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        _lock(fd)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)  # closing releases the lock


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: O_APPEND alone
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every complete row of a results file (lines that do not parse are skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a partial last line from a kill
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def repair_results(path: str | Path) -> None:
    """Truncate a results file to its last complete line (after a kill mid-write)."""
    path = Path(path)
    if not path.exists():
        return
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    with open(path, "r+b") as f:
        f.truncate(data.rfind(b"\n") + 1)

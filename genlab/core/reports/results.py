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
line: readers skip lines that do not parse, and ``open_out_dir`` truncates the file to its
last complete line before a run appends again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genlab.core.io import (
    append_jsonl,
    fresh_dir,
    jsonable,
    read_jsonl,
    truncate_torn_line,
    write_json_atomic,
)

RESULTS_FILE = "results.jsonl"
SPEC_FILE = "spec.json"
DEFAULT_ROOT = "runs"


class OutDirError(ValueError):
    """The output directory cannot be used for this spec (one-line message)."""


def default_out_dir(kind: str, name: str, root: str | Path = DEFAULT_ROOT) -> Path:
    """``root/<kind>-<YYYYmmdd-HHMMSS>-<name>``, never an existing directory (not created)."""
    return fresh_dir(root, name or kind, prefix=f"{kind}-")


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
    truncate_torn_line(out / RESULTS_FILE)


def append_row(path: str | Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one strict-JSON line, atomically with respect to other appenders."""
    append_jsonl(path, row)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every complete row of a results file (lines that do not parse are skipped)."""
    return read_jsonl(path)

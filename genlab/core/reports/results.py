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

from genlab.core.errors import one_line
from genlab.core.io import (
    OutDirError,
    append_jsonl,
    claim_out_dir,
    clear_dir,
    fresh_dir,
    jsonable,
    read_jsonl,
    read_text_limited,
    truncate_torn_line,
    write_json_atomic,
    write_marker,
)

RESULTS_FILE = "results.jsonl"
SPEC_FILE = "spec.json"
DEFAULT_ROOT = "runs"
SPEC_JSON_LIMIT = 16 << 20
"""Largest ``spec.json`` read back (16 MiB; it holds a spec and its prompts)."""
__all__ = ["RESULTS_FILE", "SPEC_FILE", "OutDirError", "append_row", "check_out_dir",
           "default_out_dir", "open_out_dir", "read_rows"]


def default_out_dir(kind: str, name: str, root: str | Path = DEFAULT_ROOT) -> Path:
    """``root/<kind>-<YYYYmmdd-HHMMSS>-<name>``, never an existing directory (not created)."""
    return fresh_dir(root, name or kind, prefix=f"{kind}-")


def _stored_spec(out: Path) -> dict[str, Any] | None:
    """``spec.json`` of ``out`` (None when absent); ``OutDirError`` when it does not read."""
    spec_file = out / SPEC_FILE
    if not spec_file.is_file():
        return None
    try:
        stored = json.loads(read_text_limited(spec_file, SPEC_JSON_LIMIT, f"--out {spec_file}"))
    except (OSError, ValueError) as err:
        raise OutDirError(f"--out {out}: cannot read {spec_file} ({one_line(str(err))}); "
                          "choose another --out, or pass --force to start afresh") from None
    if not isinstance(stored, dict):
        raise OutDirError(f"--out {out}: {spec_file} is not a JSON object; choose another "
                          "--out, or pass --force to start afresh")
    return stored


def check_out_dir(out: str | Path, kind: str, identity: dict[str, Any], *,
                  force: bool = False) -> str:
    """Check that ``out`` is new, empty, or a resumable output of the same spec.

    An output directory carries genlab's marker (``genlab.core.io.MARKER_FILE``); one written
    before markers existed is recognised by its ``spec.json`` of the same ``kind``.

    Returns:
        ``"new"``, ``"empty"``, ``"resume"`` (``out`` holds this spec's output: finished work is
        kept) or ``"replace"`` (``force`` over something else: ``open_out_dir`` clears it).

    Raises:
        OutDirError: ``out`` is a file, a directory genlab did not write, another kind of
            output or another spec's output (the last three only without ``force``).
    """
    out = Path(out)

    def legacy(path: Path) -> bool:
        try:
            return (_stored_spec(path) or {}).get("kind") == kind
        except OutDirError:
            return False

    state = claim_out_dir(out, kind, force=force, is_legacy=legacy)
    if state != "same":
        return state
    try:
        stored = _stored_spec(out)
    except OutDirError:
        if force:
            return "replace"
        raise
    if stored is None:  # marked, killed before spec.json was written: nothing to keep
        return "resume"
    mine, theirs = jsonable(identity), stored.get("identity", {})
    if stored.get("kind") != kind or mine != theirs:
        if force:
            return "replace"
        if stored.get("kind") != kind:
            raise OutDirError(f"--out {out}: holds a {stored.get('kind')} output, not a {kind}; "
                              "choose another directory")
        differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise OutDirError(f"--out {out}: holds the results of a different spec (differs in: "
                          f"{', '.join(differ)}); choose another --out, or pass --force to "
                          "start afresh")
    return "resume"


def open_out_dir(out: str | Path, spec_data: dict[str, Any], identity: dict[str, Any],
                 state: str = "new") -> None:
    """Create ``out`` (cleared first when ``state`` is ``replace``), mark it, write
    ``spec.json`` and repair ``results.jsonl``."""
    out = Path(out)
    if state == "replace" and out.is_dir():
        clear_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, spec_data.get("kind", "compare"))
    write_json_atomic(out / SPEC_FILE, {**spec_data, "identity": identity})
    truncate_torn_line(out / RESULTS_FILE)


def append_row(path: str | Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one strict-JSON line, atomically with respect to other appenders."""
    append_jsonl(path, row)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every complete row of a results file (lines that do not parse are skipped)."""
    return read_jsonl(path)

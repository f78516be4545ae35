"""The spec files the Experiments screen offers: the shipped lessons first, in teaching order.

Owns finding spec files (``prompts/specs/`` of the working directory and of the source tree
genlab runs from), reading each one's one-line "what this shows" (the ``# Lesson:`` comment on
its first line, else the first sentence of its description), and finding an output
directory of the same spec under the runs folder that a rerun would resume. Reads YAML only
(no torch), so the list is there as soon as the screen is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.core.io import jsonable, read_jsonl
from genlab.core.reports.results import RESULTS_FILE, SPEC_FILE, OutDirError, check_out_dir
from genlab.core.specs.common import SpecError, read_spec_file

LESSON_ORDER = ("learning-rate", "warmup", "schedules", "batch-size", "optimizers",
                "lora-rank-alpha", "early-stopping", "model-complexity", "temperature-top-k",
                "repetition-penalties", "truncation-samplers", "mirostat", "sampler-order",
                "xtc", "search-grid", "search-random", "search-bayes")
"""The seed lessons in the order a learner meets them (keys 1-9 pick the first nine); the
sampler lessons follow temperature x top-k, in docs/specs.md's order."""
SPEC_DIR = Path("prompts") / "specs"
_LESSON = re.compile(r"^#\s*Lesson:\s*(.+?)\.?\s*$")


@dataclass(frozen=True)
class SpecEntry:
    """One spec file in the list."""

    path: Path
    name: str
    kind: str
    summary: str


def spec_roots() -> list[Path]:
    """Where spec files are looked for: ``./prompts/specs`` and the source tree's."""
    here = Path(__file__).resolve().parents[2] / SPEC_DIR
    roots = [Path.cwd() / SPEC_DIR, here]
    out: list[Path] = []
    for root in roots:
        if root.is_dir() and root.resolve() not in [r.resolve() for r in out]:
            out.append(root)
    return out


def find_specs(roots: list[Path] | None = None) -> list[SpecEntry]:
    """Every readable spec under ``roots``, lessons in ``LESSON_ORDER`` first."""
    entries: dict[str, SpecEntry] = {}
    for root in roots if roots is not None else spec_roots():
        for path in sorted(root.glob("*.yaml")):
            entry = read_entry(path)
            if entry is not None:
                entries.setdefault(entry.name, entry)
    order = {name: n for n, name in enumerate(LESSON_ORDER)}
    return sorted(entries.values(), key=lambda e: (order.get(e.name, len(order)), e.name))


def read_entry(path: Path) -> SpecEntry | None:
    """The list entry of a spec file (None when it is not a readable spec)."""
    try:
        data, _ = read_spec_file(path)
    except SpecError:
        return None
    kind = data.get("kind") or ("sweep" if "search" in data else "compare")
    name = str(data.get("name") or path.stem)
    return SpecEntry(path, name, str(kind), lesson_line(path, data))


def lesson_line(path: Path, data: dict[str, Any]) -> str:
    """``the learning rate (too small, good, oscillating, diverging)``."""
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        first = ""
    match = _LESSON.match(first)
    if match:
        return match.group(1).split(". ")[0].rstrip(".")
    description = " ".join(str(data.get("description") or "").split())
    return description.split(". ")[0].rstrip(".") if description else ""


def find_resumable(runs_dir: Path, spec: Any) -> tuple[Path, int] | None:
    """The newest unfinished output of ``spec`` under ``runs_dir`` and its finished count.

    An output is this spec's when its ``spec.json`` has the same identity (what ``genlab
    sweep --out`` would accept for a resume); it is unfinished while it has fewer finished
    trials (cells) than the spec asks for.
    """
    if not runs_dir.is_dir():
        return None
    identity = jsonable(spec.identity())
    want = spec.budget if spec.kind == "sweep" else len(spec.cells())
    found = []
    for out in runs_dir.glob(f"{spec.kind}-*"):
        if not (out / SPEC_FILE).is_file():
            continue
        try:
            if not check_out_dir(out, spec.kind, identity):
                continue
        except OutDirError:
            continue
        done = finished_count(out, spec.kind)
        if done < want:
            found.append((out.stat().st_mtime, out, done))
    if not found:
        return None
    _, out, done = max(found)
    return out, done


def finished_count(out: Path, kind: str) -> int:
    """Trials (sweep) or cells (compare) with a row in ``results.jsonl``."""
    key = "trial" if kind == "sweep" else "key"
    return len({row.get(key) for row in read_jsonl(out / RESULTS_FILE)})

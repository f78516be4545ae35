"""Run the shipped lesson specs (prompts/specs/*.yaml) one after another and time each.

Produces the figures of the README's "What the lesson specs show" table: for every spec, its
wall-clock and CPU time, the trial counts by status, and each trial's (or cell's) settings and
result. Each spec runs through the public Python API (``genlab.compare`` / ``genlab.sweep``) into
``OUT/<spec name>/``, exactly as ``genlab compare|sweep SPEC --out OUT/<name>`` would, so each
folder holds the usual results.jsonl, report.md and report.html. Rerunning into the same OUT
skips finished cells and trials (then the times are those of the rerun only).

Specs that read the team's TinyStories copy (``batch-size``) find it through
``$GENLAB_DATA_DIR`` when set (else at the spec's default, ``../shared/data``).

Usage::

    python scripts/run_lesson_specs.py --out /tmp/lessons                 # all specs
    python scripts/run_lesson_specs.py --out /tmp/lessons learning-rate warmup
    python scripts/run_lesson_specs.py --out /tmp/lessons --workers 2     # grids: 2 processes

``--workers`` applies to grid sweeps only: a grid trial's numbers do not depend on the worker
count (every trial trains with one torch thread), but random and Bayesian search draw their
points in the order trials are claimed and finish, which several workers make timing-dependent;
those run in one worker, so every number reproduces. It writes ``OUT/lessons.json`` (updated
after every spec) and prints one Markdown table; ``scripts/lesson_tables.py`` turns it into
the README's and docs/specs.md's tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO / "prompts" / "specs"


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def trial_summary(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of one results.jsonl row that the README table needs."""
    keep = ("trial", "cell", "status", "params", "settings", "best_eval_loss", "objective",
            "final_train_loss", "final_eval_loss", "steps", "wall_time_s", "note")
    return {key: row[key] for key in keep if key in row}


def corpus_overrides(path: Path) -> list[str]:
    """``vars.corpus=...`` for specs reading the team's TinyStories copy, when
    ``$GENLAB_DATA_DIR`` says where it is (a worktree has no ``../shared/data``)."""
    import yaml

    data_dir = os.environ.get("GENLAB_DATA_DIR")
    spec_vars = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("vars") or {}
    if not data_dir or "corpus" not in spec_vars:
        return []
    return [f"vars.corpus={Path(data_dir) / 'tinystories'}"]


def run_one(path: Path, out: Path, workers: int) -> dict[str, Any]:
    """Run one spec; return its timing and summary."""
    import genlab

    overrides = corpus_overrides(path)
    spec = genlab.load_spec(path, overrides=overrides)
    kind = type(spec).__name__.replace("Spec", "").lower()
    if kind == "sweep" and spec.method != "grid":
        workers = 1  # sampled points depend on the order trials finish in several workers
    wall0, cpu0, load0 = time.perf_counter(), cpu_seconds(), os.getloadavg()[0]
    if kind == "compare":
        result = genlab.compare(path, out_dir=out, overrides=overrides)
        counts = {"cells": len(result.rows)}
        best = None
    else:
        result = genlab.sweep(path, out_dir=out, workers=workers, overrides=overrides)
        counts = dict(result.counts)
        best = trial_summary(result.best) if result.best else None
    return {
        "spec": path.stem, "kind": kind, "wall_s": round(time.perf_counter() - wall0, 1),
        "cpu_s": round(cpu_seconds() - cpu0, 1), "workers": workers if kind == "sweep" else 1,
        "counts": counts, "best": best, "report": str(result.report_path),
        "load_avg": [round(load0, 1), round(os.getloadavg()[0], 1)],
        "rows": [trial_summary(row) for row in result.rows],
    }


def run_meta(argv: list[str] | None) -> dict[str, Any]:
    """Where and how the figures were measured (the tables quote it)."""
    import subprocess

    import torch

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "genlab"],
                           capture_output=True, text=True).stdout.strip()
    return {"command": "python scripts/run_lesson_specs.py " + " ".join(
                argv if argv is not None else sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"), "commit": commit + ("+changes" if dirty else ""),
            "torch": torch.__version__, "cpus": os.cpu_count()}


def markdown(results: list[dict[str, Any]]) -> str:
    """One table row per spec."""
    lines = ["| spec | kind | wall | CPU | runs | best |", "|---|---|---|---|---|---|"]
    for item in results:
        runs = ", ".join(f"{count} {status}" for status, count in item["counts"].items())
        best = item.get("best") or {}
        shown = best.get("best_eval_loss", best.get("objective", ""))
        best_text = f"{shown:.4g}" if isinstance(shown, float) else str(shown or "-")
        lines.append(f"| {item['spec']} | {item['kind']} | {item['wall_s'] / 60:.1f} min | "
                     f"{item['cpu_s'] / 60:.1f} min | {runs} | {best_text} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Output folder (one per spec).")
    parser.add_argument("--workers", type=int, default=1, help="Worker processes per sweep.")
    parser.add_argument("specs", nargs="*", help="Spec names (default: every shipped spec).")
    args = parser.parse_args(argv)
    names = args.specs or sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))
    missing = [name for name in names if not (SPEC_DIR / f"{name}.yaml").is_file()]
    if missing:
        sys.exit(f"error: no spec {', '.join(missing)} in {SPEC_DIR}")
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "lessons.json"
    done = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    done["_meta"] = run_meta(argv)
    for name in names:
        print(f"== {name}", flush=True)
        item = run_one(SPEC_DIR / f"{name}.yaml", args.out / name, args.workers)
        done[name] = item
        print(f"   {item['wall_s']:.0f} s wall, {item['cpu_s']:.0f} s CPU, {item['counts']}",
              flush=True)
        tmp = summary_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(done, indent=1, default=str))
        tmp.replace(summary_path)
    print(markdown([done[name] for name in names]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

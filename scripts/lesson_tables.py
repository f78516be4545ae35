"""Rewrite the lesson tables of README.md and docs/specs.md from one run of the lesson specs.

    python scripts/run_lesson_specs.py --out runs/lessons --workers 2    # minutes to hours
    python scripts/lesson_tables.py runs/lessons                         # rewrites both tables

Reads ``OUT/lessons.json`` (written by ``run_lesson_specs.py``) and the trials' run
directories under ``OUT/<spec>/``, and replaces what lies between the markers
``<!-- lessons:readme:begin -->`` / ``end`` in README.md and ``<!-- lessons:specs:begin -->``
/ ``end`` in docs/specs.md. Every number in those tables comes from that run; each table
says the command, date, commit, machine load and torch version it was measured with.
``--print`` shows both tables instead of writing.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"readme": REPO / "README.md", "specs": REPO / "docs" / "specs.md"}
GOOD = ("completed", "early-stopped")


# ----------------------------------------------------------------------------- facts


class Lesson:
    """One spec's measured rows, their run directories and its timing."""

    def __init__(self, out: Path, name: str, item: dict[str, Any]) -> None:
        self.name, self.item, self.dir = name, item, out / name
        self.rows = item.get("rows", [])

    def row(self, **params: Any) -> dict[str, Any]:
        """The row whose params include ``params`` (by value)."""
        for row in self.rows:
            got = row.get("params", {})
            if all(_same(got.get(k), v) for k, v in params.items()):
                return row
        raise KeyError(f"{self.name}: no trial with {params}")

    def metrics(self, row: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        path = self.dir / "trials" / f"{row['trial']:04d}" / "metrics.jsonl"
        if not path.is_file():
            return []
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return [m for m in lines if m.get("type") == kind]

    def base_eval(self) -> float | None:
        """The step-0 eval loss (the base model's), shared by every trial of a LoRA sweep."""
        for row in self.rows:
            evals = self.metrics(row, "eval")
            if evals and evals[0].get("step") == 0 and evals[0].get("loss") is not None:
                return evals[0]["loss"]
        return None

    def never_improved(self, row: dict[str, Any]) -> bool:
        """True when no evaluation after step 0 beat the step-0 one."""
        evals = [m for m in self.metrics(row, "eval") if m.get("loss") is not None]
        if len(evals) < 2 or evals[0].get("step") != 0:
            return False
        return min(m["loss"] for m in evals[1:]) >= evals[0]["loss"]

    def last_finite_train(self, row: dict[str, Any]) -> float | None:
        losses = [m.get("loss") for m in self.metrics(row, "train")]
        finite = [x for x in losses if isinstance(x, float) and math.isfinite(x)]
        return finite[-1] if finite else None

    def max_train(self, row: dict[str, Any]) -> float:
        losses = [m.get("loss") for m in self.metrics(row, "train")]
        return max(x for x in losses if isinstance(x, float) and math.isfinite(x))

    def time(self) -> str:
        return _minutes(self.item["wall_s"])

    def time_cpu(self) -> str:
        return f"{self.time()} ({_minutes(self.item['cpu_s'])})"

    def runs(self) -> str:
        counts = self.item.get("counts", {})
        return ", ".join(f"{n} {status}" for status, n in counts.items())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
            math.isclose(a, b, rel_tol=1e-9)
    return a == b


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def loss(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def outcome(lesson: Lesson, row: dict[str, Any], digits: int = 3) -> str:
    """The best eval loss of a finished trial, or how it ended. A run whose best evaluation
    is the step-0 one (the untrained start) never improved: then its final eval loss."""
    status = row.get("status")
    if status in GOOD and lesson.never_improved(row):
        return f"never below its start, ends at {loss(row.get('final_eval_loss'), digits)}"
    if status in GOOD:
        return loss(row.get("best_eval_loss"), digits)
    if status == "diverged":
        last = lesson.last_finite_train(row)
        tail = f", last finite loss {last:.2f}" if last is not None else ""
        return f"diverged at step {row.get('steps')}{tail}"
    if status == "pruned":
        return f"pruned at step {row.get('steps')}"
    return str(status)


# ----------------------------------------------------------------------------- per spec
# Each returns (README cell, docs/specs.md cell).


def distinct2(row: dict[str, Any]) -> float:
    """Unique word bigrams / all word bigrams of a compare cell (the report's column)."""
    grams: list[tuple[str, str]] = []
    for output in row.get("outputs", []):
        words = output.get("text", "").split()
        grams += list(zip(words, words[1:], strict=False))
    return len(set(grams)) / len(grams) if grams else float("nan")


def temperature_top_k(lesson: Lesson) -> tuple[str, str]:
    rows = [json.loads(line) for line in
            (lesson.dir / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    d = {(r["settings"]["temperature"], r["settings"]["top_k"]): distinct2(r) for r in rows}
    short = (f"distinct bigrams {d[(0.0, 0)]:.2f} (T=0) -> {d[(1.5, 0)]:.2f} (T=1.5); "
             f"top-k 40 at T=1.5: {d[(1.5, 40)]:.2f}")
    temps = ", ".join(f"{d[(t, 0)]:.2f} at T={t:g}" for t in (0.0, 0.7, 1.0, 1.5))
    long = (f"distinct word bigrams without top-k: {temps}; with top-k 40: "
            + ", ".join(f"{d[(t, 40)]:.2f}" for t in (0.0, 0.7, 1.0, 1.5))
            + " (T=0 is greedy: both samples are the same text)")
    return short, long


def learning_rate(lesson: Lesson) -> tuple[str, str]:
    lrs = (1e-5, 1e-3, 3e-2, 1.0)
    rows = {lr: lesson.row(lr=lr) for lr in lrs}
    short = "best eval loss: " + ", ".join(f"lr {lr:g} {outcome(lesson, rows[lr], 2)}"
                                           for lr in lrs)
    base = lesson.base_eval()
    parts = [f"base model {loss(base, 2)}"]
    for lr in lrs:
        row, extra = rows[lr], ""
        if row.get("status") in GOOD and lr >= 3e-2:
            extra = f" (train loss peaks at {lesson.max_train(row):.1f})"
        parts.append(f"lr {lr:g}: {outcome(lesson, row)}{extra}")
    return short, "; ".join(parts)


def batch_size(lesson: Lesson) -> tuple[str, str]:
    def line(lr: float) -> str:
        rows = [lesson.row(lr=lr, batch_size=b) for b in (1, 4, 16)]
        if all(r.get("status") in GOOD and lesson.never_improved(r) for r in rows):
            finals = " / ".join(loss(r.get("final_eval_loss")) for r in rows)
            return f"{finals} at the end (none gets below its start, {loss(lesson.base_eval())})"
        return " / ".join(outcome(lesson, r) for r in rows)

    text = f"batch 1 / 4 / 16: {line(1e-3)} at lr 1e-3; {line(1e-2)} at lr 1e-2"
    return text, "eval loss, best (or at the end), " + text


def model_complexity(lesson: Lesson) -> tuple[str, str]:
    labels = ("tiny 1x32", "small 2x64", "medium 4x128", "large 6x256")
    rows = [lesson.row(size=label) for label in labels]
    pairs = [f"{label.split()[0]} {loss(r.get('final_train_loss'), 2)} / "
             f"{loss(r.get('final_eval_loss'), 2)}" for label, r in zip(labels, rows, strict=True)]
    long = "final train / eval loss: " + ", ".join(
        f"{label} {loss(r.get('final_train_loss'), 2)} / {loss(r.get('final_eval_loss'), 2)} "
        f"(best eval {loss(r.get('best_eval_loss'))})" for label, r in zip(labels, rows,
                                                                            strict=True))
    return "train / eval: " + ", ".join(pairs), long


def warmup(lesson: Lesson) -> tuple[str, str]:
    def pair(lr: float) -> tuple[str, str]:
        return (outcome(lesson, lesson.row(lr=lr, warmup_steps=0)),
                outcome(lesson, lesson.row(lr=lr, warmup_steps=25)))

    (a0, a25), (b0, b25) = pair(2e-2), pair(3e-3)
    short = f"lr 2e-2: {a0} without warmup, {a25} with 25 steps; lr 3e-3: {b0} vs {b25}"
    return short, f"best eval loss, no warmup vs 25 warmup steps: {short}"


def schedules(lesson: Lesson) -> tuple[str, str]:
    names = ("constant", "linear", "cosine", "step")
    rows = {n: lesson.row(schedule=n) for n in names}
    train = ", ".join(f"{n} {loss(rows[n].get('final_train_loss'))}" for n in names)
    best = ", ".join(f"{n} {outcome(lesson, rows[n])}" for n in names)
    return (f"final train loss {train}; best eval loss {best}",
            f"final train loss: {train}; best eval loss: {best}")


def optimizers(lesson: Lesson) -> tuple[str, str]:
    labels = ("SGD lr 0.03", "SGD lr 0.3", "SGD+momentum lr 0.03", "Adam", "AdamW wd 0.1",
              "Adam+L2 0.1")
    text = "; ".join(f"{label}: {outcome(lesson, lesson.row(setup=label))}" for label in labels)
    return text, "best eval loss: " + text


def lora_rank_alpha(lesson: Lesson) -> tuple[str, str]:
    def spread(alpha: int) -> str:
        values = [lesson.row(rank=r, alpha=alpha).get("best_eval_loss") for r in (2, 8, 32)]
        values = [v for v in values if v is not None]
        return f"{min(values):.3f}-{max(values):.3f}" if values else "-"

    short = (f"alpha 4 / 16 / 64: {spread(4)} / {spread(16)} / {spread(64)} over ranks 2, 8 "
             "and 32")
    cells = "; ".join(f"alpha {a}: " + ", ".join(
        f"rank {r} {outcome(lesson, lesson.row(rank=r, alpha=a))}" for r in (2, 8, 32))
        for a in (4, 16, 64))
    return short, f"best eval loss: {cells}"


def search(lesson: Lesson) -> tuple[str, str]:
    best = lesson.item.get("best") or {}
    params = best.get("params", {})
    where = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in params.items())
    value = best.get("objective")
    text = f"best {loss(value)} ({where}) of {len(lesson.rows)} trials"
    pruned = [r for r in lesson.rows if r.get("status") == "pruned"]
    if pruned:
        steps = sorted({r.get("steps") for r in pruned})
        text += f"; {len(pruned)} pruned, at step " + " or ".join(map(str, steps))
    return text, text


def early_stopping(lesson: Lesson) -> tuple[str, str]:
    rows = {p: lesson.row(patience=p) for p in (0, 3, 5)}
    parts = [f"patience {p}: best {loss(r.get('best_eval_loss'))}, {r.get('status')} at step "
             f"{r.get('steps')} in {r.get('wall_time_s', 0):.0f} s" for p, r in rows.items()]
    return "; ".join(parts), "; ".join(parts)


def any_compare(lesson: Lesson) -> tuple[str, str]:
    """A lesson without its own summary: each cell's distinct word bigrams."""
    rows = [json.loads(line) for line in
            (lesson.dir / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    text = "distinct word bigrams: " + ", ".join(
        f"{r.get('label', r.get('cell'))} {distinct2(r):.2f}" for r in rows)
    return text, text


def summary_of(lesson: Lesson) -> tuple[str, str]:
    """(README cell, docs cell) of any lesson: its own summary, else a generic one."""
    own = SUMMARIES.get(lesson.name)
    if own is not None:
        return own(lesson)
    return any_compare(lesson) if lesson.item.get("kind") == "compare" else search(lesson)


SUMMARIES: dict[str, Callable[[Lesson], tuple[str, str]]] = {
    "temperature-top-k": temperature_top_k, "learning-rate": learning_rate,
    "batch-size": batch_size, "model-complexity": model_complexity, "warmup": warmup,
    "schedules": schedules, "optimizers": optimizers, "lora-rank-alpha": lora_rank_alpha,
    "search-grid": search, "search-random": search, "search-bayes": search,
    "early-stopping": early_stopping,
}
ORDER = list(SUMMARIES)
"""Table order; shipped specs without their own summary follow, by name."""


# ----------------------------------------------------------------------------- tables


def measured_line(meta: dict[str, Any], lessons: list[Lesson]) -> str:
    loads = [x for lesson in lessons for x in lesson.item.get("load_avg", [])]
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "?"
    return (f"Measured {meta.get('date', '?')} at commit {meta.get('commit', '?')} (torch "
            f"{meta.get('torch', '?')}, {meta.get('cpus', '?')} CPUs, load average {load} while "
            f"other jobs shared the machine) by `{meta.get('command', '?')}`, then "
            f"`python scripts/lesson_tables.py {meta.get('out', 'OUT')}`, which wrote this table.")


def readme_table(meta: dict[str, Any], lessons: list[Lesson]) -> str:
    lines = [measured_line(meta, lessons), "", "| spec | time | what you see |", "|---|---|---|"]
    searches = [lesson for lesson in lessons if lesson.name.startswith("search-")]
    for lesson in lessons:
        if lesson.name.startswith("search-"):
            if lesson is searches[0]:
                times = " / ".join(s.time() for s in searches)
                bests = " / ".join(search(s)[0] for s in searches)
                lines.append(f"| `search-grid` / `-random` / `-bayes` | {times} | {bests} |")
            continue
        lines.append(f"| `{lesson.name}` | {lesson.time()} | {summary_of(lesson)[0]} |")
    return "\n".join(lines)


def specs_table(meta: dict[str, Any], lessons: list[Lesson]) -> str:
    lines = [measured_line(meta, lessons), "",
             "| spec | wall time (CPU time) | runs | what you see |", "|---|---|---|---|"]
    for lesson in lessons:
        runs = lesson.runs() if lesson.item.get("kind") != "compare" else \
            f"{lesson.item.get('counts', {}).get('cells', '?')} cells"
        lines.append(f"| `{lesson.name}` | {lesson.time_cpu()} | {runs} | "
                     f"{summary_of(lesson)[1]} |")
    return "\n".join(lines)


def replace_between(text: str, key: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- lessons:{key}:begin -->\n).*?(\n<!-- lessons:{key}:end -->)",
                         re.S)
    if not pattern.search(text):
        raise SystemExit(f"error: no <!-- lessons:{key}:begin/end --> markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="The --out of run_lesson_specs.py.")
    parser.add_argument("--print", action="store_true", help="Print instead of writing.")
    args = parser.parse_args(argv)
    data = json.loads((args.out / "lessons.json").read_text(encoding="utf-8"))
    shipped = sorted(p.stem for p in (REPO / "prompts" / "specs").glob("*.yaml"))
    missing = [name for name in shipped if name not in data]
    if missing:
        raise SystemExit(f"error: {args.out}/lessons.json lacks {', '.join(missing)}; run "
                         "scripts/run_lesson_specs.py for them first")
    names = [n for n in ORDER if n in shipped] + [n for n in shipped if n not in ORDER]
    lessons = [Lesson(args.out, name, data[name]) for name in names]
    meta = {**data.get("_meta", {}), "out": args.out.as_posix()}
    tables = {"readme": readme_table(meta, lessons), "specs": specs_table(meta, lessons)}
    for key, path in TARGETS.items():
        if args.print:
            print(f"== {path.name}\n{tables[key]}\n")
            continue
        path.write_text(replace_between(path.read_text(encoding="utf-8"), key, tables[key]),
                        encoding="utf-8")
        print(f"rewrote the lesson table of {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

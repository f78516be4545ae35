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
        """The trial row whose params include ``params`` (by value)."""
        return find_row(self.rows, params, f"{self.name}: no trial")

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

    def cells(self) -> str:
        """A compare lesson's size: ``8 cells x 8 prompts x 2 samples`` (from its spec.json)."""
        cells = self.item.get("counts", {}).get("cells", "?")
        spec_file = self.dir / "spec.json"
        if not spec_file.is_file():
            return f"{cells} cells"
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
        prompts, samples = len(spec.get("prompts", [])), spec.get("samples", 1)
        return f"{cells} cells x {prompts} prompts x {samples} samples"

    def runs(self) -> str:
        counts = self.item.get("counts", {})
        return ", ".join(f"{n} {status}" for status, n in counts.items())


def find_row(rows: list[dict[str, Any]], params: dict[str, Any], missing: str) -> dict[str, Any]:
    """The first row whose ``params`` include ``params`` (floats compared by value)."""
    for row in rows:
        got = row.get("params", {})
        if all(_same(got.get(k), v) for k, v in params.items()):
            return row
    raise KeyError(f"{missing} with {params}")


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


def logprob(row: dict[str, Any]) -> float:
    """Mean log-probability per token of a cell's texts under the model (the report's column)."""
    scored = [(o["base_logprob"], o.get("new_tokens", 0)) for o in row.get("outputs", [])
              if o.get("base_logprob") is not None and o.get("new_tokens")]
    tokens = sum(n for _, n in scored)
    return sum(lp for lp, _ in scored) / tokens if tokens else float("nan")


def perplexity(row: dict[str, Any]) -> float:
    return math.exp(-logprob(row))


class Cells:
    """A compare lesson's cells (its results.jsonl), found by their sampling params."""

    def __init__(self, lesson: Lesson) -> None:
        self.rows = [json.loads(line) for line in
                     (lesson.dir / "results.jsonl").read_text(encoding="utf-8").splitlines()]
        self.name = lesson.name

    def __call__(self, **params: Any) -> dict[str, Any]:
        return find_row(self.rows, params, f"{self.name}: no cell")


def temperature_top_k(lesson: Lesson) -> tuple[str, str]:
    cell = Cells(lesson)
    c = {(t, k): cell(temperature=t, top_k=k) for t in (0.0, 0.7, 1.0, 1.5) for k in (0, 40)}
    short = (f"distinct bigrams {distinct2(c[0.0, 0]):.2f} (T=0) -> {distinct2(c[1.5, 0]):.2f} "
             f"(T=1.5, perplexity {perplexity(c[1.5, 0]):.0f} under the model); top-k 40 at "
             f"T=1.5: {distinct2(c[1.5, 40]):.2f}, perplexity {perplexity(c[1.5, 40]):.0f}")
    temps = ", ".join(f"{distinct2(c[t, 0]):.2f} at T={t:g} (log-prob {logprob(c[t, 0]):.2f})"
                      for t in (0.0, 0.7, 1.0, 1.5))
    long = (f"distinct word bigrams without top-k: {temps}; with top-k 40: "
            + ", ".join(f"{distinct2(c[t, 40]):.2f} ({logprob(c[t, 40]):.2f})"
                        for t in (0.0, 0.7, 1.0, 1.5))
            + " (T=0 is greedy: both samples are the same text; log-prob: the mean per token "
              "under the model, closer to 0 = more natural to it)")
    return short, long


REPETITION_FIXES = (
    ("penalty 1.3", {"repetition_penalty": 1.3}), ("presence 1.0", {"presence_penalty": 1.0}),
    ("frequency 0.7", {"frequency_penalty": 0.7}), ("DRY 0.8", {"dry_multiplier": 0.8}),
    ("no-repeat-3-gram", {"no_repeat_ngram": 3}))
NO_FIX = {"repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
          "dry_multiplier": 0.0, "no_repeat_ngram": 0}


def repetition_penalties(lesson: Lesson) -> tuple[str, str]:
    cell = Cells(lesson)

    def line(t: float) -> str:
        base = cell(temperature=t, **NO_FIX)
        fixes = "; ".join(f"{name} {distinct2(row):.2f} ({logprob(row):.2f})"
                          for name, row in ((n, cell(temperature=t, **{**NO_FIX, **p}))
                                            for n, p in REPETITION_FIXES))
        return f"no fix {distinct2(base):.2f} ({logprob(base):.2f}); {fixes}"

    short = "distinct bigrams (log-prob) at T=0: " + line(0.0)
    return short, short + "; at T=0.8: " + line(0.8)


TRUNCATIONS = (
    ("top-k 40", {"top_k": 40}), ("top-p 0.9", {"top_p": 0.9}), ("min-p 0.1", {"min_p": 0.1}),
    ("typical 0.9", {"typical_p": 0.9}), ("top-nσ 1", {"top_n_sigma": 1.0}),
    ("epsilon 0.003", {"epsilon_cutoff": 0.003}), ("eta 0.003", {"eta_cutoff": 0.003}))
NO_CUT = {"top_k": 0, "top_p": 1.0, "min_p": 0.0, "typical_p": 1.0, "top_n_sigma": 0.0,
          "epsilon_cutoff": 0.0, "eta_cutoff": 0.0}


def truncation_samplers(lesson: Lesson) -> tuple[str, str]:
    cell = Cells(lesson)
    plain = cell(**NO_CUT)
    cuts = sorted(((name, cell(**{**NO_CUT, **p})) for name, p in TRUNCATIONS),
                  key=lambda item: perplexity(item[1]))
    short = (f"perplexity under the model at T=1.5: no cut {perplexity(plain):.0f}; "
             + ", ".join(f"{name} {perplexity(row):.1f}" for name, row in cuts))
    long = (f"at T=1.5, log-prob (perplexity, distinct bigrams): no cut {logprob(plain):.2f} "
            f"({perplexity(plain):.0f}, {distinct2(plain):.2f}); "
            + "; ".join(f"{name} {logprob(row):.2f} ({perplexity(row):.1f}, "
                        f"{distinct2(row):.2f})" for name, row in cuts)
            + " (best first)")
    return short, long


def mirostat(lesson: Lesson) -> tuple[str, str]:
    cell = Cells(lesson)
    taus = (1.5, 2.5, 3.5, 5.0)

    def bits(version: int) -> str:
        return " / ".join(f"{-logprob(cell(mirostat=version, mirostat_tau=t)) / math.log(2):.2f}"
                          for t in taus)

    short = (f"measured bits per token for tau {' / '.join(f'{t:g}' for t in taus)}: "
             f"v1 {bits(1)}, v2 {bits(2)}")
    long = (short + "; distinct bigrams v1 "
            + " / ".join(f"{distinct2(cell(mirostat=1, mirostat_tau=t)):.2f}" for t in taus)
            + ", v2 " + " / ".join(f"{distinct2(cell(mirostat=2, mirostat_tau=t)):.2f}"
                                   for t in taus)
            + " (bits per token: log2 of the text's perplexity under the plain model)")
    return short, long


def sampler_order(lesson: Lesson) -> tuple[str, str]:
    cell = Cells(lesson)
    temps = (1.0, 1.5, 2.5)
    pairs = {t: (cell(temperature=t, sampler_order="transformers"),
                 cell(temperature=t, sampler_order="llama.cpp")) for t in temps}
    short = ("perplexity, transformers' order / llama.cpp's (top-p 0.9 + min-p 0.05): "
             + ", ".join(f"T={t:g} {perplexity(a):.1f} / {perplexity(b):.1f}"
                         for t, (a, b) in pairs.items()))
    long = ("log-prob (distinct bigrams), transformers' order / llama.cpp's: "
            + "; ".join(f"T={t:g} {logprob(a):.2f} ({distinct2(a):.2f}) / {logprob(b):.2f} "
                        f"({distinct2(b):.2f})" for t, (a, b) in pairs.items()))
    return short, long


def xtc(lesson: Lesson) -> tuple[str, str]:
    cell = Cells(lesson)
    off = cell(xtc_probability=0.0, xtc_threshold=0.1)

    def at(threshold: float) -> str:
        return ", ".join(
            f"p {p:g} {logprob(r):.2f} / {distinct2(r):.2f}"
            for p, r in ((p, cell(xtc_probability=p, xtc_threshold=threshold))
                         for p in (0.5, 1.0)))

    short = (f"log-prob / distinct bigrams (min-p 0.05): off {logprob(off):.2f} / "
             f"{distinct2(off):.2f}; threshold 0.1: {at(0.1)}; threshold 0.3: {at(0.3)}")
    return short, short


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
    "early-stopping": early_stopping, "repetition-penalties": repetition_penalties,
    "truncation-samplers": truncation_samplers, "mirostat": mirostat,
    "sampler-order": sampler_order, "xtc": xtc,
}
ORDER = list(SUMMARIES)
"""Table order; shipped specs without their own summary follow, by name."""


# ----------------------------------------------------------------------------- tables


def measured_line(meta: dict[str, Any], lessons: list[Lesson]) -> str:
    loads = [x for lesson in lessons for x in lesson.item.get("load_avg", [])]
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "?"
    return (f"Measured {meta.get('date', '?')} at commit {meta.get('commit', '?')} (torch "
            f"{meta.get('torch', '?')}, {meta.get('cpus', '?')} CPUs, load average {load}) by "
            f"`{meta.get('command', '?')}`, then "
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
        runs = lesson.runs() if lesson.item.get("kind") != "compare" else lesson.cells()
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

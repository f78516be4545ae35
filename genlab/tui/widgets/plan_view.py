"""What an experiment will do before it runs: its plan, its estimate and where it writes.

Owns the words of the plan: for a sweep its method, trials, objective, search space (each
dimension's values or range) and the base settings that matter; for a compare its cells
(axes crossed or paired), prompts and samples; then the estimate from the measured step time,
the output directory (new, or the unfinished one a run resumes) and how to edit a value.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from genlab.core.experiments.events import EstimateFinished, PointMeasured
from genlab.tui.widgets import tcss

BASE_SHOWN = ("max_steps", "epochs", "batch_size", "seq_len", "lr", "schedule", "warmup_steps",
              "optimizer", "rank", "alpha", "eval_every", "patience", "method")


def short(value: Any) -> str:
    """``0.001``, ``cosine``, ``[1, 4]``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def duration(seconds: float) -> str:
    """``45 s``, ``3.2 min``, ``1.4 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def describe_dim(dim: Any) -> str:
    """``lr ∈ {1e-05, 0.001}``, ``lr log-uniform in [0.0001, 0.03]``, ``setup: 6 choices``."""
    if dim.is_range:
        scale = "log-uniform " if dim.log else ""
        grid = f", {dim.num} grid points" if dim.num else ""
        return f"{dim.name} {scale}{dim.kind} in [{short(dim.low)}, {short(dim.high)}]{grid}"
    if dim.kind == "bundle":
        return f"{dim.name}: {', '.join(dim.choices)}"
    return f"{dim.name} ∈ {{{', '.join(short(c) for c in dim.choices)}}}"


def plan_text(spec: Any, estimate: str, output: str) -> Text:
    """The plan of ``spec`` with its ``estimate`` and ``output`` lines."""
    out = Text()
    if spec.kind == "sweep":
        out.append(f"{spec.name}", "bold")
        out.append(f" · sweep ({spec.method}) · {spec.trials} trials · minimise "
                   f"{spec.objective}\n")
        for dim in spec.search.dims:
            out.append("search ", "dim")
            out.append(describe_dim(dim) + "\n")
        base = [f"{k} {short(spec.base[k])}" for k in BASE_SHOWN if k in spec.base]
        if base:
            out.append("base ", "dim")
            out.append(" · ".join(base) + "\n")
        if spec.pruner.kind != "none":
            out.append("prune ", "dim")
            out.append(f"median after {spec.pruner.warmup_steps} steps\n")
        if spec.retrain_best:
            out.append("then ", "dim")
            out.append(f"retrain the best {spec.retrain_overrides or ''}\n")
    else:
        cells = spec.cells()
        out.append(f"{spec.name}", "bold")
        out.append(f" · compare · {len(cells)} cells × {len(spec.prompts)} prompts × "
                   f"{spec.samples} samples = {len(cells) * spec.rows_per_cell} generations\n")
        for axis in spec.axes:
            out.append("axis ", "dim")
            values = [" ".join(short(v) for v in combo) for combo in axis.values]
            out.append(f"{'+'.join(axis.fields)} ∈ {{{', '.join(values)}}}\n")
    out.append("model ", "dim")
    out.append(f"{spec.model}\n")
    out.append("time ", "dim")
    out.append(estimate + "\n")
    out.append("out ", "dim")
    out.append(output)
    if spec.description:
        out.append("\n" + " ".join(spec.description.split()), "italic dim")
    return out


def estimate_text(event: Any, kind: str) -> str:
    """The plan's time line from an estimate event ("" for other events)."""
    if isinstance(event, PointMeasured):
        t = event.timing
        label = f" ({t.label})" if t.label != "base" else ""
        return f"measuring… {event.done} of {event.of}: {t.step_s:.3f} s/step{label}"
    if not isinstance(event, EstimateFinished):
        return ""
    unit, what = ("step", "runs") if kind == "sweep" else ("decode step", "generations")
    note = f"; {event.note}" if event.note else ""
    return (f"≈ {duration(event.seconds)} ({event.runs} {what}, {event.step_s:.3f} s per "
            f"{unit}, measured{note})")


class PlanView(Static):
    """The plan of the chosen spec (or why it cannot run)."""

    DEFAULT_CSS = tcss(__file__)

    def show_plan(self, spec: Any, estimate: str, output: str) -> None:
        self.set_class(False, "-error")
        self.update(plan_text(spec, estimate, output))

    def show_error(self, message: str) -> None:
        self.set_class(True, "-error")
        self.update(Text(f"✖ {message}"))

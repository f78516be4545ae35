"""Reports of compare and sweep outputs: ``report.md`` and a self-contained ``report.html``.

Owns what a report shows and how it is laid out; plots come from ``genlab.core.reports.plots``. Both
files are built from the output directory alone (``spec.json``, ``results.jsonl``, and for
sweeps each trial's run directory and ``best.json``), so ``write_report(out)`` regenerates them
at any time. A report is a list of blocks rendered twice: Markdown (images linked from
``plots/``) and HTML (the same images embedded as base64, so the file travels alone).

* Compare: a summary per cell (mean length, how samples ended, distinct word bigrams, and the
  mean log-probability and perplexity of its text under the base model) and, per prompt, the
  side-by-side outputs (one row per cell, one column per sample).
* Sweep: the best configuration (and its retrain), every trial sorted by the objective
  (pruned, diverged and failed trials last, with why), overlaid loss curves, the objective
  against each hyperparameter, and a heatmap when a grid has exactly two dimensions.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from genlab.core.errors import GenlabError
from genlab.core.generation.grid import format_value
from genlab.core.io import read_text_limited, write_text_atomic
from genlab.core.reports import plots
from genlab.core.reports.results import RESULTS_FILE, SPEC_FILE, SPEC_JSON_LIMIT, read_rows
from genlab.core.reports.summary import cell_distinct2 as _distinct2
from genlab.core.reports.summary import cell_endings as _endings
from genlab.core.reports.summary import cell_mean_tokens as _mean_tokens
from genlab.core.reports.summary import cell_quality as _quality
from genlab.core.reports.summary import sort_rows
from genlab.core.training.run_dir import read_metrics

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"
Block = tuple[Any, ...]
"""``("h", level, text)``, ``("p", text)``, ``("table", headers, rows)``, ``("img", rel, alt)``."""


def write_report(out_dir: str | Path) -> Path:
    """Regenerate the report of a compare or sweep output directory; returns ``report.md``.

    Raises:
        ReportError: ``out_dir`` has no readable ``spec.json``.
    """
    spec = _read_spec(Path(out_dir))
    if spec.get("kind") == "compare":
        return write_compare_report(out_dir)
    return write_sweep_report(out_dir)


class ReportError(GenlabError):
    """A directory is not a compare or sweep output, or its ``spec.json`` does not read."""


def _read_spec(out: Path) -> dict[str, Any]:
    path = out / SPEC_FILE
    if not out.is_dir():
        raise ReportError(f"{out}: no such directory; pass the output directory of genlab "
                          "compare or genlab sweep")
    if not path.is_file():
        raise ReportError(f"{out}: no {SPEC_FILE}; not a genlab compare or sweep output")
    try:
        spec = json.loads(read_text_limited(path, SPEC_JSON_LIMIT, str(path)))
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not valid JSON (line {err.lineno} column {err.colno}: "
                          f"{err.msg}); restore it, or rerun the compare or sweep into a new "
                          "--out") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not UTF-8 text; restore it, or rerun into a new --out"
                          ) from None
    if not isinstance(spec, dict) or spec.get("kind") not in ("compare", "sweep"):
        raise ReportError(f"{path}: not the spec.json of a genlab compare or sweep output")
    return spec


def _write(out: Path, title: str, blocks: list[Block]) -> Path:
    write_text_atomic(out / REPORT_MD, to_markdown(blocks))
    write_text_atomic(out / REPORT_HTML, to_html(title, blocks, out))
    return out / REPORT_MD


# ----------------------------------------------------------------------------- compare


def write_compare_report(out_dir: str | Path) -> Path:
    """Write the compare report of ``out_dir``; returns the path of ``report.md``."""
    out = Path(out_dir)
    spec = _read_spec(out)
    rows = sorted(read_rows(out / RESULTS_FILE), key=lambda r: r.get("cell", 0))
    base = spec.get("base", {})
    blocks: list[Block] = [("h", 1, f"Compare: {spec.get('name', '')}")]
    if spec.get("description"):
        blocks.append(("p", spec["description"]))
    settings = ", ".join(f"{k}={format_value(v)}" for k, v in base.items() if v not in ([], ()))
    blocks.append(("p", f"Model: {spec.get('model')}. Base settings: {settings}. "
                        f"{spec.get('samples', 1)} sample(s) per cell and prompt; sample i has "
                        f"the same seed in every cell (base seed {spec.get('seed', 0)}), so "
                        "cells differ only by their settings."))
    blocks.append(("h", 2, "Summary per cell"))
    blocks.append(("table", ["cell", "mean new tokens", "ended by", "distinct word bigrams",
                             "mean log-prob (base model)", "perplexity (base model)"],
                   [[r.get("label", ""), _mean_tokens(r), _endings(r), _distinct2(r),
                     *_quality(r)] for r in rows]))
    blocks.append(("p", "Distinct word bigrams measure repetition (1 = nothing repeats); the "
                        "mean log-probability per generated token under the base model, and "
                        "its perplexity exp(-mean), measure how natural the text is to the "
                        "model: gibberish scores high on the first and badly on the second."))
    samples = max([o["sample"] for r in rows for o in r.get("outputs", [])] + [0]) + 1
    for p, prompt in enumerate(spec.get("prompts", [])):
        blocks.append(("h", 2, f"Prompt {p + 1}: {prompt}"))
        table = []
        for r in rows:
            texts = {o["sample"]: o["text"] for o in r.get("outputs", [])
                     if o["prompt_index"] == p}
            table.append([r.get("label", "")] + [texts.get(s, "") for s in range(samples)])
        blocks.append(("table", ["cell"] + [f"sample {s}" for s in range(samples)], table))
    return _write(out, f"Compare: {spec.get('name', '')}", blocks)


# ----------------------------------------------------------------------------- sweep

def write_sweep_report(out_dir: str | Path, rows: list[dict[str, Any]] | None = None) -> Path:
    """Write the sweep report of ``out_dir`` (rows default to ``results.jsonl``)."""
    out = Path(out_dir)
    spec = _read_spec(out)
    rows = sort_rows(rows if rows is not None else read_rows(out / RESULTS_FILE))
    dims = [d["name"] for d in spec.get("search", [])]
    objective = spec.get("objective", "objective")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    blocks: list[Block] = [("h", 1, f"Sweep: {spec.get('name', '')}")]
    if spec.get("description"):
        blocks.append(("p", spec["description"]))
    blocks.append(("p", f"Model: {spec.get('model')}. Method: {spec.get('method')}, budget "
                        f"{spec.get('trials')} trials; {len(rows)} finished ("
                        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
                        + f"). Objective: {objective} (lower is better). Each trial is a run "
                        "directory under trials/ (browse them with genlab tui --runs-dir "
                        f"{out / 'trials'})."))
    blocks += _best_blocks(out, rows, dims, objective)
    blocks.append(("h", 2, f"Trials, sorted by {objective}"))
    headers = ["rank", "trial", "status", objective, *dims, "final train loss",
               "final eval loss", "steps", "time (s)", "note"]
    blocks.append(("table", headers, [_trial_cells(i, r, dims) for i, r in enumerate(rows)]))
    blocks += _plot_blocks(out, spec, rows, dims, objective)
    return _write(out, f"Sweep: {spec.get('name', '')}", blocks)


def _best_blocks(out: Path, rows: list[dict[str, Any]], dims: list[str],
                 objective: str) -> list[Block]:
    best = next((r for r in rows if r.get("status") in ("completed", "early-stopped")
                 and r.get("objective") is not None), None)
    blocks: list[Block] = [("h", 2, "Best configuration")]
    if best is None:
        return [*blocks, ("p", "No trial completed with an objective value.")]
    table = [[d, _fmt(best["params"].get(d))] for d in dims]
    fields = best.get("fields", {})
    table += [[k, _fmt(v)] for k, v in fields.items() if k not in dims]
    table.append([objective, _fmt(best["objective"])])
    table.append(["run directory", best.get("run_dir", "")])
    blocks.append(("table", ["setting", "value"], table))
    try:
        retrain = json.loads((out / "best.json").read_text(encoding="utf-8")).get("retrain")
    except (OSError, ValueError):
        retrain = None
    if retrain:
        blocks.append(("p", f"Retrained in full ({retrain.get('status')}, "
                            f"{retrain.get('steps')} steps, overrides "
                            f"{json.dumps(retrain.get('overrides', {}))}): best eval loss "
                            f"{_fmt(retrain.get('best_eval_loss'))}; weights in "
                            f"{retrain.get('output_dir')}."))
    return blocks


def _trial_cells(i: int, r: dict[str, Any], dims: list[str]) -> list[str]:
    status = r.get("status", "")
    if status == "diverged":
        note = (f"diverged after step {r.get('steps')} (last finite loss "
                f"{_fmt(r.get('final_train_loss'))}): {r.get('message', '')}")
    elif status in ("completed", "early-stopped"):
        note = r.get("message", "") if status == "early-stopped" else ""
    else:
        note = r.get("message", "")
    value = r.get("objective")
    shown = _fmt(value) if value is not None else ("inf" if status == "diverged" else "-")
    return [str(i + 1), str(r.get("trial")), status, shown,
            *[_fmt(r.get("params", {}).get(d)) for d in dims],
            _fmt(r.get("final_train_loss")), _fmt(r.get("final_eval_loss")),
            f"{r.get('steps', 0)}/{r.get('total_steps', 0)}",
            f"{r.get('wall_time_s', 0.0):.1f}", note]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return format_value(value)


def _plot_blocks(out: Path, spec: dict[str, Any], rows: list[dict[str, Any]], dims: list[str],
                 objective: str) -> list[Block]:

    plot_dir = out / PLOTS_DIR
    plot_dir.mkdir(exist_ok=True)
    blocks: list[Block] = []
    ranks = {r.get("trial"): i for i, r in enumerate(rows)}
    curves = [plots.Curve(_label(r, dims), *_curves(out, r), r.get("status", ""),
                          ranks[r.get("trial")]) for r in rows]
    if any(c.train for c in curves):
        plots.loss_curves(curves, plot_dir / "loss_curves.png")
        blocks += [("h", 2, "Loss curves"), ("img", f"{PLOTS_DIR}/loss_curves.png",
                                             "training and eval loss of every trial")]
    meta = {d["name"]: d for d in spec.get("search", [])}
    axes = []
    for d in dims:
        values = [r.get("params", {}).get(d) for r in rows]
        choices = meta.get(d, {}).get("choices")
        order = [str(c) for c in choices] if choices else None  # bundles: their labels
        axes.append(plots.Axis(d, values, bool(meta.get(d, {}).get("log")) or _spans_decades(
            values), order))
    if rows and axes:
        plots.objective_scatter(axes, [r.get("objective") for r in rows],
                                [r.get("status", "") for r in rows],
                                plot_dir / "objective_vs_params.png", objective)
        blocks += [("h", 2, f"{objective} against each hyperparameter"),
                   ("img", f"{PLOTS_DIR}/objective_vs_params.png", "objective scatter")]
    if spec.get("method") == "grid" and len(axes) == 2 and rows:
        y, x = axes
        cells = {(str(xv), str(yv)): (r.get("objective"), r.get("status", ""))
                 for xv, yv, r in zip(x.values, y.values, rows, strict=True)}
        plots.heatmap(x, y, cells, plot_dir / "heatmap.png", objective)
        blocks += [("h", 2, f"{objective} over the grid"),
                   ("img", f"{PLOTS_DIR}/heatmap.png", "heatmap")]
    return blocks


def _spans_decades(values: list[Any]) -> bool:
    """Positive numbers whose largest is at least 20x the smallest read best on a log axis."""
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return len(nums) == len(values) > 1 and min(nums) > 0 and max(nums) / min(nums) >= 20


def _label(r: dict[str, Any], dims: list[str]) -> str:
    params = r.get("params", {})
    parts = [f"{d.split('.')[-1]}={_fmt(params.get(d))}" for d in dims]
    return f"#{r.get('trial')} " + " ".join(parts)


def _curves(out: Path, r: dict[str, Any]) -> tuple[list, list]:

    run_dir = out / str(r.get("run_dir", ""))
    if not r.get("run_dir") or not run_dir.is_dir():
        return [], []
    train = [(m["step"], m["loss"]) for m in read_metrics(run_dir, "train")
             if m.get("loss") is not None]
    evals = [(m["step"], m["loss"]) for m in read_metrics(run_dir, "eval")
             if m.get("loss") is not None]
    return train, evals


# ----------------------------------------------------------------------------- rendering


def _md_cell(text: Any) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")
            .replace("\r", "").replace("\n", "<br>"))


def to_markdown(blocks: list[Block]) -> str:
    """Render blocks as GitHub-flavoured Markdown."""
    parts = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            parts.append("#" * block[1] + " " + block[2].replace("\n", " "))
        elif kind == "p":
            parts.append(block[1])
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |",
                     "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            parts.append("\n".join(lines))
        elif kind == "img":
            parts.append(f"![{block[2]}]({block[1]})")
    return "\n\n".join(parts) + "\n"


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3}td{white-space:pre-wrap}img{max-width:100%}"""


def to_html(title: str, blocks: list[Block], base_dir: Path) -> str:
    """Render blocks as one HTML page with images embedded as base64 data URIs."""
    e = html.escape
    body = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{e(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{e(block[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>"
                           for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode((base_dir / block[1]).read_bytes()).decode("ascii")
            body.append(f'<img alt="{e(block[2])}" src="data:image/png;base64,{data}">')
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")

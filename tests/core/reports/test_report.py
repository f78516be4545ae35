"""Reports from output directories alone: every row shown, diverged trials as such, plots,
and a self-contained HTML file. The directories are written by hand (no training here)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from genlab.core.reports.report import sort_rows, write_report
from genlab.core.reports.results import RESULTS_FILE, SPEC_FILE, append_row


def write_sweep_dir(out: Path) -> list[dict]:
    out.mkdir()
    spec = {"kind": "sweep", "name": "lr-rank", "method": "grid", "trials": 4,
            "objective": "best_eval_loss", "model": "tiny",
            "search": [{"name": "lr", "kind": "choice", "choices": [1e-3, 0.1]},
                       {"name": "rank", "kind": "choice", "choices": [4, 8]}]}
    (out / SPEC_FILE).write_text(json.dumps(spec), encoding="utf-8")
    statuses = [("completed", 2.5), ("diverged", None), ("pruned", None), ("completed", 2.1)]
    rows = []
    for n, ((lr, rank), (status, value)) in enumerate(zip(
            [(1e-3, 4), (0.1, 4), (1e-3, 8), (0.1, 8)], statuses, strict=True)):
        run_dir = out / "trials" / f"{n:04d}"
        run_dir.mkdir(parents=True)
        losses = [3.0, 2.8, 2.6] if status != "diverged" else [3.0, 9.5]
        metrics = [{"type": "train", "step": i + 1, "loss": v} for i, v in enumerate(losses)]
        metrics.append({"type": "eval", "step": len(losses), "loss": losses[-1] - 0.1})
        (run_dir / "metrics.jsonl").write_text(
            "".join(json.dumps(m) + "\n" for m in metrics), encoding="utf-8")
        row = {"trial": n, "status": status, "objective": value,
               "params": {"lr": lr, "rank": rank}, "fields": {"lr": lr, "rank": rank},
               "run_dir": f"trials/{n:04d}", "steps": len(losses), "total_steps": 3,
               "wall_time_s": 1.5, "best_eval_loss": value, "final_eval_loss": value,
               "final_train_loss": losses[-1],
               "message": "loss became inf at step 3 (lr 0.1); try a lower --lr"
               if status == "diverged" else ""}
        append_row(out / RESULTS_FILE, row)
        rows.append(row)
    return rows


def test_sweep_report_lists_every_trial_best_first_and_diverged_as_diverged(tmp_path):
    out = tmp_path / "sweep"
    rows = write_sweep_dir(out)
    md_path = write_report(out)
    md = md_path.read_text(encoding="utf-8")
    table = md.split("## Trials")[1].split("##")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ") and "rank |" not in line]
    assert len(lines) == len(rows)
    assert [line.split("|")[2].strip() for line in lines] == ["3", "0", "2", "1"]
    diverged = lines[-1]
    assert "| diverged |" in diverged and "| inf |" in diverged
    assert "last finite loss 9.5" in diverged and "loss became inf" in diverged
    assert "## Best configuration" in md and "| rank | 8 |" in md
    for name in ("loss_curves.png", "objective_vs_params.png", "heatmap.png"):
        assert (out / "plots" / name).stat().st_size > 1000
        assert f"(plots/{name})" in md
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 3 and "plots/" not in page
    assert all(f"<td>{row['trial']}</td>" in page for row in rows)


def test_sort_rows_puts_objectives_first_then_pruned_diverged_failed():
    rows = [{"trial": 0, "status": "failed"}, {"trial": 1, "status": "diverged"},
            {"trial": 2, "status": "completed", "objective": 3.0},
            {"trial": 3, "status": "pruned", "best_eval_loss": 2.0},
            {"trial": 4, "status": "early-stopped", "objective": 1.0}]
    assert [r["trial"] for r in sort_rows(rows)] == [4, 2, 3, 1, 0]


def test_compare_report_shows_every_output_side_by_side(tmp_path):
    out = tmp_path / "cmp"
    out.mkdir()
    spec = {"kind": "compare", "name": "t", "model": "tiny", "prompts": ["Hi <there>", "Yo"],
            "samples": 2, "seed": 0, "base": {"temperature": 1.0, "max_new_tokens": 4}}
    (out / SPEC_FILE).write_text(json.dumps(spec), encoding="utf-8")
    texts = []
    for cell, label in enumerate(["T=0.5", "T=1"]):
        outputs = []
        for p in range(2):
            for s in range(2):
                text = f"out {cell}{p}{s} a|b\nnext <b>"
                texts.append(text)
                outputs.append({"prompt_index": p, "prompt": spec["prompts"][p], "sample": s,
                                "seed": s, "text": text, "finish_reason": "length",
                                "new_tokens": 4, **({"base_logprob": -2.0 * (p + 1)}
                                                    if cell else {})})
        append_row(out / RESULTS_FILE, {"cell": cell, "key": label, "label": label,
                                        "outputs": outputs})
    md = write_report(out).read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    for text in texts:
        assert text.replace("<", "&lt;").replace("|", "\\|").replace("\n", "<br>") in md
        assert html.escape(text) in page
    assert "## Prompt 1: Hi <there>" in md and "| cell | sample 0 | sample 1 |" in md
    assert "| T=1 | 4.0 | length 4 |" in md
    # quality beside diversity: the token-weighted mean log-prob under the base model
    assert "mean log-prob (base model) | perplexity (base model) |" in md
    assert re.search(r"\| T=1 \| 4\.0 \| length 4 \| [\d.]+ \| -0\.750 \| 2\.1 \|", md)
    assert re.search(r"\| T=0\.5 \| 4\.0 \| length 4 \| [\d.]+ \| - \| - \|", md)  # unscored

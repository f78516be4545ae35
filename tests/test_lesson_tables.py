"""``scripts/lesson_tables.py``: the lesson tables are rewritten between markers, from the
measured rows and the trials' metrics (no training here: the run is written by hand)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("genlab_lesson_tables",
                                                  REPO / "scripts" / "lesson_tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_trial(out: Path, number: int, losses: list[float], evals: list[float]) -> None:
    run = out / "learning-rate" / "trials" / f"{number:04d}"
    run.mkdir(parents=True)
    lines = [{"type": "train", "step": i + 1, "loss": v} for i, v in enumerate(losses)]
    lines += [{"type": "eval", "step": 10 * i, "loss": v} for i, v in enumerate(evals)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_learning_rate_cells_come_from_rows_and_metrics(tables, tmp_path):
    rows = [
        {"trial": 0, "status": "completed", "params": {"lr": 1e-5}, "best_eval_loss": 4.4912},
        {"trial": 1, "status": "completed", "params": {"lr": 1e-3}, "best_eval_loss": 0.6123},
        {"trial": 2, "status": "completed", "params": {"lr": 3e-2}, "best_eval_loss": 4.6039},
        {"trial": 3, "status": "diverged", "params": {"lr": 1.0}, "best_eval_loss": None,
         "steps": 23},
    ]
    for row, losses in zip(rows, ([5.0, 4.9], [5.0, 1.0], [5.0, 9.7, 4.9],
                                  [5.0, 12.7, 6.48, float("nan")]), strict=True):
        write_trial(tmp_path, row["trial"], losses, [4.7284, 4.6])
    lesson = tables.Lesson(tmp_path, "learning-rate", {"rows": rows, "wall_s": 95.0,
                                                       "cpu_s": 170.0})
    short, long = tables.learning_rate(lesson)
    assert short == ("best eval loss: lr 1e-05 4.49, lr 0.001 0.61, lr 0.03 4.60, lr 1 diverged "
                     "at step 23, last finite loss 6.48")
    assert long.startswith("base model 4.73; lr 1e-05: 4.491; lr 0.001: 0.612; lr 0.03: "
                           "4.604 (train loss peaks at 9.7); lr 1: diverged at step 23")
    assert lesson.time_cpu() == "1.6 min (2.8 min)"


def test_tables_are_replaced_between_markers_only(tables):
    text = "intro\n<!-- lessons:readme:begin -->\nold\n<!-- lessons:readme:end -->\noutro\n"
    assert tables.replace_between(text, "readme", "new\ntable") == (
        "intro\n<!-- lessons:readme:begin -->\nnew\ntable\n<!-- lessons:readme:end -->\noutro\n")
    with pytest.raises(SystemExit, match="no <!-- lessons:specs:begin/end --> markers"):
        tables.replace_between(text, "specs", "x")


def test_the_readme_and_the_specs_page_carry_the_markers(tables):
    for key, path in tables.TARGETS.items():
        text = path.read_text(encoding="utf-8")
        assert text.count(f"<!-- lessons:{key}:begin -->") == 1, path
        assert text.count(f"<!-- lessons:{key}:end -->") == 1, path


def write_cells(out: Path, name: str, cells: list[tuple[dict, float, int, str]]) -> None:
    """results.jsonl of a compare lesson: (params, summed log-prob, new tokens, text) per cell."""
    (out / name).mkdir(parents=True)
    rows = [{"cell": i, "params": params,
             "outputs": [{"text": text, "new_tokens": tokens, "base_logprob": lp}]}
            for i, (params, lp, tokens, text) in enumerate(cells)]
    (out / name / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_truncation_cells_are_ranked_by_perplexity_under_the_model(tables, tmp_path):
    none = {"top_k": 0, "top_p": 1.0, "min_p": 0.0, "typical_p": 1.0, "top_n_sigma": 0.0,
            "epsilon_cutoff": 0.0, "eta_cutoff": 0.0}
    cells = [(none, -40.0, 10, "a b c d")]
    for i, (_, change) in enumerate(tables.TRUNCATIONS):
        cells.append(({**none, **change}, -10.0 - i, 10, "a b a b"))
    cells[4] = (cells[4][0], -5.0, 10, "a b a b")  # typical 0.9: the least surprising text
    write_cells(tmp_path, "truncation-samplers", cells)
    short, long = tables.truncation_samplers(tables.Lesson(tmp_path, "truncation-samplers", {}))
    assert short.startswith("perplexity under the model at T=1.5: no cut 55; typical 0.9 1.6, "
                            "top-k 40 2.7, top-p 0.9 3.0")
    assert "no cut -4.00 (55, 1.00)" in long and "typical 0.9 -0.50 (1.6, 0.67)" in long


def test_mirostat_reports_measured_bits_per_token(tables, tmp_path):
    cells = [({"mirostat": v, "mirostat_tau": t}, -t * math.log(2) * 20, 20, "x y")
             for v in (1, 2) for t in (1.5, 2.5, 3.5, 5.0)]
    write_cells(tmp_path, "mirostat", cells)
    short, _ = tables.mirostat(tables.Lesson(tmp_path, "mirostat", {}))
    assert short == ("measured bits per token for tau 1.5 / 2.5 / 3.5 / 5: v1 1.50 / 2.50 / "
                     "3.50 / 5.00, v2 1.50 / 2.50 / 3.50 / 5.00")

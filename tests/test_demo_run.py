"""``python demo/run_demo.py``: genlab's progress while it trains, the README's table at the
end, a rerun that reuses the finished run, ``--fresh`` that deletes only genlab's own run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_demo_data import import_demo

from genlab.core.configs import TrainConfig
from genlab.core.training import run_dir as runs


@pytest.fixture(scope="module")
def demo():
    return import_demo("run_demo")


def fake_run(demo, out: Path, model: str, status: str | None = "completed", **args) -> Path:
    """A run directory as genlab writes it, for the demo's settings (no training)."""
    config = demo.demo_config(demo.parse_args(["--max-steps", "4", *args.get("argv", [])]),
                              model)
    out.mkdir(parents=True)
    runs.write_config(out, config, {"genlab_version": "test"})
    (out / "metrics.jsonl").write_text("")
    if status is not None:
        (out / "summary.json").write_text(json.dumps({
            "status": status, "steps": 4, "wall_time_s": 3.0, "best_eval_loss": 1.5}))
    (out / "adapter").mkdir()
    return out


def config_of(demo, model: str, *argv: str) -> TrainConfig:
    return demo.demo_config(demo.parse_args(["--max-steps", "4", *argv]), model)


def test_plan_trains_reuses_resumes_and_refuses(demo, tiny_llama, tmp_path):
    model = str(tiny_llama)
    assert demo.plan(tmp_path / "new", config_of(demo, model), fresh=False) == "train"
    done = fake_run(demo, tmp_path / "done", model)
    assert demo.plan(done, config_of(demo, model), fresh=False) == "reuse"
    stopped = fake_run(demo, tmp_path / "stopped", model, status="stopped")
    assert demo.plan(stopped, config_of(demo, model), fresh=False) == "resume"
    with pytest.raises(demo.DemoError, match=r"other settings \(lr 0.003 vs 0.01\)"):
        demo.plan(done, config_of(demo, model, "--lr", "1e-2"), fresh=False)
    diverged = fake_run(demo, tmp_path / "diverged", model, status="diverged")
    with pytest.raises(demo.DemoError, match="the run there diverged; pass --fresh"):
        demo.plan(diverged, config_of(demo, model), fresh=False)


def test_fresh_deletes_only_a_run_genlab_wrote(demo, tiny_llama, tmp_path):
    model = str(tiny_llama)
    done = fake_run(demo, tmp_path / "done", model)
    assert demo.plan(done, config_of(demo, model), fresh=True) == "train"
    assert not done.exists()
    mixed = fake_run(demo, tmp_path / "mixed", model)
    (mixed / "my-notes.txt").write_text("mine")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.txt").write_text("mine")
    for path in (mixed, mine):
        with pytest.raises(demo.DemoError, match="holds files genlab did not write"):
            demo.plan(path, config_of(demo, model), fresh=True)
    assert (mixed / "my-notes.txt").read_text() == "mine" and (mixed / "config.json").is_file()
    assert (mine / "data.txt").read_text() == "mine"
    marked = tmp_path / "marked"  # a marker (genlab >= #14) is enough
    marked.mkdir()
    (marked / ".genlab.json").write_text(json.dumps({"kind": "run"}))
    (marked / "weights.bin").write_text("x")
    assert demo.genlab_wrote(marked)


def test_report_prints_the_readme_table(demo):
    report = {
        "before": {"train_wording": {"accuracy": 0.0, "well_formed": 0.0},
                   "eval_wording": {"accuracy": 0.0, "well_formed": 0.0}},
        "after": {"train_wording": {"accuracy": 0.8667, "well_formed": 0.95},
                  "eval_wording": {"accuracy": 0.7889, "well_formed": 0.8778}},
        "rows": {"train": 180, "eval": 90},
        "examples": [{"prompt": "Q: What is the favorite food of Pim the owl?\nA:",
                      "base": "a little boy", "adapter": "Pim the owl likes to eat carrots."}],
        "run": {"run_dir": "runs/demo-facts", "reused": False, "steps": 240,
                "train_wall_s": 80.2, "best_eval_loss": 0.5021},
        "script_s": 89.4,
    }
    text = demo.text_report(report)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for line in demo.table_lines(report):
        assert line in readme, line  # the README shows this very table
    assert "Training took 80 s (240 steps, best eval loss 0.502); the whole script 89 s." in text
    assert "Q: What is the favorite food of Pim the owl?\n  base:    a little boy\n" in text
    assert "--prompt 'Q: What is the favorite food of Pim the owl?\\nA:'" in text
    report["run"]["reused"] = True
    assert "Reused the finished run in runs/demo-facts (trained in 80 s" in \
        demo.text_report(report)


@pytest.mark.slow
def test_end_to_end_then_reuse_then_fresh(demo, tiny_llama, tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["--model", str(tiny_llama), "--out", str(out), "--max-steps", "3",
            "--batch-size", "4"]
    assert demo.main(argv) == 0
    first = capsys.readouterr()
    assert "| | base model | with the LoRA |" in first.out and "Training took" in first.out
    assert "run " in first.err and "step 3/3" in first.err  # genlab train's own progress
    assert demo.main(argv) == 0
    again = capsys.readouterr()
    assert "reusing the finished demo run" in again.err and "step 1/3" not in again.err
    assert "Reused the finished run" in again.out
    assert demo.main([*argv, "--fresh", "--json"]) == 0
    fresh = capsys.readouterr()
    assert "step 3/3" in fresh.err and json.loads(fresh.out)["run"]["reused"] is False
    assert demo.main([*argv, "--lr", "1e-2"]) == 2
    assert capsys.readouterr().err.startswith("run_demo: error: --out ")


def test_a_reused_run_with_a_broken_adapter_is_one_line(demo, tiny_llama, tmp_path, capsys):
    done = fake_run(demo, tmp_path / "done", str(tiny_llama))  # adapter/ is empty
    argv = ["--model", str(tiny_llama), "--out", str(done), "--max-steps", "4"]
    assert demo.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("run_demo: error: ") and err[-1].endswith("pass --fresh to "
                                                                        "train again")
    assert "Traceback" not in "\n".join(err)

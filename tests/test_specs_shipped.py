"""Every shipped spec in prompts/specs/ parses, validates, and runs (one trial, a few steps) on
the tests' tiny model, through the same Python API as ``genlab compare``/``genlab sweep``.

The shipped specs train on the demo fact set (``vars.facts``) and TinyStories
(``vars.corpus``); here both point at small copies written to tmp, and ``--set``-style
overrides shrink every run to two steps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import genlab
from genlab.core.specs.loader import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = ROOT / "prompts" / "specs"
SHIPPED = sorted(SPEC_DIR.glob("*.yaml"))
LESSONS = {"temperature-top-k", "learning-rate", "batch-size", "model-complexity", "warmup",
           "schedules", "optimizers", "lora-rank-alpha", "search-grid", "search-random",
           "search-bayes", "early-stopping", "repetition-penalties", "truncation-samplers",
           "mirostat", "sampler-order", "xtc"}
STORY = "Once upon a time there was a little fox. The fox liked to run in the green forest."


@pytest.fixture(scope="module")
def data_vars(tmp_path_factory) -> list[str]:
    """``vars.*`` overrides pointing at small copies of the facts and a tiny story corpus."""
    root = tmp_path_factory.mktemp("lesson-data")
    facts = root / "facts"
    facts.mkdir()
    for name, n in (("train.jsonl", 24), ("eval.jsonl", 12)):
        lines = (ROOT / "demo" / "facts" / name).read_text(encoding="utf-8").splitlines()[:n]
        (facts / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    corpus = root / "tinystories"
    corpus.mkdir()
    (corpus / "valid.txt").write_text(
        "".join(f"{STORY} Story {i}.\n<|endoftext|>\n" for i in range(60)), encoding="utf-8")
    return [f"vars.facts={facts}", f"vars.corpus={corpus}"]


def test_every_lesson_is_shipped():
    assert {p.stem for p in SHIPPED} >= LESSONS


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_spec_parses_and_validates(path, data_vars):
    spec = load_spec(path, overrides=data_vars)
    assert spec.name == path.stem and spec.description
    assert spec.model == "default"  # runs on the shipped default model
    if spec.kind == "sweep":
        assert spec.trials >= 2 and spec.search.dims
    else:
        assert len(spec.cells()) >= 2


SWEEP_TINY = ["trials=1", "retrain_best=false", "base.max_steps=2", "base.warmup_steps=0",
              "base.seq_len=32", "base.batch_size=2", "base.eval_every=0",
              "base.eval_max_batches=2", "base.device=cpu"]
COMPARE_TINY = ["samples=1", "base.max_new_tokens=3", "device=cpu"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_spec_runs_on_the_tiny_model(path, data_vars, tiny_llama, tmp_path):
    kind = load_spec(path, overrides=data_vars).kind
    out = tmp_path / "out"
    if kind == "compare":
        result = genlab.compare(path, out, model=str(tiny_llama),
                                overrides=[*data_vars, *COMPARE_TINY])
        assert len(result.rows) == len(result.spec.cells()) and not result.cancelled
    else:
        result = genlab.sweep(path, out, model=str(tiny_llama),
                              overrides=[*data_vars, *SWEEP_TINY])
        assert [r["status"] for r in result.rows] == ["completed"], result.rows
        assert result.best is not None and (out / result.best["run_dir"] / "config.json").is_file()
    assert Path(result.report_path).is_file() and Path(result.html_path).is_file()

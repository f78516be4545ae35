"""The LoRA demo dataset (demo/make_facts.py) and its measure (demo/measure.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from genlab.core.configs import TrainConfig
from genlab.core.data.packing import IGNORE_INDEX, load_documents, prepare_data

DEMO = Path(__file__).resolve().parents[1] / "demo"
FACTS = DEMO / "facts"


def import_demo(name: str):
    spec = importlib.util.spec_from_file_location(f"genlab_demo_{name}", DEMO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_facts():
    return import_demo("make_facts")


@pytest.fixture(scope="module")
def measure():
    return import_demo("measure")


def test_script_regenerates_committed_files_byte_for_byte(make_facts, tmp_path):
    paths = make_facts.write_dataset(tmp_path)
    assert [p.name for p in paths] == ["train.jsonl", "eval.jsonl"]
    for path in paths:
        assert path.read_bytes() == (FACTS / path.name).read_bytes(), path.name


def test_main_writes_to_out(make_facts, tmp_path, capsys):
    make_facts.main(["--out", str(tmp_path / "x")])
    assert (tmp_path / "x" / "train.jsonl").read_bytes() == (FACTS / "train.jsonl").read_bytes()


def test_files_load_as_prompt_completion(measure):
    for name, rows in (("train.jsonl", 180), ("eval.jsonl", 90)):
        docs = load_documents(str(FACTS / name), prompt_field="prompt",
                              completion_field="completion")
        assert len(docs) == rows
        assert all(d.prompt.startswith("Q: ") and d.prompt.endswith("\nA:") for d in docs)
        assert all(d.completion.startswith(" ") and d.completion.endswith(".") for d in docs)


def test_design_invariants(measure):
    train, evals = measure.load_rows(FACTS / "train.jsonl"), measure.load_rows(FACTS / "eval.jsonl")
    facts = {(r["character"], r["attribute"]): r["value"] for r in evals}
    assert len(facts) == 90 and len({c for c, _ in facts}) == 30
    for row in train:  # train asks the same facts, with the same answers...
        assert facts[(row["character"], row["attribute"])] == row["value"]
    # ...in other wordings: no eval prompt appears in training.
    assert {r["prompt"] for r in train}.isdisjoint(r["prompt"] for r in evals)
    assert len({r["prompt"] for r in train}) == 180
    for attribute in ("color", "food", "home"):  # balanced values: chance is about 1/8
        counts = {}
        for r in evals:
            if r["attribute"] == attribute:
                counts[r["value"]] = counts.get(r["value"], 0) + 1
        assert len(counts) == 8 and max(counts.values()) - min(counts.values()) <= 1


def test_demo_data_packs_with_loss_on_answers_only(tiny_llama):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    cfg = TrainConfig(model=str(tiny_llama), data=str(FACTS / "train.jsonl"),
                      eval_data=str(FACTS / "eval.jsonl"), prompt_field="prompt",
                      completion_field="completion", seq_len=128)
    data = prepare_data(cfg, tok)
    assert data.train_documents == 180 and data.eval_documents == 90
    scored = tok.decode([t for t in data.eval.labels.flatten().tolist() if t != IGNORE_INDEX])
    rows = [json.loads(line) for line in (FACTS / "eval.jsonl").read_text().splitlines()]
    assert scored == "".join(r["completion"] + tok.eos_token for r in rows)


def test_measure_scores(measure):
    rows = measure.load_rows(FACTS / "eval.jsonl")[:4]
    right = [r["completion"] for r in rows]
    assert measure.fact_accuracy(right, right) == 1.0
    noisy = [" " + r["completion"].upper().strip() + "  Then more text.\nQ: next" for r in rows]
    assert measure.fact_accuracy(noisy, right) == 1.0
    wrong_value = [r["completion"].replace(r["value"], "zzz") for r in rows]
    score = measure.score_answers(rows, wrong_value)
    assert score.accuracy == 0.0 and score.well_formed == 1.0 and score.total == 4
    story = ["Once upon a time, there was a little girl named Lily."] * 4
    assert measure.score_answers(rows, story) == measure.FactScore(0.0, 0.0, 4)
    assert measure.score_answers(rows, right).well_formed == 1.0
    with pytest.raises(ValueError):
        measure.fact_accuracy(right, right[:2])

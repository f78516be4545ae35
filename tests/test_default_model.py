"""The model shipped in ``genlab/assets``: it loads without genlab, it is every command's default,
and its quality matches its model card.

The tests that need the model skip (saying why) in a checkout where it is not installed yet;
the fallbacks for a missing model (one-line errors naming ``--model``) are tested always, by
pointing ``genlab.assets.DEFAULT_MODEL_DIR`` at an empty directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import genlab.assets as assets
from genlab.cli import app

runner = CliRunner()
SHIPPED = Path(assets.DEFAULT_MODEL_DIR)
BPB_STORIES = 40
BPB_TOLERANCE = 0.02
needs_model = pytest.mark.skipif(
    not assets.default_model_installed(),
    reason=f"the default model is not installed at {SHIPPED} (scripts/write_model_card.py)")


def offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", HF_HOME="/nonexistent-hf-home")
    return env


# ---------------------------------------------------------------------------- the shipped model


@needs_model
def test_shipped_files_and_card():
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "README.md", "eval.json"):
        assert (SHIPPED / name).is_file(), name
    size = sum(f.stat().st_size for f in SHIPPED.iterdir())
    assert size < 10e6, f"{size / 1e6:.1f} MB is too big to ship"
    card = (SHIPPED / "README.md").read_text(encoding="utf-8")
    for needle in ("CDLA-Sharing-1.0", "arXiv:2305.07759", "Ronen Eldan and Yuanzhi Li",
                   "roneneldan/TinyStories", "temperature 0.5", "temperature 0.8",
                   "temperature 1.2", "bits per byte"):
        assert needle in card, needle
    tok = json.loads((SHIPPED / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "PreTrainedTokenizerFast"


PLAIN_LOAD = textwrap.dedent("""
    import json, sys
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(sys.argv[1])
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
    ids = tok("Once upon a time", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert not any(m.startswith("genlab") for m in sys.modules), "genlab was imported"
    print(json.dumps({"arch": type(model).__name__, "vocab": len(tok),
                      "params": sum(p.numel() for p in model.parameters()),
                      "text": tok.decode(out[0], skip_special_tokens=True)}))
""")


@needs_model
def test_shipped_model_loads_with_plain_transformers():
    proc = subprocess.run([sys.executable, "-c", PLAIN_LOAD, str(SHIPPED)], capture_output=True,
                          text=True, timeout=300, cwd=SHIPPED, env=offline_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["arch"] == "LlamaForCausalLM" and info["vocab"] == 2048
    assert 1.3e6 < info["params"] < 1.6e6
    assert info["text"].startswith("Once upon a time") and len(info["text"]) > 20


@needs_model
def test_sample_works_without_model_flag_offline():
    proc = subprocess.run(
        [sys.executable, "-m", "genlab", "sample", "--prompt", "Once upon a time",
         "--max-new-tokens", "8", "--format", "jsonl", "--quiet"],
        capture_output=True, text=True, timeout=300, env=offline_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[0])
    assert row["text"].strip() and row["prompt"] == "Once upon a time"


@needs_model
def test_bits_per_byte_matches_the_card(data_dir):
    from genlab.core.modeling.loading import load_model
    from genlab.core.pretrain.bpb import bits_per_byte
    from genlab.core.pretrain.stories import read_stories

    recorded = json.loads((SHIPPED / "eval.json").read_text())
    expected = recorded["bits_per_byte"][str(BPB_STORIES)]
    loaded = load_model(None, device="cpu", dtype="float32")
    assert loaded.name == str(SHIPPED)
    stories = read_stories(data_dir / "tinystories" / "valid.txt", BPB_STORIES)
    bpb = bits_per_byte(loaded.model, loaded.tokenizer, stories, batch_size=16,
                        context=recorded["context"])
    assert abs(bpb.bpb - expected) < BPB_TOLERANCE, (bpb.bpb, expected)


# ------------------------------------------------------------------- resolution and fallbacks


def test_help_names_the_default():
    for command in ("sample", "train"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "300"})
        assert "Default: the shipped tinystories-1.4m model" in result.stdout, command


@pytest.fixture
def no_default_model(monkeypatch, tmp_path):
    monkeypatch.setattr(assets, "DEFAULT_MODEL_DIR", str(tmp_path / "missing"))
    return tmp_path / "missing"


def test_missing_default_model_is_a_clear_error(no_default_model):
    from genlab.core.modeling.loading import ModelLoadError, load_model
    from genlab.core.specs.loader import resolve_model

    with pytest.raises(assets.DefaultModelMissing) as missing:
        assets.resolve_model(None)
    assert str(no_default_model) in str(missing.value)
    with pytest.raises(ModelLoadError, match="--model is required") as info:
        load_model(None)
    assert str(no_default_model) in str(info.value)
    with pytest.raises(LookupError):  # spec resolution falls back to its own message
        resolve_model("default")


@pytest.mark.parametrize("argv", [["sample", "--prompt", "hi"],
                                  ["train", "--data", "stories.txt"]], ids=lambda a: a[0])
def test_commands_without_model_fail_in_one_line_when_it_is_missing(argv, no_default_model):
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "--model is required" in result.stderr and "tinystories-1.4m" in result.stderr


def test_default_resolves_to_the_assets_dir(monkeypatch, tiny_llama):
    from genlab.cli.common import default_model
    from genlab.core.modeling.loading import load_model, resolve_model_name

    monkeypatch.setattr(assets, "DEFAULT_MODEL_DIR", str(tiny_llama))
    assert default_model() == str(tiny_llama)
    assert resolve_model_name(None) == resolve_model_name("default") == str(tiny_llama)
    assert resolve_model_name("gpt2") == "gpt2"
    assert load_model("default", device="cpu").name == str(tiny_llama)

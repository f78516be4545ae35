"""``genlab merge`` end to end: merged logits equal PeftModel's, plain transformers loads it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genlab.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def adapter_dir(tiny_llama: Path, tmp_path_factory) -> Path:
    """A non-trivial LoRA adapter (random A and B, so merging changes the weights)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(out)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    return out


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits


def test_merge_matches_peft_and_loads_without_peft(tiny_llama, adapter_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    result = runner.invoke(app, ["merge", "--adapter", str(adapter_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "genlab sample --model" in result.stdout
    assert (out / "config.json").is_file() and (out / "tokenizer_config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]  # no temp dir left
    umask = os.umask(0)
    os.umask(umask)
    for path in [out, *out.rglob("*")]:  # not mkdtemp's 0700 nor safetensors' 0600
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == want, path

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_llama), str(adapter_dir)).eval()
    plain = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    ids = torch.tensor([[1, 5, 9, 42, 7, 100, 3, 17]])
    assert torch.allclose(_logits(merged, ids), _logits(reference, ids), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(_logits(merged, ids), _logits(plain, ids), atol=1e-3)


def test_merge_explicit_base_and_dtype(tiny_llama, adapter_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "m16"
    result = runner.invoke(app, ["merge", "--adapter", str(adapter_dir), "--out", str(out),
                                 "--model", str(tiny_llama), "--dtype", "bfloat16"])
    assert result.exit_code == 0, result.output
    assert AutoModelForCausalLM.from_pretrained(out).dtype == torch.bfloat16


def test_merge_refuses_non_empty_out_without_force(adapter_dir, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["merge", "--adapter", str(adapter_dir), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "--force" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"

    result = runner.invoke(app, ["merge", "--adapter", str(adapter_dir), "--out", str(out),
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists() and (out / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


@pytest.mark.parametrize("case", ["no-adapter", "bad-dtype", "no-base"])
def test_merge_bad_input_is_one_line(case, adapter_dir, tmp_path):
    args = ["merge", "--adapter", str(adapter_dir), "--out", str(tmp_path / "o")]
    if case == "no-adapter":
        args[2] = str(tmp_path)
        flag = "--adapter"
    elif case == "bad-dtype":
        args += ["--dtype", "int8"]
        flag = "--dtype"
    else:
        args += ["--model", str(tmp_path / "missing-base")]
        flag = "--model"
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and flag in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_merge_help_does_not_import_torch():
    code = ("import sys\nfrom genlab.cli import app\n"
            "try:\n    app(['merge', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--adapter" in proc.stdout

"""Every LoRA variant trains on the shipped model, and its adapter is a plain PEFT adapter.

For each variant flag: a short run on the LoRA demo fact set, then the saved ``adapter/`` is
loaded twice outside the loop, with plain ``PeftModel.from_pretrained`` and with genlab's own
loader (the mixed-adapter batch the Sample screen uses), and both must give the same logits,
differ from the base model's, and reproduce the run's own final eval loss (so PiSSA/OLoRA's
conversion back to the original base is exact). config.json records the knob.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from genlab.assets import resolve_model
from genlab.core.configs import TrainConfig
from genlab.core.data.packing import prepare_data
from genlab.core.events import EvalResult, RunFinished
from genlab.core.modeling.loading import load_model
from genlab.core.training.evaluation import count_loss_tokens, token_nll_sum
from genlab.core.training.train import TrainSetupError, iter_train

FACTS = Path(__file__).resolve().parents[3] / "demo" / "facts"
VARIANTS = {
    "dora": {"dora": True},
    "gaussian": {"init": "gaussian"},
    "pissa": {"init": "pissa"},
    "olora": {"init": "olora"},
    "patterns": {"rank_pattern": ("q_proj=16", "down_proj=2"),
                 "alpha_pattern": ("q_proj=4", "v_proj=64")},
    "loraplus": {"loraplus_ratio": 16.0},
    "dora+loraplus+rslora": {"dora": True, "loraplus_ratio": 8.0, "rslora": True},
}


def _config(**kw) -> TrainConfig:
    base = dict(model=resolve_model(None), data=str(FACTS / "train.jsonl"),
                eval_data=str(FACTS / "eval.jsonl"), prompt_field="prompt",
                completion_field="completion", seq_len=64, batch_size=8, max_steps=6,
                eval_every=0, lr=3e-3, schedule="constant", device="cpu", seed=0,
                eval_max_batches=2)
    base.update(kw)
    return TrainConfig(**base)


def _eval_batch(config: TrainConfig):
    loaded = load_model(config.model, device="cpu")
    blocks = prepare_data(config, loaded.tokenizer).eval
    n = config.eval_max_batches * config.batch_size
    return blocks.input_ids[:n], blocks.attention_mask[:n], blocks.labels[:n]


def _loss(logits, labels) -> float:
    return float(token_nll_sum(logits, labels)) / count_loss_tokens(labels)


@pytest.fixture(scope="module")
def base_logits():
    config = _config()
    ids, mask, labels = _eval_batch(config)
    model = AutoModelForCausalLM.from_pretrained(config.model)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_trains_and_loads_in_plain_peft(name, tmp_path, base_logits):
    config = _config(**VARIANTS[name])
    events = list(iter_train(config, out_dir=tmp_path / "run"))
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "completed"
    final_eval = [e for e in events if isinstance(e, EvalResult)][-1]
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    for key, value in VARIANTS[name].items():
        assert stored[key] == (list(value) if isinstance(value, tuple) else value), key

    adapter = tmp_path / "run" / "adapter"
    ids, mask, labels = _eval_batch(config)
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(config.model),
                                      str(adapter))
    plain.eval()
    loaded = load_model(config.model, device="cpu", adapters={"tuned": str(adapter)})
    # genlab samples in mixed-adapter batches; PEFT has none for DoRA (the sampler says so)
    mixed = {} if config.dora else {"adapter_names": ["tuned"] * len(ids)}
    with torch.no_grad():
        theirs = plain(input_ids=ids, attention_mask=mask).logits
        ours = loaded.model(input_ids=ids, attention_mask=mask, **mixed).logits
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert not torch.allclose(theirs, base_logits, atol=1e-3)  # the adapter changed the model
    # The adapter alone, on the original base, reproduces the run's own last eval loss.
    assert _loss(theirs, labels) == pytest.approx(final_eval.loss, abs=2e-4)


def test_adapter_configs_say_what_was_trained(tmp_path):
    list(iter_train(_config(init="pissa", rank_pattern=("q_proj=4",)), out_dir=tmp_path / "p"))
    saved = json.loads((tmp_path / "p" / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 16 and saved["rank_pattern"]["q_proj"] == 8  # converted: rank 2r
    assert saved["init_lora_weights"] is True  # a plain LoRA of the original base
    assert sorted(p.name for p in (tmp_path / "p").iterdir() if "start" in p.name) == []
    list(iter_train(_config(dora=True), out_dir=tmp_path / "d"))
    saved = json.loads((tmp_path / "d" / "adapter" / "adapter_config.json").read_text())
    assert saved["use_dora"] is True


def test_loraplus_groups_match_peft_create_loraplus_optimizer():
    from peft import LoraConfig, get_peft_model
    from peft.optimizers import create_loraplus_optimizer

    from genlab.core.training.optimizers import build_optimizer

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(resolve_model(None)),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], use_dora=True,
                                      task_type="CAUSAL_LM"))
    config = _config(loraplus_ratio=16.0)
    theirs = create_loraplus_optimizer(model, torch.optim.AdamW, lr=1e-3,
                                       loraplus_lr_ratio=16.0)
    ours = build_optimizer(model, config, 1e-3)

    def lr_by_param(opt):
        return {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}

    names = {id(p): n for n, p in model.named_parameters()}
    expected, got = lr_by_param(theirs), lr_by_param(ours)
    assert got.keys() == expected.keys()
    assert {names[k]: v for k, v in got.items()} == {names[k]: v for k, v in expected.items()}
    assert sorted(set(got.values())) == [1e-3, 16e-3]
    assert ours.param_groups[0]["lr"] == 1e-3  # the run's reported lr is A's


@pytest.mark.parametrize("kw,words", [
    ({"init": "loftq"}, "--init loftq: LoftQ fits the LoRA weights to a 4-bit base"),
    ({"quantize": "4bit"}, "--quantize 4bit: bitsandbytes quantisation needs a CUDA GPU"),
    ({"quantize": "8bit"}, "--quantize 8bit: bitsandbytes quantisation needs a CUDA GPU"),
    ({"init": "pissa", "dora": True}, "--init pissa with --dora: PEFT cannot convert"),
    ({"rank_pattern": ("c_attn=4",)}, "--rank-pattern: c_attn names none of the adapted"),
    ({"method": "full", "dora": True}, "--dora: a LoRA setting, but --method full"),
    ({"optimizer": "adamw8bit"}, "--optimizer adamw8bit: bitsandbytes quantisation needs"),
    ({"schedule": "plateau"}, "--schedule plateau: the lr is cut when the eval loss stops "
                              "improving, so it needs --eval-every N > 0"),
])
def test_unsupported_here_is_one_clear_line(kw, words, tmp_path):
    with pytest.raises(TrainSetupError) as err:
        next(iter(iter_train(_config(**kw), out_dir=tmp_path / "r")))
    assert str(err.value).startswith(words)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()  # nothing written

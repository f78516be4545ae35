"""genlab pretrain: tokenizer, model shape, the saved HF dir, and a toy end-to-end run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import CORPUS_LINES

from genlab.core.configs import ModelShape, PretrainConfig
from genlab.core.configs.pretrain import BOS_TOKEN, EOS_TOKEN, PAD_TOKEN
from genlab.core.pretrain.model import build_model, count_parameters, save_model_dir
from genlab.core.pretrain.pipeline import PretrainFinished, iter_pretrain
from genlab.core.pretrain.tokenizer import train_tokenizer

ODD_TEXTS = [
    "“Hello,” she said — it’s a café… ¡Olé! «ok» ñ",
    "  two  spaces,\nnew line\n\nand a tab\tend ",
    "Once upon a time",
    "emoji 🦊 and 中文",
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_tokenizer(CORPUS_LINES * 10, 300, tmp_path_factory.mktemp("tok"))


def test_tokenizer_round_trips_and_sets_special_tokens(tokenizer):
    assert len(tokenizer) == 300
    assert (tokenizer.eos_token, tokenizer.bos_token, tokenizer.pad_token) == (
        EOS_TOKEN, BOS_TOKEN, PAD_TOKEN)
    assert len({tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id}) == 3
    for text in [*ODD_TEXTS, *CORPUS_LINES]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == text
        with_bos = tokenizer(text)["input_ids"]
        assert with_bos == [tokenizer.bos_token_id, *ids]
        assert tokenizer.decode(with_bos, skip_special_tokens=True) == text
    assert tokenizer("")["input_ids"] == [tokenizer.bos_token_id]


def test_tokenizer_rejects_too_small_vocab():
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["a b c"], 100)


@pytest.mark.parametrize("tie", [True, False])
def test_build_model_matches_the_flags(tokenizer, tie):
    shape = ModelShape(layers=3, hidden=48, heads=4, kv_heads=2, mlp=96, context=64)
    model = build_model(tokenizer, layers=3, hidden=48, heads=4, kv_heads=2, mlp=96,
                        context=64, tie_embeddings=tie, seed=1)
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
            c.intermediate_size, c.max_position_embeddings, c.vocab_size) == (
        3, 48, 4, 2, 96, 64, 300)
    assert (c.eos_token_id, c.bos_token_id, c.pad_token_id) == (
        tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id)
    n = sum(p.numel() for p in model.parameters())
    assert n == count_parameters(shape, 300, tie_embeddings=tie)
    # 300*48 embed + 3 * (48*12*(8+4) q,o,k,v + 3*48*96 mlp + 96 norms) + 48 final norm
    assert count_parameters(shape, 300) == 14400 + 3 * (6912 + 13824 + 96) + 48


def test_model_shape_is_validated():
    from genlab.core.configs import ConfigError

    with pytest.raises(ConfigError, match="kv_heads"):
        ModelShape(hidden=192, heads=6, kv_heads=4)
    with pytest.raises(ConfigError, match="hidden"):
        ModelShape(hidden=100, heads=6)


LOAD_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    for path in sys.argv[1:]:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
        ids = tok("Once upon a time", return_tensors="pt")
        out = model.generate(**ids, max_new_tokens=5, do_sample=False)
        print(json.dumps({"arch": type(model).__name__, "eos": tok.eos_token,
                          "bos": tok.bos_token, "pad": tok.pad_token,
                          "new": out.shape[1] - ids["input_ids"].shape[1],
                          "gen": model.generation_config.to_diff_dict()}))
    assert not any(m.startswith("genlab") for m in sys.modules), "genlab was imported"
""")


def load_without_genlab(*paths: Path) -> list[dict]:
    """Load each dir with plain transformers in a fresh interpreter that never imports genlab."""
    proc = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, *map(str, paths)],
                          capture_output=True, text=True, timeout=180, cwd=paths[0],
                          env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                               "PATH": "/usr/bin:/bin", "TOKENIZERS_PARALLELISM": "false"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.strip().splitlines()[-len(paths):]]


def _write_corpus(path: Path, stories: list[str]) -> Path:
    path.write_text("".join(f"{s}\n{EOS_TOKEN}\n" for s in stories), encoding="utf-8")
    return path


TOY_STORIES = [" ".join(CORPUS_LINES[i:] + CORPUS_LINES[:i]) for i in range(8)] * 4


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A 2-layer model pretrained for 30 steps on a toy corpus: (events, out_dir)."""
    tmp = tmp_path_factory.mktemp("toy-pretrain")
    config = PretrainConfig(
        data=str(_write_corpus(tmp / "train.txt", TOY_STORIES)),
        eval_data=str(_write_corpus(tmp / "valid.txt", TOY_STORIES[:3])),
        vocab_size=320, eval_stories=2,
        shape=ModelShape(layers=2, hidden=32, heads=4, kv_heads=2, mlp=64, context=64),
        training={"max_steps": 30, "warmup_steps": 3, "batch_size": 4, "eval_every": 15,
                  "save_every": 15, "device": "cpu", "lr": 3e-3},
    )
    return list(iter_pretrain(config, tmp / "out")), tmp / "out"


def test_toy_pretrain_lowers_loss(toy_run):
    events, out = toy_run
    steps = [e for e in events if type(e).__name__ == "TrainStep"]
    assert len(steps) == 30
    first, last = sum(e.loss for e in steps[:3]) / 3, sum(e.loss for e in steps[-3:]) / 3
    assert last < first - 0.5
    done = events[-1]
    assert isinstance(done, PretrainFinished) and done.status == "completed"
    assert done.eval_stories == 2 and 0 < done.bits_per_byte < 8
    assert Path(done.model_dir) == out / "run" / "model"
    record = json.loads((out / "pretrain.json").read_text())
    assert record["bits_per_byte"] == done.bits_per_byte
    assert record["shape"]["layers"] == 2


def test_saved_dirs_load_with_plain_transformers(tokenizer, tmp_path, toy_run):
    model = build_model(tokenizer, layers=2, hidden=32, heads=4, kv_heads=2, mlp=64,
                        context=64)
    saved = save_model_dir(model, tokenizer, tmp_path / "m")
    for name in ("config.json", "model.safetensors", "generation_config.json",
                 "tokenizer.json", "tokenizer_config.json"):
        assert (saved / name).is_file(), name
    tok_config = json.loads((saved / "tokenizer_config.json").read_text())
    assert tok_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tok_config["model_max_length"] == 64
    trained = toy_run[1] / "run" / "model"
    for info in load_without_genlab(saved, trained):
        assert info["arch"] == "LlamaForCausalLM"
        assert (info["eos"], info["bos"], info["pad"]) == (EOS_TOKEN, BOS_TOKEN, PAD_TOKEN)
        assert info["new"] >= 1
        assert info["gen"]["eos_token_id"] == tokenizer.eos_token_id
        assert info["gen"]["pad_token_id"] == tokenizer.pad_token_id
        assert info["gen"]["do_sample"] is True


@pytest.mark.slow
def test_time_boxed_pretrain_decays_and_finishes(tmp_path):
    train = _write_corpus(tmp_path / "train.txt", TOY_STORIES)
    config = PretrainConfig(
        data=str(train), eval_data=None, vocab_size=300, time_limit_s=10.0, decay_fraction=0.5,
        shape=ModelShape(layers=1, hidden=16, heads=2, kv_heads=1, mlp=32, context=32),
        training={"batch_size": 2, "warmup_steps": 2, "device": "cpu", "eval_every": 0},
    )
    events = list(iter_pretrain(config, tmp_path / "out"))
    finished = [e for e in events if type(e).__name__ == "RunFinished"]
    # The decay run is sized to end on time; on a loaded machine the deadline may cut it.
    assert finished[0].status == "stopped" and finished[1].status in ("completed", "stopped")
    starts = [e for e in events if type(e).__name__ == "RunStarted"]
    assert starts[1].total_steps > 20 and starts[1].config["schedule"] == "linear"
    assert starts[1].config["model"] == str(tmp_path / "out" / "run-stable" / "model")
    decay_lrs = [e.lr for e in events[events.index(starts[1]):] if type(e).__name__ == "TrainStep"]
    if finished[1].status == "completed":
        assert decay_lrs[-1] < max(decay_lrs)
    done = events[-1]
    assert isinstance(done, PretrainFinished) and done.bits_per_byte is None
    assert Path(done.model_dir) == tmp_path / "out" / "run" / "model"


def test_a_held_out_split_run_resumes_with_the_same_split(tmp_path):
    from genlab.core.events import StopToken
    from genlab.core.pretrain.setup import read_eval_plan
    from genlab.core.training.run_dir import read_config

    unique = [f"Tale {i}. " + " ".join(CORPUS_LINES[i:] + CORPUS_LINES[:i]) for i in range(16)]
    config = PretrainConfig(
        data=str(_write_corpus(tmp_path / "train.txt", unique)), vocab_size=320,
        eval_split=0.25, shape=ModelShape(layers=1, hidden=32, heads=4, kv_heads=2, mlp=64,
                                          context=64),
        training={"max_steps": 6, "warmup_steps": 1, "batch_size": 4, "eval_every": 3,
                  "save_every": 2, "device": "cpu"})
    out, stop = tmp_path / "out", StopToken()
    for event in iter_pretrain(config, out, stop_token=stop):
        if type(event).__name__ == "TrainStep" and event.step == 2:
            stop.stop()
    plan = read_eval_plan(out)
    assert plan.source == "split" and plan.stories == 4 and plan.held_out_split == 0.25
    assert read_config(out / "run").eval_split == 0.25
    events = list(iter_pretrain(config, out, resume=True))
    done = events[-1]
    assert isinstance(done, PretrainFinished) and done.status == "completed"
    assert done.eval_source == "split" and done.eval_stories == 4 and done.bits_per_byte > 0

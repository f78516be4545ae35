"""The training loop end to end on tiny CPU models: learning, eval, early stopping, divergence,
stop/resume equivalence, setup errors, full-weight training and the PEFT-compatible output."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest
import torch
from conftest import CORPUS_LINES

from genlab.core.configs import GenerationRequest, SamplingParams, TrainConfig
from genlab.core.data.packing import DataError
from genlab.core.events import (
    CheckpointSaved,
    EvalResult,
    RunFinished,
    RunStarted,
    StopToken,
    TrainStep,
)
from genlab.core.modeling.loading import ModelLoadError
from genlab.core.training import run_dir as runs
from genlab.core.training.train import TrainSetupError, iter_train, train


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Tiny models run fastest single-threaded, and CPU results are then bit-reproducible.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    root = tmp_path_factory.mktemp("texts")
    train_txt = root / "train.txt"
    train_txt.write_text("\n\n".join(["the cat sat on the mat. " * 8] * 30))
    eval_txt = root / "eval.txt"
    eval_txt.write_text("\n\n".join(CORPUS_LINES))
    return {"train": str(train_txt), "eval": str(eval_txt)}


def _config(model_dir, texts, **kw) -> TrainConfig:
    base = dict(model=str(model_dir), data=texts["train"], seq_len=32, batch_size=4, lr=1e-2,
                schedule="constant", eval_every=0, device="cpu", max_steps=10)
    base.update(kw)
    return TrainConfig(**base)


def _eval_loss_of_adapter(base, adapter_dir, config) -> float:
    """Token-weighted eval loss of ``base`` + ``adapter_dir``, computed outside the loop."""
    from genlab.core.data.packing import prepare_data
    from genlab.core.modeling.loading import load_model
    from genlab.core.training.evaluation import count_loss_tokens, token_nll_sum

    loaded = load_model(str(base), device="cpu", adapters={"x": str(adapter_dir)})
    blocks = prepare_data(config, loaded.tokenizer).eval
    with torch.no_grad():
        logits = loaded.model(input_ids=blocks.input_ids,
                              attention_mask=blocks.attention_mask).logits
    return float(token_nll_sum(logits, blocks.labels)) / count_loss_tokens(blocks.labels)


def test_block_order_is_seeded_per_epoch_and_continues_across_epochs():
    from genlab.core.training.loop import BlockOrder

    order = BlockOrder(7, seed=3)
    stream = torch.cat([order.take(pos, 3) for pos in range(0, 21, 3)])  # 3 epochs, 7 steps
    assert torch.equal(stream, BlockOrder(7, seed=3).take(0, 21))  # position is all it needs
    for epoch in range(3):
        chunk = stream[epoch * 7:(epoch + 1) * 7]
        assert sorted(chunk.tolist()) == list(range(7))
        gen = torch.Generator().manual_seed(3 + epoch)
        assert torch.equal(chunk, torch.randperm(7, generator=gen))
    assert not torch.equal(stream[:7], stream[7:14])


# ----------------------------------------------------------------------------- a full run


@pytest.fixture(scope="module")
def completed(tiny_llama, texts, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "completed"
    config = _config(tiny_llama, texts, max_steps=30, eval_every=10,  # eval: 10% of train docs
                     sample_prompts=("the cat",), sample_max_new_tokens=8)
    events = list(iter_train(config, out_dir=out))
    return {"events": events, "dir": out, "config": config}


def test_events_and_run_dir_layout(completed):
    events, out = completed["events"], completed["dir"]
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    started, finished = events[0], events[-1]
    assert started.run_dir == str(out) and started.total_steps == 30 and not started.resumed
    assert 0 < started.trainable_params < started.total_params
    assert started.device == "cpu" and started.dtype == "float32"
    steps = [e for e in events if isinstance(e, TrainStep)]
    assert [e.step for e in steps] == list(range(1, 31))
    # the step-0 baseline first: every curve starts at the base model's loss
    assert [e.step for e in events if isinstance(e, EvalResult)] == [0, 10, 20, 30]
    assert [e.step for e in events if isinstance(e, CheckpointSaved)] == [10, 20]
    assert finished.status == "completed" and finished.steps == 30
    assert finished.tokens == steps[-1].tokens > 0
    assert all(e.grad_norm > 0 and e.update_ratio > 0 and e.tokens_per_s > 0 for e in steps)
    for name in ("config.json", "metrics.jsonl", "samples.jsonl", "summary.json",
                 "adapter/adapter_config.json", "adapter/adapter_model.safetensors"):
        assert (out / name).is_file(), name
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000020"]
    assert not list(out.rglob(".tmp*"))


def test_run_files_follow_the_umask(completed):
    # safetensors writes 0600: the adapter and checkpoints must be readable like the rest.
    umask = os.umask(0)
    os.umask(umask)
    out = completed["dir"]
    for path in [out, *out.rglob("*")]:
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == want, path


def test_loss_falls(completed):
    losses = [e.loss for e in completed["events"] if isinstance(e, TrainStep)]
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    evals = [e.loss for e in completed["events"] if isinstance(e, EvalResult)]
    assert evals[-1] < evals[0]


def test_metrics_and_samples_files(completed):
    out, events = completed["dir"], completed["events"]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    train = [r for r in records if r["type"] == "train"]
    evals = [r for r in records if r["type"] == "eval"]
    steps = [e for e in events if isinstance(e, TrainStep)]
    assert [r["loss"] for r in train] == [e.loss for e in steps]
    assert set(train[0]) == {"type", "step", "epoch", "loss", "lr", "grad_norm", "update_ratio",
                             "tokens", "tokens_per_s", "elapsed_s"}
    assert [r["step"] for r in evals] == [0, 10, 20, 30]
    assert all(r["perplexity"] == pytest.approx(math.exp(r["loss"])) for r in evals)
    assert all(r["bits_per_byte"] > 0 for r in evals)
    samples = runs.read_samples(out)
    assert [(s["step"], s["prompt"]) for s in samples] == [
        (0, "the cat"), (10, "the cat"), (20, "the cat"), (30, "the cat")]
    last_eval = [e for e in events if isinstance(e, EvalResult)][-1]
    assert last_eval.samples == ({"prompt": "the cat", "text": samples[-1]["text"]},)


def test_readers_round_trip(completed):
    out, events = completed["dir"], completed["events"]
    config = runs.read_config(out)
    assert config == TrainConfig.from_dict(events[0].config)
    assert config.target_modules == events[0].target_modules
    assert config.lr == completed["config"].lr and config.max_steps == 30
    resolved = runs.read_resolved(out)
    assert resolved["total_steps"] == 30 and resolved["trainable_params"] > 0
    summary = runs.read_summary(out)
    finished = events[-1]
    assert summary["status"] == finished.status == "completed"
    assert summary["best_eval_loss"] == finished.best_eval_loss
    assert summary["final_train_loss"] == finished.final_train_loss
    assert [r.name for r in runs.list_runs(out.parent)] == [out.name]


def test_adapter_changes_greedy_output(completed, tiny_llama):
    from genlab.core.generation.decode import generate
    from genlab.core.modeling.loading import load_model

    loaded = load_model(str(tiny_llama), device="cpu",
                        adapters={"x": str(completed["dir"] / "adapter")})
    params = SamplingParams(temperature=0, max_new_tokens=12)
    rows = generate(loaded, [GenerationRequest("the cat", params),
                             GenerationRequest("the cat", params, adapter="x")])
    assert rows[0].text != rows[1].text
    assert "sat" in rows[1].text


def test_adapter_loads_in_plain_peft(completed, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from genlab.core.modeling.loading import load_model

    adapter = completed["dir"] / "adapter"
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama),
                                      str(adapter)).eval()
    ours = load_model(str(tiny_llama), device="cpu", adapters={"x": str(adapter)})
    ids = torch.tensor([[1, 20, 31, 45, 7, 99]])
    with torch.no_grad():
        assert torch.allclose(plain(input_ids=ids).logits, ours.model(input_ids=ids).logits,
                              atol=1e-5)
    # ... and they are the trained weights: the final eval loss is reproduced from disk.
    last_eval = [e for e in completed["events"] if isinstance(e, EvalResult)][-1]
    assert _eval_loss_of_adapter(tiny_llama, adapter, completed["config"]) == pytest.approx(
        last_eval.loss, abs=1e-5)


def test_resume_of_a_finished_run_is_refused(completed):
    out = completed["dir"]
    with pytest.raises(TrainSetupError, match="already ended"):
        next(iter_train(None, resume_from=out))
    with pytest.raises(TrainSetupError, match="already a genlab run directory"):
        next(iter_train(completed["config"], out_dir=out))


# ----------------------------------------------------------------------------- stop / resume


def test_stop_and_resume_equals_uninterrupted(tiny_llama, texts, tmp_path):
    config = _config(tiny_llama, texts, eval_data=texts["eval"], max_steps=12, batch_size=2,
                     grad_accum=2, schedule="cosine", warmup_steps=2, eval_every=4, dropout=0.2,
                     seq_len=64)
    reference = train(config, out_dir=tmp_path / "ref")
    assert reference.status == "completed"

    token = StopToken()
    run_dir = tmp_path / "interrupted"
    events = []
    for event in iter_train(config, out_dir=run_dir, stop_token=token):
        events.append(event)
        if isinstance(event, TrainStep) and event.step == 3:
            # The generator is paused here: what it wrote so far is already on disk.
            assert [r["step"] for r in runs.read_metrics(run_dir, "train")] == [1, 2, 3]
        if isinstance(event, TrainStep) and event.step == 7:
            token.stop()
    assert isinstance(events[-2], CheckpointSaved) and events[-2].step == 7
    assert events[-1].status == "stopped" and events[-1].steps == 7
    assert runs.read_summary(run_dir)["status"] == "stopped"

    resumed = list(iter_train(None, resume_from=run_dir))
    assert resumed[0].resumed and resumed[0].start_step == 7
    assert [e.step for e in resumed if isinstance(e, TrainStep)] == [8, 9, 10, 11, 12]
    assert resumed[-1].status == "completed" and resumed[-1].steps == 12
    assert resumed[-1].tokens == reference.tokens

    ref_train = runs.read_metrics(tmp_path / "ref", "train")
    got_train = runs.read_metrics(run_dir, "train")
    assert [r["step"] for r in got_train] == list(range(1, 13))
    for key in ("loss", "lr", "grad_norm"):
        assert [r[key] for r in got_train] == pytest.approx([r[key] for r in ref_train],
                                                            abs=1e-5), key
    ref_eval = runs.read_metrics(tmp_path / "ref", "eval")
    got_eval = runs.read_metrics(run_dir, "eval")
    assert [r["loss"] for r in got_eval] == pytest.approx([r["loss"] for r in ref_eval],
                                                          abs=1e-5)


def test_closing_the_iterator_marks_stopped_and_resume_starts_over(tiny_llama, texts, tmp_path):
    config = _config(tiny_llama, texts, eval_split=0.0, max_steps=4)
    run_dir = tmp_path / "closed"
    gen = iter_train(config, out_dir=run_dir)
    for event in gen:
        if isinstance(event, TrainStep) and event.step == 2:
            break
    gen.close()
    summary = runs.read_summary(run_dir)
    assert summary["status"] == "stopped" and "resume starts over" in summary["message"]
    finished = train(None, resume_from=run_dir)
    assert finished.status == "completed" and finished.steps == 4
    assert [r["step"] for r in runs.read_metrics(run_dir, "train")] == [1, 2, 3, 4]


# ----------------------------------------------------------------------------- early stop, nan


def test_early_stopping_restores_the_best_adapter(tiny_llama, texts, tmp_path):
    config = _config(tiny_llama, texts, eval_data=texts["eval"], max_steps=80, lr=5e-2,
                     eval_every=2, patience=2, dropout=0.0)
    events = list(iter_train(config, out_dir=tmp_path / "es"))
    finished = events[-1]
    evals = [e for e in events if isinstance(e, EvalResult)]
    assert finished.status == "early-stopped", finished.message
    assert finished.steps < 80 and finished.best_step < finished.steps
    assert finished.weights_step == finished.best_step
    assert [e.is_best for e in evals[-2:]] == [False, False]
    assert finished.best_eval_loss == min(e.loss for e in evals)
    assert runs.read_summary(tmp_path / "es")["weights"] == "best"
    restored = _eval_loss_of_adapter(tiny_llama, tmp_path / "es" / "adapter", config)
    assert restored == pytest.approx(finished.best_eval_loss, abs=1e-5)


def test_divergence_is_caught_and_keeps_finite_weights(tiny_llama, texts, tmp_path):
    from safetensors.torch import load_file

    config = _config(tiny_llama, texts, optimizer="sgd", lr=1e3, max_grad_norm=0, max_steps=40,
                     eval_split=0.0)
    finished = train(config, out_dir=tmp_path / "div")
    assert finished.status == "diverged"
    assert "try a lower --lr, e.g. 100" in finished.message
    assert f"at step {finished.steps + 1} " in finished.message
    weights = load_file(str(tmp_path / "div" / "adapter" / "adapter_model.safetensors"))
    assert weights and all(torch.isfinite(w).all() for w in weights.values())
    assert runs.read_summary(tmp_path / "div")["status"] == "diverged"
    lines = (tmp_path / "div" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == finished.steps
    assert all(math.isfinite(json.loads(line)["loss"]) for line in lines)


# ----------------------------------------------------------------------------- setup errors


@pytest.mark.parametrize("overrides,error,fragment", [
    ({"target_modules": ("attn_q",)}, TrainSetupError, "available: q_proj"),
    ({"warmup_steps": 10}, TrainSetupError, "--warmup-steps 10"),
    ({"warmup_ratio": 0.95, "max_steps": 3}, TrainSetupError, "--warmup-ratio"),
    ({"patience": 2, "eval_split": 0.0}, TrainSetupError, "--patience 2"),
    ({"seq_len": 512}, TrainSetupError, "at most 256"),
    ({"data": "/nonexistent/train.txt"}, DataError, "--data"),
    ({"model": "/nonexistent/model"}, ModelLoadError, "--model"),
])
def test_setup_errors_leave_no_run_dir(tiny_llama, texts, tmp_path, overrides, error, fragment):
    config = _config(tiny_llama, texts, **overrides)
    out = tmp_path / "run"
    events = iter_train(config, out_dir=out)  # lazy: nothing happens before next()
    with pytest.raises(error) as info:
        next(events)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


# ----------------------------------------------------------------------------- full weights


def test_full_method_trains_every_weight(tiny_gpt2, texts, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = _config(tiny_gpt2, texts, method="full", lr=1e-3, max_steps=4, eval_split=0.0,
                     weight_decay=0.1)
    events = list(iter_train(config, out_dir=tmp_path / "full"))
    started, finished = events[0], events[-1]
    assert started.method == "full" and started.trainable_params == started.total_params
    assert started.target_modules == ()
    assert finished.status == "completed"
    out = tmp_path / "full" / "model"
    assert not (tmp_path / "full" / "adapter").exists()
    trained = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2)
    assert AutoTokenizer.from_pretrained(out).eos_token == "<|endoftext|>"
    base_params = dict(base.named_parameters())
    for name, param in trained.named_parameters():
        assert not torch.equal(param, base_params[name]), name


# ----------------------------------------------------------------------------- multi-process

_DDP_SCRIPT = '''
import json, os, sys
import torch
torch.set_num_threads(1)
from genlab.core.configs import TrainConfig
from genlab.core.training.train import iter_train
config = TrainConfig.from_dict(json.loads(sys.argv[1]))
events = list(iter_train(config, out_dir=sys.argv[2]))
line = " ".join(["EVENTS", os.environ["RANK"], json.dumps([type(e).__name__ for e in events]),
                 events[-1].status])
with open(os.path.join(sys.argv[3], "events-" + os.environ["RANK"] + ".txt"), "w") as f:
    f.write(line)  # a file per rank: two ranks' prints on one pipe can interleave
'''


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tiny_llama, texts, tmp_path):
    """DDP on two CPU processes (gloo), as ``accelerate launch`` runs it: the token-weighted
    loss over a global batch split across processes equals the single-process loss."""
    import os
    import subprocess
    import sys

    kw = dict(max_steps=4, batch_size=2, grad_accum=2, dropout=0.0, eval_every=2,
              sample_prompts=("the cat",), sample_max_new_tokens=4)
    single = train(_config(tiny_llama, texts, **{**kw, "batch_size": 4}),
                   out_dir=tmp_path / "one")
    assert single.status == "completed"
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    config = _config(tiny_llama, texts, **kw)
    import genlab

    # the script runs from tmp_path: make the genlab under test importable there too
    root = str(Path(genlab.__file__).resolve().parent.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         str(script), json.dumps(config.to_dict()), str(tmp_path / "two"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env)
    output = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, output
    files = [tmp_path / f"events-{rank}.txt" for rank in (0, 1)]
    assert all(f.is_file() for f in files), output
    lines = [f.read_text() for f in files]
    assert lines[1] == 'EVENTS 1 ["RunFinished"] completed'  # only rank 0 yields the rest
    # step-0 eval (eval_at_start) comes before the first step
    assert lines[0].startswith('EVENTS 0 ["RunStarted", "EvalResult", "TrainStep"')
    one = runs.read_metrics(tmp_path / "one")
    two = runs.read_metrics(tmp_path / "two")
    assert [(r["type"], r["step"]) for r in two] == [(r["type"], r["step"]) for r in one]
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], abs=1e-5)
    assert runs.read_resolved(tmp_path / "two")["num_processes"] == 2
    assert (tmp_path / "two" / "adapter" / "adapter_model.safetensors").is_file()

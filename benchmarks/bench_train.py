"""Training throughput of genlab's loop against Hugging Face ``Trainer`` + PEFT, same everything.

Both sides train the same model with the same LoRA config (rank, alpha, dropout, target
modules), AdamW at the same lr with a cosine schedule, batch size, sequence length (fully packed
blocks, so every step is ``batch x seq_len`` tokens), grad clipping at 1.0, steps, device and
precision (genlab's ``dtype=auto``: bf16 autocast over a bf16 base on capable CUDA, float32 on
CPU; the Trainer gets the matching ``bf16`` flag). Each side runs in its own child process so
that peak memory is its own; the first step is a warm-up and is left out of tokens/s.

The Trainer is given its cheapest settings (no eval, no checkpoints, one log at the end, no
progress bar); genlab logs every step to metrics.jsonl, as it always does.

genlab runs twice: as it trains by default (its fused LoRA step, ``fused_lora=True``) and with
PEFT's own LoRA layers (``--no-fused-lora``, the unoptimised reference); ``genlab_unfused``
reports the second, ``fused_speedup_per_cpu_s`` the gain of the first over it. ``--dropout 0``
measures the fast path (no dropout work at all); ``--compile`` adds ``torch.compile`` to genlab.

Prints one JSON object: tokens/s of each, ``ratio`` = genlab / Trainer (goal >= 1.2), the same
ratio at the median step and per CPU-second of each process (steadier on a shared machine), peak
memory (CUDA: ``torch.cuda.max_memory_allocated`` during training; CPU: peak RSS of the process
and its growth from the start of training, via ``resource.getrusage``).

Without ``--model`` a random-init Llama (hidden 256, 4 layers, 8 heads / 4 KV heads, MLP 688,
vocab 2048, ~3.4M params) with a byte-level BPE tokenizer trained on the generated text is built
in a temp dir; ``--preset smollm2-135m-shape`` builds a random-init model of SmolLM2-135M's
shape instead (``benchmarks/presets.py``). Without ``--data`` a seeded synthetic story corpus is
generated. ``--gradient-checkpointing`` turns it on for both sides (non-reentrant).

    python benchmarks/bench_train.py [--model DIR | --preset smollm2-135m-shape] [--data FILE]
        [--steps 40] [--batch-size 8] [--seq-len 128] [--rank 8] [--device auto] [--threads N]
        [--repeats 1] [--gradient-checkpointing]

The README's CPU training figures come from ``--steps 24 --repeats 3 --threads 1`` (the
defaults above are 40 steps, 1 repeat and torch's own thread count).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from presets import SHAPES, build_preset

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

GOAL = 1.2
EOS = "<|endoftext|>"
NAMES = ["Tom", "Lily", "Mia", "Ben", "the fox", "a small bird", "the old dog", "Sam"]
VERBS = ["found", "lost", "wanted", "saw", "painted", "shared", "hid", "carried"]
THINGS = ["a red ball", "a shiny stone", "the big tree", "a blue kite", "some warm bread",
          "a tiny boat", "the green door", "a box of toys"]
PLACES = ["in the park", "by the river", "at school", "in the garden", "near the hill",
          "under the bed", "on the beach", "in the forest"]
ENDINGS = ["They were very happy.", "It was a good day.", "Then they went home.",
           "Everyone laughed.", "They became best friends.", "The sun went down."]


# ----------------------------------------------------------------------------- inputs


def generate_corpus(path: Path, docs: int, seed: int = 0) -> Path:
    """Write ``docs`` short synthetic stories separated by blank lines."""
    rng = random.Random(seed)
    stories = []
    for _ in range(docs):
        sentences = [f"Once upon a time, {rng.choice(NAMES)} lived {rng.choice(PLACES)}."]
        for _ in range(rng.randint(4, 9)):
            sentences.append(f"{rng.choice(NAMES).capitalize()} {rng.choice(VERBS)} "
                             f"{rng.choice(THINGS)} {rng.choice(PLACES)}.")
        sentences.append(rng.choice(ENDINGS))
        stories.append(" ".join(sentences))
    path.write_text("\n\n".join(stories) + "\n", encoding="utf-8")
    return path


def build_model(out_dir: Path, corpus: Path) -> Path:
    """Save a random-init ~3.4M-param Llama and a 2048-token BPE tokenizer in ``out_dir``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus.read_text(encoding="utf-8").splitlines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    fast.save_pretrained(out_dir)
    config = LlamaConfig(vocab_size=2048, hidden_size=256, intermediate_size=688,
                         num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    return out_dir


# ---------------------------------------------------------------------------- workers


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class MemoryProbe:
    """Peak memory of the training phase: CUDA allocator peak, or process RSS on CPU."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.rss_at_start = 0.0

    def start(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.rss_at_start = _rss_mb()

    def report(self) -> dict[str, float]:
        import torch

        out = {"peak_rss_mb": round(_peak_rss_mb(), 1),
               "rss_growth_during_training_mb": round(_peak_rss_mb() - self.rss_at_start, 1)}
        if self.cuda:
            out["cuda_max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20,
                                                        1)
        return out


def _throughput(times: list[float], tokens: list[int]) -> float:
    """Tokens/s from step-end times and cumulative tokens, the first (warm-up) step left out."""
    return (tokens[-1] - tokens[0]) / (times[-1] - times[0])


def _rates(wall: list[float], cpu: list[float], tokens: list[int]) -> dict[str, float]:
    """Tokens per wall second overall and at the median step, and per CPU second.

    The median step and the CPU clock of this process are less sensitive than the overall
    wall clock to other work on a shared machine.
    """
    steps = sorted((t1 - t0, n1 - n0) for t0, t1, n0, n1
                   in zip(wall, wall[1:], tokens, tokens[1:], strict=False))
    seconds, step_tokens = steps[len(steps) // 2]
    return {"tokens_per_s": _throughput(wall, tokens),
            "tokens_per_s_median_step": step_tokens / seconds,
            "tokens_per_cpu_s": _throughput(cpu, tokens)}


def run_genlab(spec: dict) -> dict:
    """Train with ``genlab.core.training.train.iter_train``; time the TrainStep events."""
    import torch

    from genlab.core.configs import TrainConfig
    from genlab.core.events import RunStarted, TrainStep
    from genlab.core.training.train import iter_train

    config = TrainConfig(
        model=spec["model"], data=spec["data"], eval_split=0.0, seq_len=spec["seq_len"],
        rank=spec["rank"], alpha=2.0 * spec["rank"], dropout=spec["dropout"],
        fused_lora=spec.get("fused", True), compile=spec.get("compile", False),
        target_modules=tuple(spec["targets"]) if spec.get("targets") else None,
        lr=2e-4, optimizer="adamw", schedule="cosine", batch_size=spec["batch_size"],
        max_steps=spec["steps"], max_grad_norm=1.0, eval_every=0, seed=0,
        device=spec["device"], dtype="auto", data_format="text",
        gradient_checkpointing=spec.get("gradient_checkpointing", False),
    )
    probe = MemoryProbe(cuda=spec["cuda"])
    times, cpu, tokens, started = [], [], [], None
    for event in iter_train(config, out_dir=Path(spec["work"]) / "genlab-run"):
        if isinstance(event, RunStarted):
            started = event
            probe.start()
        elif isinstance(event, TrainStep):
            if spec["cuda"]:
                torch.cuda.synchronize()
            times.append(time.perf_counter())
            cpu.append(time.process_time())
            tokens.append(event.tokens)
    return {**_rates(times, cpu, tokens), "steps": len(times),
            "dtype": started.dtype, "device": started.device,
            "targets": list(started.target_modules), **probe.report()}


def _packed_blocks(tokenizer, data: str, seq_len: int) -> list[list[int]]:
    """Documents (blank-line separated) + EOS, concatenated, cut into full seq_len blocks."""
    text = Path(data).read_text(encoding="utf-8")
    docs = [d.strip() for d in text.split("\n\n") if d.strip()]
    stream: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        stream.extend(ids + [tokenizer.eos_token_id])
    return [stream[i:i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]


def run_hf_trainer(spec: dict) -> dict:
    """Train with ``transformers.Trainer`` on a PEFT model; time ``on_step_end``."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    bf16 = spec["genlab_dtype"] == "bfloat16"
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    blocks = _packed_blocks(tokenizer, spec["data"], spec["seq_len"])
    dataset = Dataset.from_dict({"input_ids": blocks, "labels": blocks,
                                 "attention_mask": [[1] * len(b) for b in blocks]})
    model = AutoModelForCausalLM.from_pretrained(
        spec["model"], dtype=torch.bfloat16 if bf16 else torch.float32)
    model = get_peft_model(model, LoraConfig(
        r=spec["rank"], lora_alpha=2 * spec["rank"], lora_dropout=spec["dropout"],
        target_modules=spec["targets"], task_type="CAUSAL_LM"))
    args = TrainingArguments(
        output_dir=str(Path(spec["work"]) / "hf-run"), per_device_train_batch_size=spec[
            "batch_size"], max_steps=spec["steps"], learning_rate=2e-4,
        lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
        optim="adamw_torch", logging_steps=spec["steps"], save_strategy="no",
        eval_strategy="no", report_to=[], disable_tqdm=True, dataloader_num_workers=0,
        seed=0, use_cpu=not spec["cuda"], bf16=bf16, remove_unused_columns=False,
        gradient_checkpointing=spec.get("gradient_checkpointing", False),
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    probe = MemoryProbe(cuda=spec["cuda"])
    times: list[float] = []
    cpu: list[float] = []

    class StepTimer(TrainerCallback):
        def on_train_begin(self, *a, **k):
            probe.start()

        def on_step_end(self, *a, **k):
            if spec["cuda"]:
                torch.cuda.synchronize()
            times.append(time.perf_counter())
            cpu.append(time.process_time())

    Trainer(model=model, args=args, train_dataset=dataset, data_collator=default_data_collator,
            callbacks=[StepTimer()]).train()
    step_tokens = spec["batch_size"] * spec["seq_len"]
    tokens = [step_tokens * (i + 1) for i in range(len(times))]
    return {**_rates(times, cpu, tokens), "steps": len(times), **probe.report()}


def worker(kind: str, spec_path: str) -> None:
    """Child-process entry: run one side and print its result as the last stdout line."""
    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        import torch

        torch.set_num_threads(spec["threads"])
    if kind == "genlab-unfused":
        spec = {**spec, "fused": False, "compile": False}
    result = run_hf_trainer(spec) if kind == "hf" else run_genlab(spec)
    print(json.dumps(result))


def _spawn(kind: str, spec: dict, work: Path) -> dict:
    spec_path = work / f"spec-{kind}.json"
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, "--spec", str(spec_path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- main


def main() -> None:
    """Build inputs, run both sides (alternating, ``--repeats`` times), print the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model directory (default: a ~3.4M random Llama)")
    p.add_argument("--preset", choices=sorted(SHAPES),
                   help="build a random-init model of this shape instead (e.g. "
                        "smollm2-135m-shape: 30 layers, hidden 576, 134.5M params)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute activations in the backward pass, on both sides")
    p.add_argument("--data", help="a .txt training file (default: generated stories)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--repeats", type=int, default=1, help="runs per side; medians reported")
    p.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout, both sides "
                   "(genlab's default 0.05; 0 is the fast path)")
    p.add_argument("--compile", action="store_true", help="torch.compile genlab's model")
    p.add_argument("--worker", choices=["genlab", "genlab-unfused", "hf"],
                   help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a.worker, a.spec)
        return

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    cuda = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        docs_needed = max(400, a.steps * a.batch_size * a.seq_len // 60)
        data = Path(a.data) if a.data else generate_corpus(work / "stories.txt", docs_needed)
        if a.model and a.preset:
            p.error("--model and --preset are alternatives; give one")
        if a.preset:
            model = str(build_preset(a.preset, work / a.preset))
        else:
            model = a.model or str(build_model(work / "model", data))
        spec = {"model": model, "data": str(data), "steps": a.steps,
                "batch_size": a.batch_size, "seq_len": a.seq_len, "rank": a.rank,
                "device": "cuda" if cuda else "cpu", "cuda": cuda, "threads": a.threads,
                "work": str(work), "targets": None, "dropout": a.dropout,
                "compile": a.compile, "gradient_checkpointing": a.gradient_checkpointing}
        runs: dict[str, list[dict]] = {"genlab": [], "hf_trainer": [], "genlab_unfused": []}
        for _ in range(a.repeats):
            runs["genlab"].append(_spawn("genlab", spec, work))
            spec.update(targets=runs["genlab"][0]["targets"],
                        genlab_dtype=runs["genlab"][0]["dtype"])
            _cleanup(work)
            runs["hf_trainer"].append(_spawn("hf", spec, work))
            _cleanup(work)
            runs["genlab_unfused"].append(_spawn("genlab-unfused", spec, work))
            _cleanup(work)
        params = _count_params(model)
    report = _summarise(runs, a, params, cuda)
    print(json.dumps(report, indent=2))


def _cleanup(work: Path) -> None:
    import shutil

    for name in ("genlab-run", "hf-run"):
        shutil.rmtree(work / name, ignore_errors=True)


def _count_params(model_dir: str) -> int:
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(model_dir).parameters())


def _summarise(runs: dict[str, list[dict]], a: argparse.Namespace, params: int,
               cuda: bool) -> dict:
    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    sides = {}
    for side in runs:
        keys = [k for k in runs[side][0] if isinstance(runs[side][0][k], (int, float))]
        sides[side] = {k: round(median(side, k), 1) for k in keys}
        sides[side]["tokens_per_s_each_run"] = [round(r["tokens_per_s"], 1) for r in runs[side]]
    ratio = median("genlab", "tokens_per_s") / median("hf_trainer", "tokens_per_s")
    step_ratio = (median("genlab", "tokens_per_s_median_step")
                  / median("hf_trainer", "tokens_per_s_median_step"))
    cpu_ratio = median("genlab", "tokens_per_cpu_s") / median("hf_trainer", "tokens_per_cpu_s")
    unfused_ratio = (median("genlab_unfused", "tokens_per_cpu_s")
                     / median("hf_trainer", "tokens_per_cpu_s"))
    fused_gain = median("genlab", "tokens_per_cpu_s") / median("genlab_unfused",
                                                               "tokens_per_cpu_s")
    device = "cuda" if cuda else "cpu"
    if cuda:
        import torch

        device = torch.cuda.get_device_name(0)
    return {
        "benchmark": "train tokens/s: genlab iter_train vs transformers.Trainer + PEFT LoRA",
        "device": device, "dtype": runs["genlab"][0]["dtype"], "model_params": params,
        "settings": {"steps": a.steps, "batch_size": a.batch_size, "seq_len": a.seq_len,
                     "rank": a.rank, "targets": runs["genlab"][0]["targets"],
                     "threads": a.threads or "default", "repeats": a.repeats,
                     "gradient_checkpointing": a.gradient_checkpointing,
                     "dropout": a.dropout, "compile": a.compile,
                     "model": a.model or (f"random-init {a.preset}" if a.preset else
                                          "random-init llama (~3.4M)")},
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "genlab": sides["genlab"], "hf_trainer": sides["hf_trainer"],
        "genlab_unfused": sides["genlab_unfused"],
        "ratio_unfused_per_cpu_s": round(unfused_ratio, 3),
        "fused_speedup_per_cpu_s": round(fused_gain, 3),
        "ratio": round(ratio, 3), "ratio_median_step": round(step_ratio, 3),
        "ratio_per_cpu_s": round(cpu_ratio, 3), "goal": GOAL,
        "meets_goal": ratio >= GOAL, "meets_goal_per_cpu_s": cpu_ratio >= GOAL,
    }


if __name__ == "__main__":
    main()

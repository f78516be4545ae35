"""Speed of genlab's decode loop against ``model.generate`` and against bare forward passes.

Prints one JSON object for one model, all measured in the same run (median of ``--repeats``
after a warm-up):

* ``grid``: 8 sampling settings x ``--new-tokens`` tokens as ONE genlab run vs 8 sequential
  ``model.generate()`` calls with the equivalent settings (goal: speedup >= 4x).
* ``single``: one setting, genlab vs ``model.generate()`` (goal: speedup >= 1.1x).
* ``overhead``: the 8-row genlab run vs the same forward calls alone (prefill + new_tokens - 1
  cached steps, same batch, same arguments, argmax feeding the next step) (goal: <= 5%).
  Each overhead entry also gives ``outside_forward_pct``: within the genlab runs themselves,
  the CPU time outside the model's forward calls (sampling, events, streamed text) as a share
  of the time inside them (hooks on the model; median over repeats), and the same share for
  the bare runs (their argmax and loop). Both halves alternate every step, so on a shared
  machine this split is far steadier than the ratio of two separate runs.
* ``overhead_common``: the same, for one common setting (T 0.8, top-p 0.95) on all 8 rows, each
  row with its own seed; ``overhead_common_top_k``: T 0.8, top-k 40 on all 8 rows.
* ``overhead_full``: the same, for ``FULL``: 8 rows that between them switch on every sampler
  stage (typical-p, epsilon, eta, top-nσ, min-keep, presence/frequency with a window,
  no-repeat-ngram, DRY, XTC, dynamic temperature, mirostat v1 and v2, min-tokens, logit bias,
  llama.cpp's order) besides the original ones: the most expensive mix.

Runners take turns within each repeat; both wall-clock and CPU time (``time.process_time``)
medians are reported, since on a shared machine CPU time is the steadier measure.

Every row ignores EOS so all rows run full length, and prompts are raw text on both sides
(no chat template). Without ``--model`` a small random-init Llama (hidden 256, 4 layers, 8 heads /
4 KV heads, MLP 688, vocab 2048, ~3.4M params: the shipped tinystories-1.4m is smaller, 1.44M,
hidden 128 and 6 layers; pass ``--model genlab/assets/tinystories-1.4m`` to measure it) with a
freshly trained byte-level BPE tokenizer is built in a temp dir; ``--preset smollm2-135m-shape``
builds a random-init model of SmolLM2-135M's shape instead (``benchmarks/presets.py``).

    python benchmarks/bench_sampling.py [--model DIR | --preset smollm2-135m-shape]
        [--repeats 5] [--new-tokens 128] [--device cpu] [--dtype float32]

With ``--preset`` the report is instead the CPU format table of ``bench_dtypes.py`` (float32,
bfloat16, float16 and int8 on the real-shape model: single setting and grid of 8 against
``generate()``, peak memory, quality), with ``--new-tokens 64 --repeats 1`` by default.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from presets import SHAPES, build_preset

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "Once upon a time, there was a little fox who"
GRID = [  # (temperature, top_k, top_p, min_p, repetition_penalty)
    (0.0, 0, 1.0, 0.0, 1.0),
    (0.7, 0, 1.0, 0.0, 1.0),
    (1.0, 0, 1.0, 0.0, 1.0),
    (1.3, 0, 1.0, 0.0, 1.0),
    (1.0, 40, 1.0, 0.0, 1.0),
    (1.0, 0, 0.9, 0.0, 1.0),
    (1.0, 0, 1.0, 0.1, 1.0),
    (0.8, 50, 0.95, 0.0, 1.2),
]
SINGLE = (0.8, 0, 0.95, 0.0, 1.0)
COMMON_TOP_K = (0.8, 40, 1.0, 0.0, 1.0)
FULL = [  # SamplingParams keywords: every stage is on in at least one row
    dict(temperature=0.7, typical_p=0.9, epsilon_cutoff=3e-4),
    dict(eta_cutoff=3e-4, min_keep=2, top_k=50, top_p=0.95, repetition_penalty=1.2),
    dict(presence_penalty=0.5, frequency_penalty=0.3, repeat_last_n=64, top_k=40),
    dict(no_repeat_ngram=3, temperature=0.9, top_p=0.9),
    dict(dry_multiplier=0.8, min_p=0.05),
    dict(xtc_probability=0.5, xtc_threshold=0.1, min_p=0.02, sampler_order="llama.cpp"),
    dict(top_n_sigma=1.0, dynatemp_range=0.5, temperature=1.2, mirostat=1),
    dict(mirostat=2, mirostat_tau=5.0, min_tokens=8, logit_bias=["0=-inf"]),
]


def corpus_lines() -> list[str]:
    """Training text for the tokenizer: shared TinyStories if present, else a small corpus."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinystories" / "valid.txt"
    if shared.is_file():
        return shared.read_text(encoding="utf-8").splitlines()[:20000]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import CORPUS_LINES

    return CORPUS_LINES * 50


def build_default_model(out_dir: Path) -> Path:
    """Save a random-init ~3.4M-param Llama with a 2048-token byte-level BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus_lines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>")
    fast.save_pretrained(out_dir)
    config = LlamaConfig(vocab_size=2048, hidden_size=256, intermediate_size=688,
                         num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    return out_dir


class ForwardClock:
    """CPU seconds spent inside the model's forward calls (hooks on the top module).

    Within one run, the time outside the forwards (sampling, events, text) against the time
    inside them is the steadiest overhead figure on a shared machine: both halves alternate
    every step, so a burst of load from other processes hits them alike.
    """

    def __init__(self, model) -> None:
        self.total = 0.0
        self._start = 0.0
        model.register_forward_pre_hook(self._enter)
        model.register_forward_hook(self._leave)

    def _enter(self, *_args) -> None:
        self._start = time.process_time()

    def _leave(self, *_args) -> None:
        self.total += time.process_time() - self._start


def measure(runners: dict, repeats: int, clock: ForwardClock | None = None
            ) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds per runner, after one warm-up each.

    The runners take turns in every repeat, so a burst of load from other processes hits them
    alike; CPU time (this process only) is the steadier figure on a shared machine. With a
    ``clock``, also the median share of each run's CPU time spent outside the forward calls.
    """
    import torch

    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)
    for fn in runners.values():
        torch.manual_seed(0)
        fn()
    wall: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    outside: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            torch.manual_seed(0)
            sync()
            forward_before = clock.total if clock is not None else 0.0
            w, c = time.perf_counter(), time.process_time()
            fn()
            sync()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
            if clock is not None:  # (total - forward) / forward, for this run alone
                forward = clock.total - forward_before
                outside[name].append((cpu[name][-1] - forward) / max(forward, 1e-9))
    return {name: {"wall_s": statistics.median(wall[name]), "cpu_s": statistics.median(cpu[name]),
                   **({"outside_forward": statistics.median(outside[name])} if clock else {})}
            for name in runners}


def genlab_runner(loaded, settings: list, new_tokens: int):
    """One genlab batch, a row per setting: a (T, k, p, min-p, penalty) tuple or a dict of
    ``SamplingParams`` keywords."""
    from genlab.core.configs import GenerationRequest, SamplingParams
    from genlab.core.generation.decode import generate

    def params(setting) -> SamplingParams:
        if isinstance(setting, dict):
            return SamplingParams(**setting, ignore_eos=True, max_new_tokens=new_tokens)
        t, k, p, m, r = setting
        return SamplingParams(temperature=t, top_k=k, top_p=p, min_p=m, repetition_penalty=r,
                              ignore_eos=True, max_new_tokens=new_tokens)

    requests = [GenerationRequest(PROMPT, params(s), seed=i, chat=False)
                for i, s in enumerate(settings)]
    return lambda: generate(loaded, requests)


def hf_runner(loaded, settings: list[tuple], new_tokens: int):
    """Sequential ``model.generate`` calls, one per setting, EOS disabled."""
    model, tok = loaded.model, loaded.tokenizer
    inputs = tok(PROMPT, return_tensors="pt").to(loaded.device)
    configs = []
    for t, k, p, m, r in settings:
        gc = copy.deepcopy(model.generation_config)
        gc.eos_token_id = None
        gc.pad_token_id = tok.pad_token_id
        gc.max_new_tokens, gc.min_new_tokens = new_tokens, new_tokens
        gc.repetition_penalty = r
        gc.do_sample = t > 0
        gc.temperature, gc.top_k, gc.top_p, gc.min_p = (t, k, p, m or None) if t > 0 else (
            None, None, None, None)
        configs.append(gc)

    def run() -> None:
        for gc in configs:
            out = model.generate(**inputs, generation_config=gc)
            assert out.shape[1] == inputs["input_ids"].shape[1] + new_tokens

    return run


def bare_runner(loaded, rows: int, new_tokens: int):
    """Prefill + ``new_tokens - 1`` cached forwards, argmax feeding the next step.

    The forward arguments are the ones genlab passes for an unpadded batch (no attention
    mask: the model's causal mask is exact), so the difference is genlab's own work.
    """
    import inspect

    import torch
    from transformers import DynamicCache

    model, tok = loaded.model, loaded.tokenizer
    ids = torch.tensor([tok(PROMPT)["input_ids"]] * rows, device=loaded.device)
    pos0 = torch.arange(ids.shape[1], device=loaded.device).expand(rows, -1)
    # The cache keyword genlab passes (transformers >= 5.2 deprecates past_key_values).
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else \
        "past_key_values"

    @torch.inference_mode()
    def run() -> None:
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, position_ids=pos0, use_cache=True, logits_to_keep=1,
                    **{key: cache})
        pos = pos0[:, -1:] + 1
        for _ in range(new_tokens - 1):
            nxt = out.logits[:, -1, :].float().argmax(-1, keepdim=True)
            out = model(input_ids=nxt, position_ids=pos, use_cache=True, logits_to_keep=1,
                        **{key: cache})
            pos = pos + 1
        out.logits[:, -1, :].float().argmax(-1)

    return run


def main() -> None:
    """Measure the three comparisons and print them as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="HF model directory (default: build a ~3.4M random Llama)")
    ap.add_argument("--preset", choices=sorted(SHAPES),
                    help="build a random-init model of this shape instead (e.g. "
                         "smollm2-135m-shape: 30 layers, hidden 576, 134.5M params)")
    ap.add_argument("--repeats", type=int, default=None, help="default 5 (--preset: 1)")
    ap.add_argument("--new-tokens", type=int, default=None, help="default 128 (--preset: 64)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: steadier on a shared CPU)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    ap.add_argument("--dtype", default="float32",
                    help="float32 (default), bfloat16, float16 or auto (bf16 on capable CUDA)")
    import bench_dtypes  # it imports this module's runners

    bench_dtypes.add_arguments(ap)
    args = ap.parse_args()
    if args.model and args.preset:
        ap.error("--model and --preset are alternatives; give one")
    if args.preset:  # the real-shape CPU table: every weight format against generate()
        args.repeats, args.new_tokens = args.repeats or 1, args.new_tokens or 64
        report = bench_dtypes.run(args)
        print(json.dumps(report, indent=2))
        print("\n".join(bench_dtypes.summary_lines(report)))
        return
    args.repeats, args.new_tokens = args.repeats or 5, args.new_tokens or 128

    import torch

    from genlab.core.modeling.loading import load_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.preset:
            model_dir = str(build_preset(args.preset, Path(tmp) / args.preset))
        else:
            model_dir = args.model or str(build_default_model(Path(tmp)))
        loaded = load_model(model_dir, device=args.device, dtype=args.dtype,
                            threads=args.threads)
        clock = ForwardClock(loaded.model)
        n = args.new_tokens
        t = measure({
            "grid_genlab": genlab_runner(loaded, GRID, n),
            "grid_hf": hf_runner(loaded, GRID, n),
            "single_genlab": genlab_runner(loaded, [SINGLE], n),
            "single_hf": hf_runner(loaded, [SINGLE], n),
            "common_genlab": genlab_runner(loaded, [SINGLE] * len(GRID), n),  # seeds 0..7
            "common_top_k_genlab": genlab_runner(loaded, [COMMON_TOP_K] * len(GRID), n),
            "full_genlab": genlab_runner(loaded, FULL, n),
            "bare": bare_runner(loaded, len(GRID), n),
        }, args.repeats, clock)

    def ratios(a: str, b: str) -> dict[str, float]:
        return {k: round(t[a][k] / t[b][k], 3) for k in ("wall_s", "cpu_s")}

    def secs(name: str) -> dict[str, float]:
        return {k: round(t[name][k], 4) for k in ("wall_s", "cpu_s")}

    def overhead(name: str, setting: str) -> dict:
        return {"setting": setting, "genlab": secs(name), "bare_forward": secs("bare"),
                "overhead_pct": {k: round(100 * (v - 1), 2) for k, v in
                                 ratios(name, "bare").items()},
                "outside_forward_pct": round(100 * t[name]["outside_forward"], 2),
                "bare_outside_forward_pct": round(100 * t["bare"]["outside_forward"], 2),
                "goal": "<= 5"}

    report = {
        "model": args.model or (f"random-init {args.preset}" if args.preset else
                                "random-init llama 3.4M (the benchmark default)"),
        "params": loaded.num_parameters,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
        "new_tokens": n,
        "repeats": args.repeats,
        "grid": {"rows": len(GRID), "genlab": secs("grid_genlab"),
                 "hf_sequential": secs("grid_hf"),
                 "speedup": ratios("grid_hf", "grid_genlab"), "goal": ">= 4"},
        "single": {"genlab": secs("single_genlab"), "hf": secs("single_hf"),
                   "speedup": ratios("single_hf", "single_genlab"), "goal": ">= 1.1"},
        "overhead": overhead("grid_genlab", "GRID: the 8 settings above"),
        "overhead_common": overhead("common_genlab", "T 0.8, top-p 0.95 on all 8 rows, seeds 0-7"),
        "overhead_common_top_k": overhead("common_top_k_genlab",
                                          "T 0.8, top-k 40 on all 8 rows, seeds 0-7"),
        "overhead_full": overhead("full_genlab", "FULL: every sampler stage on in some row"),
        "genlab_grid_tokens_per_s": round(len(GRID) * n / t["grid_genlab"]["wall_s"], 1),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

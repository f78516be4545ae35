"""Decode speed, memory and quality of each CPU weight format on a real-shape model.

What ``bench_sampling.py --preset smollm2-135m-shape`` prints (and this script alone does the
same): for genlab at float32, bfloat16, float16 and ``--quantize int8``, measured in one run with
HF ``generate()`` on the very same loaded model taking turns with it:

``-compile`` formats decode with ``--compile`` (``torch.compile`` of the step; its warm-up run
compiles, or reads inductor's on-disk cache from an earlier run). Per format:

* ``single``: one setting (T 0.8, top-p 0.95), tokens per CPU-second, genlab vs
  ``generate()`` (goal: >= 1.5x at the same dtype);
* ``grid``: 8 settings in one genlab batch vs 8 sequential ``generate()`` calls, all rows'
  tokens per CPU-second (goal: >= 4x);
* ``memory``: peak resident memory of ``genlab.api.sample`` in a fresh process (own
  high-water mark, VmHWM) beside the goal ``1.5 x weights + KV cache``; ``growth`` is the peak
  minus the process before loading (Python, torch and transformers themselves are ~400 MB),
  ``model_growth`` the same without the tokenizer's share (measured alone);
* ``quality``: greedy agreement with float32 over 64 tokens on this model (teacher-forced:
  each position predicted from float32's own greedy prefix; and free-running: positions until
  the first difference) and, on the shipped tinystories-1.4m (trained, so logits are not flat),
  free-running greedy agreement and the bits-per-byte change on the first 40 TinyStories
  validation stories (the model card's eval set; needs ``$GENLAB_DATA_DIR``).

The random model's weights have init std 0.05 instead of transformers' 0.02: at 0.02 the
logits are nearly flat (std 0.48) and greedy decoding repeats one token, so any two formats
"agree"; at 0.05 (logit std 1.2) the argmax is a real choice. Speed does not depend on it.

CPU time (``time.process_time``, all threads) is the steady figure on a shared machine; every
runner takes its turn in each repeat, and the other cores' load during the run is printed.

    python benchmarks/bench_dtypes.py [--threads 1] [--new-tokens 64] [--repeats 1]
        [--dtypes float32,bfloat16,float16,int8,float16-compile] [--skip-memory]
        [--skip-quality]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_sampling import GRID, PROMPT, SINGLE, genlab_runner, hf_runner
from presets import build_preset

FORMATS = {"float32": ("float32", "none", False), "bfloat16": ("bfloat16", "none", False),
           "float16": ("float16", "none", False), "int8": ("float32", "int8", False),
           "float32-compile": ("float32", "none", True),
           "bfloat16-compile": ("bfloat16", "none", True),
           "float16-compile": ("float16", "none", True)}
"""Format name -> (``--dtype``, ``--quantize``, ``--compile``)."""
DEFAULT_FORMATS = "float32,bfloat16,float16,int8,float16-compile"
QUALITY_STD = 0.05
PRESET = "smollm2-135m-shape"
BPB_STORIES = 40


class CpuLoad:
    """CPU seconds other processes used while this one ran (from ``/proc/stat``)."""

    def __init__(self) -> None:
        self.start = (self._busy(), time.process_time(), time.perf_counter())

    @staticmethod
    def _busy() -> float:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except (OSError, ValueError):
            return 0.0
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")

    def other_cores_busy(self) -> float:
        """Average cores busy with other processes since the start."""
        busy, cpu, wall = self.start
        elapsed = time.perf_counter() - wall
        return round((self._busy() - busy - (time.process_time() - cpu)) / max(elapsed, 1e-9), 2)


def measure(runners: dict, repeats: int, warmups: dict) -> dict[str, dict[str, float]]:
    """Median CPU and wall seconds per runner; each warms up once on a short run first."""
    import torch

    for fn in warmups.values():
        fn()
    cpu: dict[str, list[float]] = {n: [] for n in runners}
    wall: dict[str, list[float]] = {n: [] for n in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            torch.manual_seed(0)
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    return {n: {"cpu_s": statistics.median(cpu[n]), "wall_s": statistics.median(wall[n])}
            for n in runners}


def load_formats(model_dir: str, names: list[str], threads: int) -> dict:
    from genlab.core.modeling.loading import load_model

    return {name: load_model(model_dir, device="cpu", dtype=FORMATS[name][0],
                             quantize=FORMATS[name][1], compile=FORMATS[name][2],
                             threads=threads) for name in names}


def speed_table(models: dict, new_tokens: int, repeats: int) -> dict:
    """Single setting and grid of 8, genlab vs ``generate()``, per format (interleaved)."""
    runners, warm = {}, {}
    for name, loaded in models.items():
        for kind, settings in (("single", [SINGLE]), ("grid", GRID)):
            runners[f"{name}/{kind}/genlab"] = genlab_runner(loaded, settings, new_tokens)
            runners[f"{name}/{kind}/hf"] = hf_runner(loaded, settings, new_tokens)
            warm[f"{name}/{kind}/genlab"] = genlab_runner(  # a compiled step: the same shapes
                loaded, settings, new_tokens if loaded.compile else 4)
            warm[f"{name}/{kind}/hf"] = hf_runner(loaded, settings, 4)
    t = measure(runners, repeats, warm)
    table = {}
    for name in models:
        row = {}
        for kind, rows in (("single", 1), ("grid", len(GRID))):
            ours, theirs = t[f"{name}/{kind}/genlab"], t[f"{name}/{kind}/hf"]
            tokens = rows * new_tokens
            row[kind] = {
                "genlab_tok_per_cpu_s": round(tokens / ours["cpu_s"], 2),
                "hf_generate_tok_per_cpu_s": round(tokens / theirs["cpu_s"], 2),
                "genlab_tok_per_s": round(tokens / ours["wall_s"], 2),  # wall clock: threads
                "hf_generate_tok_per_s": round(tokens / theirs["wall_s"], 2),
                "speedup_cpu": round(theirs["cpu_s"] / ours["cpu_s"], 3),
                "speedup_wall": round(theirs["wall_s"] / ours["wall_s"], 3),
                "goal": ">= 1.5" if kind == "single" else ">= 4"}
        table[name] = row
    return table


MEMORY_SCRIPT = """
import json, sys
from genlab.core.modeling.memory import current_process_memory, peak_process_memory
from genlab.core.modeling.loading import load_model
import genlab.api
path, dtype, quantize, threads, new, compile = sys.argv[1:7]
before = current_process_memory()
loaded = load_model(path, device="cpu", dtype=dtype, quantize=quantize, threads=int(threads),
                    compile=compile == "1")
rows = genlab.api.sample(sys.argv[7], loaded=loaded, chat=False,
                         base={"max_new_tokens": int(new), "ignore_eos": True, "top_p": 0.95,
                               "temperature": 0.8})
print(json.dumps({"before": before, "peak": peak_process_memory(),
                  "weights": loaded.weight_bytes, "tokens": len(rows[0]["token_ids"])}))
"""


TOKENIZER_SCRIPT = """
import json, sys
from genlab.core.modeling.memory import current_process_memory, peak_process_memory
from genlab.core.modeling.loading import load_tokenizer
import genlab.api
before = current_process_memory()
load_tokenizer(sys.argv[1])
print(json.dumps({"growth": peak_process_memory() - before}))
"""


def _child(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    return json.loads(out.stdout.strip().splitlines()[-1])


def kv_cache_bytes(config, tokens: int, element: int) -> int:
    """Keys and values of ``tokens`` positions for one row."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * tokens * element


def memory_table(model_dir: str, names: list[str], threads: int, new_tokens: int) -> dict:
    """Peak RSS of sampling one setting, each format in its own process.

    ``model_growth_mb`` leaves out the tokenizer's own memory (measured alone: the preset's
    49,152-entry tokenizer, mostly added reserved tokens, takes ~130 MB), which is neither
    weights nor KV cache; the goal is checked on it.
    """
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    prompt_len = len(AutoTokenizer.from_pretrained(model_dir)(PROMPT)["input_ids"])
    tokenizer = _child(TOKENIZER_SCRIPT, model_dir)["growth"]
    table = {"tokenizer_mb": round(tokenizer / 2**20)}
    for name in names:
        dtype, quantize, compile = FORMATS[name]
        m = _child(MEMORY_SCRIPT, model_dir, dtype, quantize, str(threads), str(new_tokens),
                   str(int(compile)), PROMPT)
        element = 2 if dtype in ("bfloat16", "float16") else 4
        kv = kv_cache_bytes(config, prompt_len + new_tokens, element)
        goal = 1.5 * m["weights"] + kv
        growth = m["peak"] - m["before"]
        table[name] = {"peak_mb": round(m["peak"] / 2**20), "growth_mb": round(growth / 2**20),
                       "model_growth_mb": round((growth - tokenizer) / 2**20),
                       "weights_mb": round(m["weights"] / 2**20), "kv_cache_mb":
                       round(kv / 2**20, 1), "goal_mb": round(goal / 2**20),
                       "model_growth_within_goal": growth - tokenizer <= goal,
                       "peak_within_goal": m["peak"] <= goal}
    return table


def greedy_tokens(loaded, prompt: str, n: int) -> list[int]:
    from genlab.core.configs import GenerationRequest, SamplingParams
    from genlab.core.generation.decode import generate

    params = SamplingParams(temperature=0, max_new_tokens=n, ignore_eos=True)
    return list(generate(loaded, [GenerationRequest(prompt, params, chat=False)])[0].token_ids)


def agreement(models: dict, reference: str, n: int = 64) -> dict:
    """Free-running and teacher-forced greedy agreement of each format with ``reference``."""
    import torch

    ref = models[reference]
    want = greedy_tokens(ref, PROMPT, n)
    prompt = ref.tokenizer(PROMPT)["input_ids"]
    ids = torch.tensor([prompt + want])
    out = {}
    for name, loaded in models.items():
        got = greedy_tokens(loaded, PROMPT, n)
        first = next((i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b), n)
        with torch.no_grad():
            logits = loaded.model(ids).logits[0, len(prompt) - 1:-1].float()
        forced = (logits.argmax(-1) == torch.tensor(want)).float().mean().item()
        out[name] = {"teacher_forced_agree": round(forced, 4),
                     "free_running_agree": round(sum(a == b for a, b in zip(got, want,
                                                                            strict=True)) / n, 4),
                     "first_difference": first}
    return out


def shipped_quality(names: list[str], threads: int) -> dict:
    """Greedy agreement and bits per byte of each format on the shipped, trained model."""
    from genlab import assets
    from genlab.core.pretrain.bpb import bits_per_byte
    from genlab.core.pretrain.stories import read_stories

    models = load_formats(assets.resolve_model(None), names, threads)
    out = {"model": "tinystories-1.4m (shipped)", **{"agreement": agreement(models, "float32")}}
    valid = Path(os.environ.get("GENLAB_DATA_DIR", "")) / "tinystories" / "valid.txt"
    if not valid.is_file():
        out["bits_per_byte"] = "skipped: set GENLAB_DATA_DIR to the shared corpora"
        return out
    stories = read_stories(valid, BPB_STORIES)
    bpb = {name: bits_per_byte(m.model, m.tokenizer, stories, batch_size=16,
                               context=m.context_length).bpb for name, m in models.items()}
    out["bits_per_byte"] = {name: {"bpb": round(v, 4), "change": round(v - bpb["float32"], 4)}
                            for name, v in bpb.items()}
    return out


def summary_lines(report: dict) -> list[str]:
    """The table a reader wants first, as text lines."""
    lines = [f"{'format':9} {'single tok/CPU-s':>17} {'vs generate':>11} "
             f"{'grid tok/CPU-s':>15} {'vs 8 generate':>13} {'grow MB':>8} {'goal MB':>8}"]
    for name, row in report["speed"].items():
        mem = report.get("memory", {}).get(name, {})
        mem = {"peak_mb": mem.get("model_growth_mb", "-"), "goal_mb": mem.get("goal_mb", "-")}
        lines.append(f"{name:9} {row['single']['genlab_tok_per_cpu_s']:17.1f} "
                     f"{row['single']['speedup_cpu']:10.2f}x "
                     f"{row['grid']['genlab_tok_per_cpu_s']:15.1f} "
                     f"{row['grid']['speedup_cpu']:12.2f}x "
                     f"{mem.get('peak_mb', '-'):>8} {mem.get('goal_mb', '-'):>8}")
    return lines


def run(args: argparse.Namespace) -> dict:
    """Build the preset, measure everything asked, return the report."""
    names = [n.strip() for n in args.dtypes.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or names[0] != "float32":
        raise SystemExit(f"--dtypes {args.dtypes}: float32 first (the reference), then any of "
                         f"{', '.join(FORMATS)}")
    load = CpuLoad()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(build_preset(PRESET, Path(tmp) / PRESET, init_std=QUALITY_STD))
        models = load_formats(model_dir, names, args.threads)
        report: dict = {"model": f"random-init {PRESET} (init std {QUALITY_STD})",
                        "params": models["float32"].num_parameters, "threads": args.threads,
                        "new_tokens": args.new_tokens, "repeats": args.repeats,
                        "speed": speed_table(models, args.new_tokens, args.repeats)}
        if not args.skip_quality:
            report["quality"] = {"this_model": agreement(models, "float32"),
                                 "shipped": shipped_quality(names, args.threads)}
        del models
        if not args.skip_memory:
            report["memory"] = memory_table(model_dir, names, args.threads, args.new_tokens)
    report["other_cores_busy"] = load.other_cores_busy()
    report["load_avg_1min"] = round(os.getloadavg()[0], 2)
    return report


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--dtypes", default=DEFAULT_FORMATS,
                    help="formats to measure (float32 is the reference): " + ", ".join(FORMATS))
    ap.add_argument("--skip-memory", action="store_true", help="no peak-RSS subprocesses")
    ap.add_argument("--skip-quality", action="store_true", help="no agreement / bpb")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1)
    add_arguments(ap)
    report = run(ap.parse_args())
    print(json.dumps(report, indent=2))
    print("\n".join(summary_lines(report)))


if __name__ == "__main__":
    main()

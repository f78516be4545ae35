"""Peak memory of a long-prompt prefill: genlab's chunked prefill vs one forward over the prompt.

Each measurement runs in its own child process (so the peak is its own): load the model, then
prefill two prompts of ``--prompt-tokens`` and ``--prompt-tokens // 2`` tokens (a padded batch,
as in a grid of different prompts) and generate one token, with ``prefill_chunk`` set to the
whole prompt (one forward: the reference) or to genlab's default of 512. Reported: the peak
RSS growth during generation (CPU; ``resource.getrusage``) or peak CUDA memory, the wall time,
and that both produce the same token.

Without ``--model`` a random-init Llama with a long context is built (hidden 512, 4 layers,
8 heads, MLP 2048, vocab 2048, 8,192 positions); ``--preset smollm2-135m-shape`` builds
SmolLM2-135M's shape instead (2,048 positions, so keep ``--prompt-tokens`` under 2,000).

    python benchmarks/bench_prefill.py [--model DIR | --preset NAME] [--prompt-tokens 4000]
        [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from presets import SHAPES, build_preset

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ["the", "little", "fox", "ran", "over", "the", "green", "hill", "and", "saw", "a",
         "bird", "in", "the", "tall", "tree"]


def build_long_model(out_dir: Path) -> Path:
    """A random-init Llama with 8,192 positions and a small byte-level BPE tokenizer."""
    import torch
    from presets import build_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer(2048)
    config = LlamaConfig(vocab_size=2048, hidden_size=512, intermediate_size=2048,
                         num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=8,
                         max_position_embeddings=8192, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def prompt_of(tokenizer, n: int) -> str:
    """A text of about ``n`` tokens (cut to exactly ``n`` by token count)."""
    text = " ".join(WORDS[i % len(WORDS)] for i in range(n * 2))
    ids = tokenizer(text)["input_ids"][:n]
    return tokenizer.decode(ids)


def child(model: str, device: str, chunk: int, tokens: int, threads: int) -> None:
    """One measurement; prints a JSON line."""
    import torch

    from genlab.core.configs import GenerationRequest, SamplingParams
    from genlab.core.generation.decode import generate
    from genlab.core.modeling.loading import load_model

    torch.set_num_threads(threads)
    loaded = load_model(model, device=device, dtype="float32")
    params = SamplingParams(temperature=0, max_new_tokens=1)
    requests = [GenerationRequest(prompt_of(loaded.tokenizer, n), params, chat=False)
                for n in (tokens, tokens // 2)]
    cuda = loaded.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    rows = generate(loaded, requests, prefill_chunk=chunk)
    wall = time.perf_counter() - start
    if cuda:
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        scale = 1 if sys.platform == "darwin" else 1024
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * scale / 2**20
    print(json.dumps({"chunk": chunk, "peak_growth_mb": round(peak_mb, 1),
                      "wall_s": round(wall, 2), "tokens": [r.token_ids[0] for r in rows]}))


def main() -> None:
    """Build the model, measure both settings in child processes, print the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--preset", choices=sorted(SHAPES))
    ap.add_argument("--prompt-tokens", type=int, default=4000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.device, int(args.child[1]), args.prompt_tokens,
              args.threads)
        return
    with tempfile.TemporaryDirectory(prefix="bench-prefill-") as tmp:
        if args.preset:
            model = str(build_preset(args.preset, Path(tmp) / args.preset))
        else:
            model = args.model or str(build_long_model(Path(tmp) / "long"))
        results = {}
        for name, chunk in (("one_forward", 10**9), ("chunked_512", 512)):
            out = subprocess.run(
                [sys.executable, __file__, "--child", model, str(chunk), "--device",
                 args.device, "--prompt-tokens", str(args.prompt_tokens), "--threads",
                 str(args.threads)], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    one, chunked = results["one_forward"], results["chunked_512"]
    print(json.dumps({
        "model": args.model or args.preset or "random-init llama, 8,192 positions (~18M params)",
        "prompt_tokens": [args.prompt_tokens, args.prompt_tokens // 2],
        "device": args.device, "threads": args.threads, **results,
        "peak_ratio": round(chunked["peak_growth_mb"] / max(one["peak_growth_mb"], 1e-9), 3),
        "same_tokens": one["tokens"] == chunked["tokens"],
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()

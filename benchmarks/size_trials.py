"""Throughput probe for ``genlab pretrain`` model sizes: training tokens/s of candidate Llamas.

Times a few forward + backward + AdamW steps of each candidate shape on random token batches
and prints params, tokens/s and how many training tokens fit in a time budget. The load of the
machine changes the absolute numbers; the ``load`` column (1-minute load average before each
candidate) helps normalise them.

    python benchmarks/size_trials.py --seq-len 512 --batch 8 --budget-min 70
"""

from __future__ import annotations

import argparse
import os
import time

CANDIDATES = {
    # name: (layers, hidden, heads, kv_heads, mlp)
    "xs-1.0M": (4, 128, 4, 2, 384),
    "ship-1.4M": (6, 128, 4, 2, 384),
    "s-2.2M": (6, 160, 5, 5, 432),
    "m-2.8M": (6, 192, 6, 2, 512),
    "m-3.3M": (6, 192, 6, 6, 512),
    "l-4.2M": (8, 192, 6, 2, 512),
    "w-4.6M": (5, 256, 8, 4, 640),
}


def probe(shape: tuple[int, ...], vocab: int, seq_len: int, batch: int, steps: int) -> tuple:
    """(params, tokens/wall-s, tokens/CPU-s) of ``steps`` timed steps after one warm-up."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    layers, hidden, heads, kv_heads, mlp = shape
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=mlp,
                         num_hidden_layers=layers, num_attention_heads=heads,
                         num_key_value_heads=kv_heads, max_position_embeddings=seq_len,
                         tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, vocab, (batch, seq_len))
    times, cpu = [], []
    for i in range(steps + 1):
        t, c = time.perf_counter(), time.process_time()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    params = sum(p.numel() for p in model.parameters())
    tokens = batch * seq_len * steps
    return params, tokens / sum(times), tokens / sum(cpu)


def main() -> None:
    """Print one row per candidate."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--budget-min", type=float, default=70.0)
    p.add_argument("--only", nargs="*", default=None, help="candidate names to run")
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = all cores")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    print(f"| candidate | L,d,h,kv,mlp | params | seq | tok/s | tok/CPU-s | M tokens in "
          f"{args.budget_min:g} min | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, shape in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        load = os.getloadavg()[0]
        params, tps, tpc = probe(shape, args.vocab, args.seq_len, args.batch, args.steps)
        fit = tps * args.budget_min * 60 / 1e6
        print(f"| {name} | {','.join(map(str, shape))} | {params / 1e6:.2f}M | {args.seq_len} "
              f"| {tps:,.0f} | {tpc:,.0f} | {fit:.1f} | {load:.2f} |", flush=True)


if __name__ == "__main__":
    main()

"""Install a ``genlab pretrain`` output as genlab's shipped model and write its model card.

Copies the trained model directory into ``genlab/assets/<name>/`` (tokenizer config made
portable: ``PreTrainedTokenizerFast``, ``model_max_length`` = context), then, loading that
installed copy with genlab's own loader:

* scores whole-story bits per byte on the first 40 and the first 300 validation stories and
  writes them to ``eval.json`` (``tests/test_default_model.py`` checks the shipped model against
  the 40-story figure);
* generates real samples at temperatures 0.5, 0.8 and 1.2 with genlab's decode loop and a
  fixed seed (the same rows ``genlab sample`` runs, so the printed command reproduces them);
* writes ``README.md``, the model card: data and license, architecture, parameters, tokens
  seen, schedule, eval loss, bits per byte, the commands that produced it, samples, limits.

Usage (the shipped model; about a minute on a shared 2-core CPU)::

    python scripts/write_model_card.py --pretrain-out /work/pretrain/out \\
        --data-dir /work/shared/data/tinystories --force \\
        --command "python scripts/pretrain_default_model.py --data-dir ... --out ... \\
                   --deadline 2026-11-23T00:10Z"

``--pretrain-out`` implies the other inputs (``run/model``, ``pretrain.json``,
``run-stable/config.json``, ``run/config.json``); each can be given explicitly instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
TEMPERATURES = (0.5, 0.8, 1.2)
EVAL_COUNTS = (40, 300)
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json", "special_tokens_map.json")
CARD_FILE = "README.md"
EVAL_FILE = "eval.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pretrain-out", type=Path, help="genlab pretrain output directory.")
    p.add_argument("--model-dir", type=Path, help="Trained model (default: OUT/run/model).")
    p.add_argument("--pretrain-json", type=Path, help="Default: OUT/pretrain.json.")
    p.add_argument("--stable-config", type=Path,
                   help="Stable-phase run config (default: OUT/run-stable/config.json).")
    p.add_argument("--decay-config", type=Path,
                   help="Final run config (default: OUT/run/config.json).")
    p.add_argument("--data-dir", type=Path, required=True,
                   help="TinyStories folder with valid.txt (and SOURCE.md).")
    p.add_argument("--name", default="tinystories-1.4m", help="Folder under the assets dir.")
    p.add_argument("--assets-dir", type=Path, default=REPO / "genlab" / "assets")
    p.add_argument("--command", action="append", default=[],
                   help="A command that produced the model, in order (repeatable).")
    p.add_argument("--prompt", default="Once upon a time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-new-tokens", type=int, default=120)
    p.add_argument("--force", action="store_true", help="Replace an installed model.")
    args = p.parse_args(argv)
    out = args.pretrain_out
    defaults = {"model_dir": "run/model", "pretrain_json": "pretrain.json",
                "stable_config": "run-stable/config.json", "decay_config": "run/config.json"}
    for key, rel in defaults.items():
        if getattr(args, key) is None:
            if out is None:
                p.error(f"--{key.replace('_', '-')} or --pretrain-out is required")
            setattr(args, key, out / rel)
    return args


# ------------------------------------------------------------------------------- collect


def install_model(model_dir: Path, dest: Path, force: bool) -> None:
    """Copy the model files into ``dest`` and make its tokenizer config portable."""
    from genlab.core.pretrain.model import make_tokenizer_config_portable

    if dest.exists():
        if not force:
            sys.exit(f"error: {dest} exists; pass --force to replace it")
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in MODEL_FILES:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, dest / name)
    context = json.loads((dest / "config.json").read_text())["max_position_embeddings"]
    make_tokenizer_config_portable(dest, int(context))


def run_facts(config_path: Path) -> dict[str, Any]:
    """Steps, tokens, wall time, last eval and status of the run whose config.json is given."""
    from genlab.core.training import run_dir as runs

    run_dir = config_path.parent
    config = json.loads(config_path.read_text())
    train = runs.read_metrics(run_dir, "train")
    evals = runs.read_metrics(run_dir, "eval")
    summary = runs.read_summary(run_dir) or {}
    return {
        "dir": str(run_dir), "config": config, "status": summary.get("status", "unknown"),
        "steps": train[-1]["step"] if train else 0,
        "tokens": train[-1]["tokens"] if train else 0,
        "wall_time_s": summary.get("wall_time_s", train[-1]["elapsed_s"] if train else 0.0),
        "last_eval": evals[-1] if evals else None,
        "best_eval_loss": summary.get("best_eval_loss"),
        "lr_first": train[0]["lr"] if train else None,
    }


def evaluate(loaded: Any, valid: Path, context: int) -> dict[str, Any]:
    """Whole-story bits per byte on the first 40 and first 300 validation stories."""
    from genlab.core.pretrain.bpb import bits_per_byte
    from genlab.core.pretrain.stories import read_stories

    stories = read_stories(valid, max(EVAL_COUNTS))
    result: dict[str, Any] = {}
    nats, n_bytes, done = 0.0, 0, 0
    for n in sorted(EVAL_COUNTS):  # score each story once: later counts add the next stories
        part = bits_per_byte(loaded.model, loaded.tokenizer, stories[done:n], batch_size=16,
                             context=context)
        nats, n_bytes, done = nats + part.nats, n_bytes + part.bytes, n
        result[str(n)] = {"stories": n, "bits_per_byte": nats / math.log(2) / n_bytes,
                          "nats": nats, "bytes": n_bytes}
    return result


def make_samples(loaded: Any, prompt: str, seed: int, max_new: int) -> list[dict[str, Any]]:
    """One generation per temperature, exactly the rows of the ``genlab sample`` command."""
    from genlab.core.configs import SamplingParams
    from genlab.core.generation.decode import generate
    from genlab.core.generation.grid import build_cells, build_rows

    cells = build_cells([SamplingParams(temperature=t, max_new_tokens=max_new)
                         for t in TEMPERATURES], [None])
    rows = build_rows([prompt], cells, 1, seed)
    done = generate(loaded, [r.request for r in rows])
    return [{"temperature": r.request.params.temperature, "seed": r.request.seed,
             "finish_reason": d.reason, "text": d.text} for r, d in zip(rows, done, strict=True)]


# --------------------------------------------------------------------------------- write


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hours(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def card_text(ctx: dict[str, Any]) -> str:
    """The model card (Markdown with Hugging Face front matter)."""
    c, p, s, d = ctx["model_config"], ctx["pretrain"], ctx["stable"], ctx["decay"]
    e300, e40 = ctx["eval"]["300"], ctx["eval"]["40"]
    shape = p.get("shape", {})
    last_eval = d["last_eval"] or {}
    train_cfg = d["config"]
    tokens = s["tokens"] + d["tokens"]
    epoch_tokens = s["config"].get("resolved", {}).get("train_tokens") or 1
    sample_cmd = (f"genlab sample --prompt {shlex.quote(ctx['prompt'])} -t "
                  f"{','.join(str(t) for t in TEMPERATURES)} --max-new-tokens "
                  f"{ctx['max_new_tokens']} --seed {ctx['seed']}")
    commands = "\n".join(ctx["commands"]) or "(not recorded)"
    train_time = hours(s["wall_time_s"] + d["wall_time_s"])
    block = shape.get("context", c["max_position_embeddings"])
    eval_loss = (f"{last_eval['loss']:.4f} (perplexity {last_eval['perplexity']:.2f}; "
                 f"decay-run step {last_eval['step']})"
                 if last_eval.get("loss") is not None else "n/a")
    passes = f"{tokens / epoch_tokens:.1f} passes over the {epoch_tokens:,}-token corpus"
    rope = c.get("rope_theta") or (c.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    heads = f"{c['num_attention_heads']} / {c['num_key_value_heads']}"
    samples = "\n\n".join(
        f"**temperature {x['temperature']}** (seed {x['seed']}, ended by {x['finish_reason']}):"
        f"\n\n> {ctx['prompt']}" + x["text"].replace("\n", "\n> ") for x in ctx["samples"])
    return f"""---
language: en
library_name: transformers
pipeline_tag: text-generation
license: apache-2.0
datasets:
- roneneldan/TinyStories
tags:
- genlab
- llama
- tinystories
---

# {ctx['name']}

A {ctx['params'] / 1e6:.2f}M-parameter Llama that writes short children's stories. It was
pretrained from scratch by `genlab pretrain` on {ctx['train_stories']:,} TinyStories stories
for {train_time} on a shared 2-core CPU, and ships inside the genlab package as the default
`--model` of every command, so this works offline right after install:

```
genlab sample --prompt "Once upon a time" -t 0.5,0.8,1.2
```

It is a standard Hugging Face model directory; plain `transformers` loads it:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("path/to/genlab/assets/{ctx['name']}")
model = AutoModelForCausalLM.from_pretrained("path/to/genlab/assets/{ctx['name']}")
ids = tok("Once upon a time", return_tensors="pt")
print(tok.decode(model.generate(**ids, max_new_tokens=60)[0], skip_special_tokens=True))
```

## Results

| metric | value |
| --- | --- |
| bits per byte, first 300 validation stories, whole | **{e300['bits_per_byte']:.4f}** |
| bits per byte, first 40 validation stories, whole | {e40['bits_per_byte']:.4f} |
| eval loss (nats/token, packed {block}-token blocks of those stories, last eval) | {eval_loss} |
| parameters | {ctx['params']:,} |
| training tokens seen | {tokens:,} ({passes}) |

Bits per byte scores each story whole from its start: the model sees `<|bos|>` + the story's
tokens + `<|endoftext|>`, every token after `<|bos|>` is scored (the closing end-of-text
included), and the summed negative log2-likelihood is divided by the story's UTF-8 bytes, so
models with different tokenizers compare directly (`genlab.core.pretrain.bpb`). The figures
above were computed when this card was written, on the installed copy, in float32 on CPU; they
are also in `eval.json`, and `tests/test_default_model.py` checks the 40-story figure.

## Samples

Generated by genlab's own decode loop when this card was written, with no cherry-picking:
one sample per temperature, prompt "{ctx['prompt']}", no top-k/top-p, at most
{ctx['max_new_tokens']} new tokens. The same command reproduces them:

```
{sample_cmd}
```

{samples}

## Model

| | |
| --- | --- |
| architecture | `LlamaForCausalLM` (RoPE θ {rope}, RMSNorm, SwiGLU MLP, no biases) |
| layers | {c['num_hidden_layers']} |
| hidden size | {c['hidden_size']} |
| attention heads / key-value heads | {heads} (grouped-query attention) |
| MLP inner size | {c['intermediate_size']} |
| context length | {c['max_position_embeddings']} tokens |
| vocabulary | {c['vocab_size']:,} (byte-level BPE) |
| tied input/output embeddings | {'yes' if c.get('tie_word_embeddings', True) else 'no'} |
| weights | float32 safetensors, `model.safetensors` sha256 `{ctx['weights_sha256'][:16]}…` |

**Tokenizer.** A GPT-2-style byte-level BPE trained by `genlab pretrain` on the training
stories: 256 byte tokens, 3 special tokens (`<|endoftext|>` = EOS and the story separator,
`<|bos|>` prepended to every encoded text, `<|pad|>`), and learned merges. No normalisation and
no unknown token: every string round-trips exactly.

## Training

* **Data:** `train.txt` of the team's TinyStories copy: {ctx['train_stories']:,} stories
  ({ctx['train_bytes'] / 1e6:.1f} MB), each followed by a line holding only `<|endoftext|>`.
  Evaluation: the first 300 of
  the 1,000 stories in `valid.txt` (the first 1,000 stories of the TinyStories v1 validation
  split); no validation story is in the training file.
* **Objective:** next-token cross-entropy over packed {shape.get('context', 256)}-token blocks,
  every weight trained from a random init (normal, std 0.02).
* **Optimiser:** AdamW, betas {tuple(train_cfg.get('betas', (0.9, 0.95)))}, weight decay
  {train_cfg.get('weight_decay')} (not on norms), gradient clipping at
  {train_cfg.get('max_grad_norm')}, batch {train_cfg.get('batch_size')} x
  {shape.get('context', 256)} tokens, seed {s['config'].get('seed')}.
* **Schedule (time-boxed warmup-stable-decay):** {s['config'].get('warmup_steps')} linear
  warmup steps to lr {s['config'].get('lr')}, then constant lr until step {s['steps']:,}
  (`run-stable/`); then a fresh optimiser continued from those weights with
  {train_cfg.get('warmup_steps')} warmup steps and a linear decay to 0 planned over
  {d['config'].get('max_steps') or d['steps']:,} steps, of which {d['steps']:,} ran (`run/`,
  status {d['status']}): {s['steps'] + d['steps']:,} optimizer steps in all. The decay length
  was sized from the measured step
  rate to end on a fixed wall-clock deadline, because throughput on a shared CPU is too
  unpredictable to size a cosine schedule in steps.
* **Compute:** {train_time} of training on 2 shared CPU cores
  (torch {s['config'].get('resolved', {}).get('torch_version', '?')}, transformers
  {s['config'].get('resolved', {}).get('transformers_version', '?')}), 1 or 2 threads chosen as
  the run went.

### Commands that produced it

```
{commands}
```

## Data and license

Training data: **TinyStories** by Ronen Eldan and Yuanzhi Li (2023), "TinyStories: How Small
Can Language Models Be and Still Speak Coherent English?", arXiv:2305.07759; dataset
`roneneldan/TinyStories` on the Hugging Face hub, licensed **CDLA-Sharing-1.0** upstream. The
copy used is partial, assembled from public subsets: its `train.txt` holds 7,704 stories (the
first 2,316 v1 train stories, 1,726 GPT-4-only `TinyStoriesV2` stories, a 2,996-story subset
and 666 stories of the `TinyStories_all_data` shard `data00.json`, deduplicated and
whitespace-normalised); `valid.txt` holds the first 1,000 v1 validation stories. See
`SOURCE.md` of that copy for the exact provenance{ctx['source_note']}.

No story text ships with genlab, only these weights, which are released with genlab under
Apache-2.0. Anyone redistributing the TinyStories text itself must keep the attribution above
and the CDLA-Sharing-1.0 license.

## Limitations

* It is tiny and was trained for {train_time}: stories are simple, often repetitive, and
  drift or contradict themselves after a few sentences; names and pronouns get mixed up.
* It only knows the vocabulary and style of synthetic English children's stories written by
  GPT-3.5/GPT-4; anything else (questions, code, other languages) produces story-like nonsense.
* It is meant for seeing how sampling and training settings change a language model's output
  (genlab's purpose), not for any application. Its text inherits whatever biases the
  generated stories carry.

Card written {ctx['written']} by `scripts/write_model_card.py` (genlab {ctx['genlab_version']}).
"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    valid = args.data_dir / "valid.txt"
    for path in (args.model_dir / "config.json", args.pretrain_json, args.stable_config,
                 args.decay_config, valid):
        if not path.is_file():
            sys.exit(f"error: {path}: no such file")
    import genlab
    from genlab.core.modeling.loading import load_model
    from genlab.core.pretrain.stories import read_stories

    dest = args.assets_dir / args.name
    install_model(args.model_dir, dest, args.force)
    loaded = load_model(str(dest), device="cpu", dtype="float32")
    model_config = json.loads((dest / "config.json").read_text())
    context = int(model_config["max_position_embeddings"])
    print(f"installed {dest}; scoring and sampling…", file=sys.stderr)
    evaluation = evaluate(loaded, valid, context)
    samples = make_samples(loaded, args.prompt, args.seed, args.max_new_tokens)
    train_file = args.data_dir / "train.txt"
    source = args.data_dir / "SOURCE.md"
    ctx = {
        "name": args.name, "model_config": model_config,
        "pretrain": json.loads(args.pretrain_json.read_text()),
        "stable": run_facts(args.stable_config), "decay": run_facts(args.decay_config),
        "eval": evaluation, "samples": samples, "params": loaded.num_parameters,
        "prompt": args.prompt, "seed": args.seed, "max_new_tokens": args.max_new_tokens,
        "commands": args.command, "weights_sha256": sha256(dest / "model.safetensors"),
        "train_stories": len(read_stories(train_file)) if train_file.is_file() else 7704,
        "train_bytes": train_file.stat().st_size if train_file.is_file() else 6_480_189,
        "source_note": (f" (sha256 of `valid.txt`: `{sha256(valid)[:16]}…`)"),
        "written": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "genlab_version": genlab.__version__,
    }
    if not source.is_file():
        print(f"note: {source} not found; the card describes the data from memory",
              file=sys.stderr)
    record = {"model": args.name, "context": context, "dtype": "float32", "device": "cpu",
              "batch_size": 16, "valid_sha256": sha256(valid),
              "definition": "whole story from its start: -sum log2 p(story tokens + EOS | BOS)"
                            " / UTF-8 bytes (genlab.core.pretrain.bpb.bits_per_byte)",
              "bits_per_byte": {n: v["bits_per_byte"] for n, v in evaluation.items()},
              "detail": evaluation, "eval_loss": (ctx["decay"]["last_eval"] or {}).get("loss"),
              "train_tokens": ctx["stable"]["tokens"] + ctx["decay"]["tokens"],
              "params": ctx["params"], "samples": samples}
    (dest / EVAL_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (dest / CARD_FILE).write_text(card_text(ctx), encoding="utf-8")
    size = sum(f.stat().st_size for f in dest.iterdir())
    print(f"wrote {dest} ({size / 1e6:.1f} MB): bpb@300 "
          f"{evaluation['300']['bits_per_byte']:.4f}, bpb@40 "
          f"{evaluation['40']['bits_per_byte']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``genlab merge``: fold a trained LoRA adapter into its base model as a plain HF model.

Owns the command's flags and messages; the work is ``genlab.core.modeling.merge.merge_adapter``. Bad
input (no adapter there, no base model named, an occupied ``--out``, a model that does not
load) is one ``genlab: error:`` line and exit code 2, with nothing written.

Import-time cost is typer and the standard library only: the core (and torch) is imported
inside ``merge``, so ``genlab merge --help`` is instant.
"""

from __future__ import annotations

import shlex
from typing import Any

import typer

from genlab.cli.options import knob_command
from genlab.cli.runtime_options import parse_runtime, runtime_options

EPILOG = ("Exit codes: 0 merged; 1 the merge could not be written (e.g. a full disk; --out is "
          "unchanged); 2 bad input (nothing written).")


@knob_command(runtime_options(("threads",)))
def merge(
    knobs: dict[str, Any],
    adapter: str = typer.Option(..., "--adapter", metavar="DIR", show_default=False,
                                help="LoRA adapter directory, e.g. RUN_DIR/adapter from "
                                     "genlab train."),
    out: str = typer.Option(..., "--out", "-o", metavar="DIR", show_default=False,
                            help="Directory for the merged model and tokenizer (written to a "
                                 "temporary directory beside it, then renamed)."),
    model: str | None = typer.Option(None, "--model", "-m", metavar="ID|DIR|GGUF",
                                     show_default=False,
                                     help="Base model (a .gguf file works too). Default: the "
                                          "base_model_name_or_path in the adapter's "
                                          "adapter_config.json."),
    gguf_file: str | None = typer.Option(None, "--gguf-file", metavar="NAME",
                                         show_default=False,
                                         help="The .gguf file of the base when --model is a "
                                              "directory holding several."),
    dtype: str = typer.Option("auto", "--dtype", metavar="DTYPE", show_default=False,
                              help="Saved dtype: auto (the base model's stored dtype), "
                                   "float32, bfloat16 or float16. The merge itself runs in "
                                   "float32 on the CPU. Default: auto."),
    force: bool = typer.Option(False, "--force", metavar="", show_default=False,
                               help="Replace --out even when it holds files genlab did not "
                                    "write (an earlier genlab merge output is replaced "
                                    "without it)."),
) -> None:
    """Merge a LoRA adapter into its base model and save a standard Hugging Face model.

    The result loads with transformers' AutoModelForCausalLM alone (no PEFT needed) and gives
    the same outputs as base + adapter. A GGUF base works too: GGUF -> LoRA -> a normal
    Hugging Face directory.

    Examples:

        genlab merge --adapter runs/20250101-120000-stories/adapter --out models/stories

        genlab merge --adapter ./my-adapter --model ./base --out ./merged --dtype bfloat16
    """
    # torch-free --help: the core loads only when the command runs. Its errors (a bad
    # adapter or base, an occupied --out, a full disk) are one line from the error boundary.
    from genlab.core.modeling.merge import merge_adapter

    out_dir = merge_adapter(adapter, out, base_model=model, dtype=dtype, force=force,
                            gguf_file=gguf_file, threads=parse_runtime(knobs).threads)
    print(f"Merged {adapter} into its base model -> {out_dir}")
    print(f"Try it:\n  genlab sample --model {shlex.quote(str(out_dir))} "
          "--prompt 'Once upon a time'")

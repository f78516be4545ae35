"""``genlab sample``: one prompt set x a grid of sampling settings, shown side by side.

Owns the command's flags and its flow: validate every flag (fast, before torch loads), load
the model and adapters, run the whole grid as batched forward passes while showing progress
on stderr, then render (table) or write (JSONL, CSV, Markdown; atomically with ``--out``).
Ctrl-C sets the core's stop token; the run ends at the next step, nothing half-done is
written, and the exit code is 130. A model whose tokenizer has a chat template gets each prompt
as a conversation (``--chat``, the default there); a prompt that does not fit the model's
context is exit code 2 before anything runs, unless ``--truncate-prompt left``.

Import-time cost is typer and the standard library only: the core (and torch) is imported
inside ``sample``, so ``genlab sample --help`` is instant.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import typer

from genlab.assets import DEFAULT_MODEL_HELP
from genlab.cli.common import EXIT_STOPPED, StopOnSignals, UsageError, default_model, fail
from genlab.cli.options import knob_command, knob_options
from genlab.cli.runtime_options import parse_runtime, runtime_options
from genlab.core.configs.knobs import knob_fields
from genlab.core.configs.sampling import GRID_FIELDS, GRID_PANEL, GenerationRequest, SamplingParams

BASE_FIELDS = tuple(kf.name for kf in knob_fields(SamplingParams) if not kf.knob.grid)
"""Sampling knobs every column shares (stop strings, logit bias, sampler order, ...)."""

MODEL = "Model"
PROMPTS = "Prompts"
OUTPUT = "Output"

PROMPT_KNOBS = ("chat", "system", "truncate_prompt")
MODEL_OPTION = typer.Option(
    None, "--model", "-m", metavar="ID|DIR|GGUF", rich_help_panel=MODEL,
    help="Hugging Face hub id, local model directory, or a .gguf file (or a directory holding "
         "one). " + DEFAULT_MODEL_HELP)
GGUF_FILE_OPTION = typer.Option(
    None, "--gguf-file", metavar="NAME", rich_help_panel=MODEL,
    help="The .gguf file to load when --model is a directory (or hub repo) holding several.")
DEVICE_OPTION = typer.Option(
    "auto", "--device", metavar="DEVICE", show_default=False, rich_help_panel=MODEL,
    help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps. Default: auto.")
DTYPE_OPTION = typer.Option(
    "auto", "--dtype", metavar="DTYPE", show_default=False, rich_help_panel=MODEL,
    help="auto (bfloat16 on capable CUDA, else float32), float32, bfloat16 or float16. On a "
         "CPU float16 is the fast 16-bit choice for one setting (bfloat16 needs AMX to be "
         "fast), float32 or --quantize int8 for grids. Default: auto.")
ADAPTER_OPTION = typer.Option(
    None, "--adapter", metavar="NAME=DIR", rich_help_panel=MODEL,
    help="LoRA adapter (a PEFT directory) shown as its own columns beside the base "
         "model's, in the same batch. Repeatable.")
PROMPT_OPTION = typer.Option(
    None, "--prompt", metavar="TEXT", rich_help_panel=PROMPTS,
    help="A prompt (repeatable; \\n means a newline).")
PROMPTS_FILE_OPTION = typer.Option(
    None, "--prompts", metavar="FILE", rich_help_panel=PROMPTS,
    help="Prompt file: .txt one prompt per line (blank lines skipped) or .jsonl with a "
         "\"prompt\" string or a \"messages\" conversation per line; - reads lines from "
         "stdin.")
NUM_SAMPLES_OPTION = typer.Option(
    "1", "--num-samples", "-n", metavar="K", show_default=False, rich_help_panel=GRID_PANEL,
    help="Samples per setting (table rows); integer >= 1. Default: 1.")
SEED_OPTION = typer.Option(
    "0", "--seed", "-s", metavar="S", show_default=False, rich_help_panel=GRID_PANEL,
    help="Base seed, integer in [0, 2**63). Sample 0 uses S; sample i uses a stable hash "
         "of (S, i), the same in every column, so columns differ only by their settings. "
         "Default: 0.")
BATCH_SIZE_OPTION = typer.Option(
    "16", "--batch-size", "-b", metavar="B", show_default=False, rich_help_panel=GRID_PANEL,
    help="Rows per forward pass (prompts x settings x samples are batched together); "
         "integer >= 1. Default: 16.")
OUTPUT_FORMAT_OPTION = typer.Option(
    None, "--format", "-f", metavar="FMT", rich_help_panel=OUTPUT,
    help="table, jsonl, csv or markdown. Default: from --out's extension, else table.")
OUT_OPTION = typer.Option(
    None, "--out", "-o", metavar="FILE", rich_help_panel=OUTPUT,
    help="Write here (atomically: complete or not at all) instead of stdout.")
FORCE_OPTION = typer.Option(
    False, "--force", metavar="", show_default=False, rich_help_panel=OUTPUT,
    help="Replace --out when the file already exists.")
LOGPROBS_OPTION = typer.Option(
    None, "--logprobs", metavar="N", rich_help_panel=OUTPUT,
    help="Record each token's log-probability and its top N alternatives (JSONL only); "
         "integer >= 0. Default: off.")
QUIET_OPTION = typer.Option(
    False, "--quiet", "-q", metavar="", show_default=False, rich_help_panel=OUTPUT,
    help="No progress or status messages on stderr.")


@knob_command(knob_options(SamplingParams),
              knob_options(GenerationRequest, include=PROMPT_KNOBS, panel=PROMPTS,
                           default_notes={"chat": ""}),
              runtime_options(panel=MODEL))
def sample(
    knobs: dict[str, Any],
    model: str | None = MODEL_OPTION,
    gguf_file: str | None = GGUF_FILE_OPTION,
    device: str = DEVICE_OPTION,
    dtype: str = DTYPE_OPTION,
    adapter: list[str] | None = ADAPTER_OPTION,
    prompt: list[str] | None = PROMPT_OPTION,
    prompts_file: str | None = PROMPTS_FILE_OPTION,
    num_samples: str = NUM_SAMPLES_OPTION,
    seed: str = SEED_OPTION,
    batch_size: str = BATCH_SIZE_OPTION,
    output_format: str | None = OUTPUT_FORMAT_OPTION,
    out: str | None = OUT_OPTION,
    force: bool = FORCE_OPTION,
    logprobs: str | None = LOGPROBS_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Sample a model under a grid of settings and show the outputs side by side.

    Every combination of the grid flags is one column; every prompt gets its own table.
    Sample i has the same seed in every column, so the columns differ only by the knob.

    Examples:

        genlab sample --prompt "Once upon a time" -t 0.5,0.8,1.2 -n 2

        genlab sample -m ./tiny --prompt "Once upon a time" -t 0.2,0.7,1.2 -n 3

        genlab sample -m gpt2 --prompts prompts/stories.txt --top-k 0,40 --top-p 1,0.9 -o out.jsonl

        genlab sample -m ./base --adapter kind=runs/kind/adapter -t 0.7 -f markdown

        genlab sample -m ./qwen2.5-0.5b-instruct --prompt "What is the capital of France?" \\
            --system "Answer in one word." -t 0,0.7

        genlab sample -m ./model.Q8_0.gguf --prompts chats.jsonl --max-new-tokens 128

        genlab sample --prompt "Once upon a time" --dry-multiplier 0,0.8 --logit-bias " the=-inf"
        genlab sample -m ./smollm2-135m --prompt "Hi" --threads 1 --quantize int8
    """
    from genlab.cli import sample_args as args

    axes = {name: knobs[name] for name in GRID_FIELDS}
    shared = {name: knobs[name] for name in BASE_FIELDS}
    try:
        prompting = args.parse_prompting(knobs["chat"], knobs["system"],
                                         knobs["truncate_prompt"])
        plan = _build_plan(args, model, device, dtype, adapter or [], prompt or [], prompts_file,
                           axes, shared, num_samples, seed, batch_size, output_format, out,
                           logprobs, prompting, gguf_file, force)
        plan = replace(plan, runtime=parse_runtime(knobs))
    except UsageError as err:
        fail(str(err))
    _run(plan, quiet)


def _build_plan(args: Any, model: str | None, device: str, dtype: str, adapter: list[str],
                prompt: list[str], prompts_file: str | None, axes: dict[str, str | None],
                shared: dict[str, Any], num_samples: str, seed: str, batch_size: str,
                output_format: str | None, out: str | None, logprobs: str | None,
                prompting: dict[str, Any], gguf_file: str | None, force: bool = False) -> Any:
    """Every check that needs no model, in flag order; raises ``UsageError``."""
    model = model or default_model()
    device = args.check_device(device)
    dtype = args.check_dtype(dtype)
    adapters = args.parse_adapters(adapter)
    prompts = args.collect_prompts(prompt, prompts_file)
    if prompting["chat"] is False and any(p.messages for p in prompts):
        raise UsageError(f"--prompts {prompts_file}: holds conversations (\"messages\"), which "
                         "need the chat template; drop --no-chat")
    base = args.build_base_params(shared)
    n = args.parse_int("--num-samples", num_samples, 1, "an integer >= 1")
    s = args.parse_int("--seed", seed, 0, "an integer in [0, 2**63)")
    if s >= 2**63:
        raise UsageError(f"--seed {seed}: must be an integer in [0, 2**63)")
    b = args.parse_int("--batch-size", batch_size, 1, "an integer >= 1")
    lp = None if logprobs is None else args.parse_int("--logprobs", logprobs, 0,
                                                      "an integer >= 0")
    fmt = args.resolve_format(output_format, out)
    out_path = args.check_out_path(out, force) if out is not None else None
    cells, rows, varying = args.build_grid(axes, base, adapters, prompts, n, s, prompting)
    return args.SamplePlan(model=model, device=device, dtype=dtype, prompts=prompts,
                           cells=cells, rows=rows, varying=varying, seed=s, num_samples=n,
                           batch_size=b, output_format=fmt, adapters=adapters, logprobs=lp,
                           out=out_path, gguf_file=gguf_file, **prompting)


def _run(plan: Any, quiet: bool) -> None:
    """Load, generate, then render or write; maps load failures and Ctrl-C to exit codes."""
    from rich.console import Console

    err_console = Console(stderr=True, quiet=quiet)
    try:
        loaded = _load(plan, err_console)
        from genlab.cli.sample_progress import RunProgress
        from genlab.cli.sample_run import run_plan
        from genlab.core.events import StopToken
        from genlab.core.generation.prompting import ContextLimitError, PromptError

        stop = StopToken()

        def stopping() -> None:
            err_console.print("genlab: stopping after the current step (Ctrl-C again to "
                              "abort)", style="yellow", highlight=False)

        try:
            with StopOnSignals(stop, on_first=stopping), \
                    RunProgress(len(plan.rows), enabled=not quiet) as progress:
                results, cancelled = run_plan(loaded, plan, stop=stop, progress=progress)
        except (ContextLimitError, PromptError) as err:
            fail(_prompt_error_line(plan, err))
    except KeyboardInterrupt:
        print("genlab: interrupted; nothing written", file=sys.stderr)
        raise typer.Exit(EXIT_STOPPED) from None
    except MemoryError:
        fail("out of memory; try a smaller --batch-size or --max-new-tokens", code=1)
    except RuntimeError as err:
        if "out of memory" not in str(err).lower():
            raise
        fail("out of memory on the device; try a smaller --batch-size or --max-new-tokens",
             code=1)
    _emit(plan, results, cancelled, err_console)
    _hint_raw_instruct(loaded, plan, results, err_console)


def _prompt_error_line(plan: Any, err: Exception) -> str:
    """``prompt 2 ("What is..."): <why>``: the prompt a context or template error is about."""
    row = getattr(err, "row", None)
    if row is None or row >= len(plan.rows):
        return str(err)
    index = plan.rows[row].prompt_index
    text = plan.prompts[index].text
    shown = text if len(text) <= 40 else text[:39] + "…"
    return f"prompt {index + 1} ({shown!r}): {err}"


def _load(plan: Any, err_console: Any) -> Any:
    from genlab.cli.model_status import load_with_status, print_loaded, prompt_format_line

    loaded, line = load_with_status(err_console, plan.model, device=plan.device,
                                    dtype=plan.dtype, adapters=plan.adapters,
                                    gguf_file=plan.gguf_file, threads=plan.runtime.threads,
                                    quantize=plan.runtime.quantize,
                                    compile=plan.runtime.compile)
    _check_prompts(loaded, plan)
    _check_logit_bias(plan, loaded)
    print_loaded(err_console, loaded, line)
    err_console.print(prompt_format_line(loaded, plan.chat, plan.system), style="dim",
                      markup=False, highlight=False)
    err_console.print(f"{len(plan.rows)} rows · batch {plan.batch_size}", style="dim",
                      markup=False, highlight=False)
    return loaded


def _check_logit_bias(plan: Any, loaded: Any) -> None:
    """Every ``--logit-bias`` token must exist in this model's vocabulary (one-line error)."""
    from genlab.cli.sample_args import config_error_message
    from genlab.core.configs import ConfigError
    from genlab.core.generation.sampling import resolve_logit_bias

    entries = plan.cells[0].params.logit_bias if plan.cells else ()
    if not entries:
        return
    vocab = getattr(loaded.model.config, "vocab_size", None) or len(loaded.tokenizer)
    try:
        resolve_logit_bias(loaded.tokenizer, entries, int(vocab))
    except ConfigError as err:
        fail(config_error_message(err))


def _check_prompts(loaded: Any, plan: Any) -> None:
    """Every row's prompt against the model (template, context) before anything is printed:
    a prompt that cannot work is one error line (the generator checks it again, cheaply:
    identical prompts are encoded once)."""
    from genlab.core.generation.prompting import ContextLimitError, PromptError, encode_requests

    try:
        encode_requests(loaded, [r.request for r in plan.rows])
    except (ContextLimitError, PromptError) as err:
        fail(_prompt_error_line(plan, err))


def _hint_raw_instruct(loaded: Any, plan: Any, results: list[Any], err_console: Any) -> None:
    """Say why an instruct model sent raw text ends at once, when most rows do that."""
    from genlab.core.data.chat import template_name

    name = template_name(loaded.tokenizer)
    if plan.chat is not False or not name or not results:
        return
    instant = sum(r.finish_reason == "eos" and len(r.token_ids) <= 2 for r in results)
    if instant * 2 >= len(results):
        err_console.print(
            f"genlab: hint: {instant} of {len(results)} rows ended at once with end-of-text: "
            f"this model has a {name} chat template and expects a conversation; drop "
            "--no-chat to send each prompt as a user turn", style="yellow", markup=False,
            highlight=False)


def _emit(plan: Any, results: list[Any], cancelled: bool, err_console: Any) -> None:
    """Show or write the results; a cancelled run shows its partial table but writes no file."""
    from genlab.cli import sample_output as output

    if cancelled:
        shown = plan.output_format == "table" and plan.out is None
        if shown:
            _print_table(plan, results)
        done = sum(r.finish_reason != "cancelled" for r in results)
        print(f"genlab: cancelled: {done} of {len(plan.rows)} rows finished; "
              + ("partial table above" if shown else "nothing written"), file=sys.stderr)
        raise typer.Exit(EXIT_STOPPED)
    if plan.output_format == "table" and plan.out is None:
        _print_table(plan, results)
        return
    if plan.output_format == "table":
        text = _table_text(plan, results)
    elif plan.output_format == "jsonl":
        text = output.to_jsonl(results)
    elif plan.output_format == "csv":
        text = output.to_csv(results)
    else:
        text = output.to_markdown(results, plan.prompt_texts, plan.cells, plan.varying,
                                  plan.num_samples)
    if plan.out is None:
        _write_stdout(text)
        return
    from genlab.core.io import write_text_atomic

    try:
        write_text_atomic(plan.out, text)
    except OSError as err:
        fail(f"--out {plan.out}: cannot write it ({err.strerror or err})", code=1)
    err_console.print(f"wrote {len(results)} rows to {plan.out}", style="dim", markup=False,
                      highlight=False)


def _write_stdout(text: str) -> None:
    """Write to stdout; a reader that went away (``| head``) is not an error."""
    import os

    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the failed flush again at exit; point stdout at devnull.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _print_table(plan: Any, results: list[Any]) -> None:
    """The table on stdout: the terminal's width there, never cut when stdout is a file."""
    from rich.console import Console

    from genlab.cli.sample_output import render_tables

    console = Console()
    if not console.is_terminal:  # a file or pipe: rich would assume 80 columns and cut it
        _write_stdout(_table_text(plan, results))
        return
    render_tables(console, results, plan.prompt_texts, plan.cells, plan.varying,
                  plan.num_samples, plan.seed)


def _table_text(plan: Any, results: list[Any]) -> str:
    """The table as plain text (no colour codes) for ``--format table --out FILE``."""
    import io

    from rich.console import Console

    from genlab.cli.sample_output import render_tables

    buf = io.StringIO()
    width = max(100, 24 * (len(plan.cells) + 1), Console().width)  # COLUMNS, when set, wins
    console = Console(file=buf, width=width, no_color=True,
                      color_system=None, force_terminal=False)
    render_tables(console, results, plan.prompt_texts, plan.cells, plan.varying,
                  plan.num_samples, plan.seed)
    return buf.getvalue()

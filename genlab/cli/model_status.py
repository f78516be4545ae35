"""Loading a model in a command: a live status while it loads, then what was loaded and its cost.

Owns what ``genlab sample`` (and the other commands that load a model themselves) show on
stderr: a spinner naming the loading stage (``reading 538 MB of weights``, ``dequantizing GGUF
tensors 96/272``) with the seconds so far, then one line (printed by the command) with the
model's size, device, dtype, weight memory, peak process memory and load time; and which
prompt format the model gets (its chat template, or raw text). A load failure raises
``ModelLoadError``, which the CLI's error boundary prints as one ``genlab: error:`` line with
exit code 2.

Imported inside the commands (it imports the core, and so torch).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from rich.markup import escape

from genlab.core.data.chat import describe_template, has_chat_template
from genlab.core.modeling.loading import LoadedModel, load_model


def load_with_status(console: Any, name: str, *, device: str = "auto", dtype: str = "auto",
                     adapters: dict[str, str] | None = None, gguf_file: str | None = None,
                     threads: int | None = None, quantize: str = "none",
                     compile: bool = False) -> tuple[LoadedModel, str]:
    """Load ``name`` showing its stages on ``console``; return it and its loaded line.

    The caller prints the line (``print_loaded``: with the model's notes, e.g. a slow dtype on
    this CPU) once its own checks of the loaded model have passed, so input that cannot work
    with this model (a prompt over its context) is the only line on stderr.
    """
    start = time.perf_counter()
    with console.status(f"Loading {escape(name)}…") as status, warnings.catch_warnings():
        # Library deprecation chatter (transformers/peft) is not the user's business here.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)

        def progress(stage: str) -> None:
            elapsed = time.perf_counter() - start
            status.update(f"Loading {escape(name)}: {escape(stage)} ({elapsed:.0f} s)…")

        # A ModelLoadError (or a GgufError) is one line from the CLI's error boundary.
        loaded = load_model(name, device=device, dtype=dtype, adapters=adapters or None,
                            gguf_file=gguf_file, on_progress=progress, threads=threads,
                            quantize=quantize, compile=compile)
    seconds = time.perf_counter() - start
    return loaded, f"{loaded.describe()} · {loaded.memory_text()} · loaded in {seconds:.1f} s"


def print_loaded(console: Any, loaded: LoadedModel, line: str) -> None:
    """The loaded line, then each of the model's notes as a warning."""
    console.print(line, style="dim", markup=False, highlight=False)
    for note in loaded.notes:
        console.print(f"genlab: warning: {note}", style="yellow", markup=False, highlight=False)


def prompt_format_line(loaded: LoadedModel, chat: bool | None, system: str | None) -> str:
    """Which format prompts are sent in, and how to change it."""
    tokenizer = loaded.tokenizer
    context = loaded.context_length
    limit = f" · context {context} tokens" if context else ""
    if not has_chat_template(tokenizer):
        return f"prompts: raw text (the model has no chat template){limit}"
    template = describe_template(tokenizer)
    if chat is False:
        return f"prompts: raw text (--no-chat; the model has a {template}){limit}"
    shown = f" · system: {system!r}" if system else ""
    return f"prompts: chat, {template}; replies only (--no-chat sends raw text){shown}{limit}"

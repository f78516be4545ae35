"""Loading a model in a command: a live status while it loads, then what was loaded and its cost.

Owns what ``genlab sample`` (and the other commands that load a model themselves) show on
stderr: a spinner naming the loading stage (``reading 538 MB of weights``, ``dequantizing GGUF
tensors 96/272``) with the seconds so far, then one line with the model's size, device, dtype,
weight memory, peak process memory and load time; and which prompt format the model gets (its
chat template, or raw text). A load failure is one ``genlab: error:`` line and exit code 2.

Imported inside the commands (it imports the core, and so torch).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from rich.markup import escape

from genlab.cli.common import fail
from genlab.core.data.chat import describe_template, has_chat_template
from genlab.core.modeling.loading import LoadedModel, ModelLoadError, load_model


def load_with_status(console: Any, name: str, *, device: str = "auto", dtype: str = "auto",
                     adapters: dict[str, str] | None = None, gguf_file: str | None = None,
                     threads: int | None = None, quantize: str = "none") -> LoadedModel:
    """Load ``name`` showing its stages on ``console``; print the loaded line (and the model's
    notes, e.g. a slow dtype on this CPU); exit on failure."""
    start = time.perf_counter()
    with console.status(f"Loading {escape(name)}…") as status, warnings.catch_warnings():
        # Library deprecation chatter (transformers/peft) is not the user's business here.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)

        def progress(stage: str) -> None:
            elapsed = time.perf_counter() - start
            status.update(f"Loading {escape(name)}: {escape(stage)} ({elapsed:.0f} s)…")

        try:
            loaded = load_model(name, device=device, dtype=dtype, adapters=adapters or None,
                                gguf_file=gguf_file, on_progress=progress, threads=threads,
                                quantize=quantize)
        except ModelLoadError as err:
            fail(str(err).splitlines()[0] if str(err) else "the model could not be loaded")
    seconds = time.perf_counter() - start
    console.print(f"{loaded.describe()} · {loaded.memory_text()} · loaded in {seconds:.1f} s",
                  style="dim", markup=False, highlight=False)
    for note in loaded.notes:
        console.print(f"genlab: warning: {note}", style="yellow", markup=False, highlight=False)
    return loaded


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

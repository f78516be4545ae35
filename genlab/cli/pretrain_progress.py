"""How ``genlab pretrain`` draws a run: the two phases of a time-boxed run and the summary.

Owns the pretraining view only: ``make_progress`` extends ``genlab train``'s renderer
(``train_progress.TrainProgress``) with the open-ended stable phase and the notes between
phases, ``describe_config`` is the header line, and ``summary_lines`` is what stdout gets at the
end. Imported by ``pretrain_cmd`` inside the command, so ``--help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def make_progress(console: Any, config: Any, *, quiet: bool) -> Any:
    """``genlab train``'s ``TrainProgress``, taught the two phases of a time-boxed run.

    The stable phase is open-ended (its stop token ends it at the switch time), so its bar shows
    the step without a total; each phase's end gets a note, and so does the final scoring.
    Built here, not at import, so ``--help`` does not import rich's progress or the core.
    """
    from rich.text import Text

    from genlab.cli.train_progress import TrainProgress, format_duration, started_lines
    from genlab.core.pretrain.timebox import OPEN_ENDED_STEPS

    class PretrainProgress(TrainProgress):
        def __init__(self) -> None:
            super().__init__(console, quiet=quiet)
            self._bar.update(self._task, description="training the tokenizer, loading data")
            self.described = False

        def _on_started(self, event: Any) -> None:
            if not self.described:  # after setup, so a setup error stays a one-line message
                self.described = True
                self.print(Text(describe_config(config), style="dim"))
            if event.total_steps < OPEN_ENDED_STEPS:
                super()._on_started(event)
                return
            self.run_dir, self.total_steps, self.step = event.run_dir, None, event.start_step
            self._log_every = 25
            self._bar.reset(self._task, total=None, completed=self.step,
                            description="stable phase")
            limit = format_duration(float(config.time_limit_s))
            head = (f"run {event.run_dir}: stable phase at constant lr for "
                    f"{1 - config.decay_fraction:.0%} of {limit}, then a linear decay run")
            for line in [head, *started_lines(event)[1:]]:
                self.print(Text(line, style="dim"))

        def print(self, message: Any) -> None:
            if isinstance(message, Text) and message.plain.startswith("full fine-tuning"):
                message = Text(message.plain.replace("full fine-tuning", "pretraining", 1),
                               style=message.style)
            super().print(message)

        def _on_step(self, event: Any) -> None:
            if self.total_steps is None:
                self._bar.update(self._task, description=f"step {event.step} (stable lr)")
            super()._on_step(event)

        def run_finished(self, event: Any) -> None:
            """A phase ended: say what comes next (decay run or the final scoring)."""
            if Path(event.run_dir).name == "run-stable" and event.status == "stopped" \
                    and not self.stop_requested:
                note = f"stable phase done at step {event.steps}; starting the decay run"
            elif config.eval_data:
                note = f"scoring the first {config.eval_stories} held-out documents whole"
            else:
                return
            self.print(Text(note, style="dim"))

    return PretrainProgress()


def describe_config(config: Any) -> str:
    """One header line: tokenizer, shape, parameters and how long the run is."""
    from genlab.cli.train_progress import format_count, format_duration
    from genlab.core.pretrain.model import count_parameters

    s = config.shape
    params = count_parameters(s, config.vocab_size, tie_embeddings=config.tie_embeddings)
    length = (f"time limit {format_duration(config.time_limit_s)}" if config.time_limit_s
              else "one cosine run" if "schedule" not in config.training
              else f"{config.training['schedule']} schedule")
    return (f"pretrain: BPE vocab {config.vocab_size} · Llama {s.layers} layers x {s.hidden}, "
            f"{s.heads} heads ({s.kv_heads} KV), MLP {s.mlp}, context {s.context}"
            f"{'' if config.tie_embeddings else ', untied'} · ~{format_count(params)} params · "
            f"{length}")


def summary_lines(result: Any, out: Path, config: Any, *, quiet: bool) -> list[str]:
    """The end-of-run summary on stdout (only the model directory when quiet)."""
    import shlex

    from genlab.cli.train_progress import format_count, format_duration

    if quiet:
        return [result.model_dir]
    lines = [f"Pretraining {result.status} after {result.train_tokens:,} tokens in "
             f"{format_duration(result.wall_time_s)}: {format_count(result.params)} params, "
             f"vocab {result.vocab_size}"]
    lines.append(f"  bits per byte   {_bpb_text(result, config)}")
    lines.append(f"  output dir      {out}")
    lines.append(f"  model dir       {result.model_dir}")
    prompt = (config.training.get("sample_prompts") or ("Once upon a time",))[0]
    lines.append("Try it:")
    lines.append(f"  genlab sample --model {shlex.quote(result.model_dir)} "
                 f"--prompt {shlex.quote(prompt)} -t 0.5,0.8,1.2")
    return lines


def _bpb_text(result: Any, config: Any) -> str:
    """The score and what it scored, or plainly why nothing was scored."""
    if result.bits_per_byte is None:
        reason = getattr(result, "no_eval_reason", "") or "no held-out text"
        return (f"not scored: nothing was held out ({reason}); pass --eval-data FILE, or "
                "--eval-split F with a corpus of 2 or more documents")
    if getattr(result, "eval_source", "eval_data") == "split":
        where = (f"{result.eval_stories} documents held out of {Path(config.data).name} "
                 f"(--eval-split {config.eval_split:g}, never trained on)")
    else:
        where = f"the first {result.eval_stories} documents of {config.eval_data}"
    return (f"{result.bits_per_byte:.4f} ({where}, scored whole, {result.eval_bytes:,} "
            "bytes)")

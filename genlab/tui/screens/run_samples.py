"""One run's sample generations (``samples.jsonl``), step by step, over the Runs screen."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen

from genlab.core.training import run_dir as runs
from genlab.tui.widgets.eval_samples import EvalSamples


class RunSamplesScreen(ModalScreen):
    """Samples of ``run_dir`` with each evaluation's loss; Esc closes."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)

    def compose(self) -> ComposeResult:
        yield EvalSamples(id="run-samples")

    def on_mount(self) -> None:
        log = self.query_one(EvalSamples)
        log.border_title = f"{self.run_dir.name}: samples at each eval (Esc closes)"
        log.border_subtitle = str(self.run_dir / runs.SAMPLES_FILE)
        losses = {r.get("step"): r for r in runs.read_metrics(self.run_dir, "eval")}
        records = runs.read_samples(self.run_dir)
        if not records:
            log.add_note("No samples: the run had no evaluation with sample prompts yet.")
        for step, group in groupby(records, key=lambda r: r.get("step")):
            evaluation = losses.get(step, {})
            loss = evaluation.get("loss")
            best = "  ★ best" if evaluation.get("is_best") else ""
            log.add_note(f"step {step}" + (f" · eval loss {loss:.3f}" if loss is not None
                                           else "") + best, "bold")
            for record in group:
                log.add_sample(record.get("prompt", ""), record.get("text", ""))

    def action_close(self) -> None:
        self.dismiss()

"""Render the TUI's screens to docs/tui-*.png (SVG via Textual, PNG via cairosvg).

Two modes, run from the repository root:

* ``python scripts/tui_screenshots.py`` uses the tests' deterministic fake event source, so the
  pictures show the layout, not a model's quality (writes docs/tui-*.png, not committed);
* ``python scripts/tui_screenshots.py --real`` drives the real app on the shipped model: the
  Sample screen generates for real; the Train screen trains two LoRA configs side by side on
  the LoRA demo's facts (``demo/facts``, prompt + completion fields, 80 steps each; or on
  ``--data FILE``, 40 steps), differing in the learning rate (CPU: about a minute); the
  Experiments screen runs lesson 1 (``learning-rate.yaml``, about two minutes on 2 cores);
  the Runs screen lists what they wrote (plus ``--runs-dir DIR``'s runs, if given). It writes
  docs/tui-real-{sample,train,experiments,runs}.png at 140x42, and the Train and
  Experiments screens again at 80x24 (``-80x24``). ``--doc-separator`` fills the form's field
  of that name (e.g. ``'<|endoftext|>'`` for TinyStories).

Needs ``cairosvg`` (``pip install -e '.[screenshots]'``) for the PNGs; without it only SVGs
are written.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as genlab tui does, before torch loads

from genlab.core.configs import TrainConfig  # noqa: E402
from genlab.core.events import StopToken  # noqa: E402
from genlab.tui.app import make_app  # noqa: E402
from genlab.tui.fake_source import FakeSource  # noqa: E402
from genlab.tui.widgets.chart_view import ChartView  # noqa: E402
from genlab.tui.widgets.sample_column import SampleColumn  # noqa: E402
from genlab.tui.widgets.train_form import TrainForm  # noqa: E402

SIZE = (140, 42)
SMALL = (80, 24)
DOCS = Path(__file__).resolve().parents[1] / "docs"


async def wait(pilot, condition, timeout=20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.02)


async def shoot(pilot, name: str, prefix: str = "tui") -> Path:
    app = pilot.app
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False
    await pilot.pause(0.3)
    await wait(pilot, lambda: not any(c.pending for c in app.screen.query(ChartView)))
    await pilot.pause(0.1)
    path = DOCS / f"{prefix}-{name}.svg"
    path.write_text(app.export_screenshot(title=f"genlab tui · {name}"), encoding="utf-8")
    return path


async def small_too(pilot, name: str, prefix: str) -> Path:
    """The same screen at 80x24, then back to the big size."""
    await pilot.resize_terminal(*SMALL)
    shot = await shoot(pilot, f"{name}-80x24", prefix)
    await pilot.resize_terminal(*SIZE)
    return shot


async def tour(app, *, top_k: str, train: dict[str, str], lr_b: str, prefix: str,
               timeout: float) -> list[Path]:
    """Sample (4 columns, the 4th with ``top_k``); Train: configs A (``train``) and B (its lr
    ``lr_b``) side by side; Experiments: lesson 1 run to its end; Runs with three marked."""
    shots = []
    async with app.run_test(size=SIZE) as pilot:
        await wait(pilot, lambda: app.model_state == "ready", timeout)
        await app.screen.action_add_column()
        columns = list(app.screen.query(SampleColumn))
        columns[3].panel.set_value("top_k", top_k)
        await pilot.pause(0.1)
        await pilot.press("ctrl+r")
        await wait(pilot, lambda: all(c.reason for c in columns), timeout)
        columns[2].view.focus()
        await pilot.press("right", "right", "right", "right")
        shots.append(await shoot(pilot, "sample", prefix))
        await pilot.press("f3")
        form = app.screen.query_one(TrainForm)
        for name, value in train.items():
            form.set_value(name, value)
        form.query_one("#lr").focus()
        await pilot.pause(0.1)
        await pilot.press("ctrl+n")  # compare with...: B differs in the learning rate
        app.screen.forms[1].set_value("lr", lr_b)
        await pilot.pause(0.1)
        await pilot.press("f5")
        await wait(pilot, lambda: not app.bridge.running("train"), timeout)
        shots.append(await shoot(pilot, "train", prefix))
        shots.append(await small_too(pilot, "train", prefix))
        await pilot.press("f7", "1")  # lesson 1: the learning rate
        await wait(pilot, lambda: app.screen.run is not None and
                   app.screen.run.finished is not None, timeout)
        app.screen.query_one("#exp-table").focus()
        shots.append(await shoot(pilot, "experiments", prefix))
        shots.append(await small_too(pilot, "experiments", prefix))
        await pilot.press("f4")
        app.screen.query_one("RunTable").focus()
        await pilot.press("space", "down", "space", "down", "space")
        shots.append(await shoot(pilot, "runs", prefix))
    return shots


async def main(runs_dir: Path) -> list[Path]:
    """The deterministic fake source: layout only."""
    source = FakeSource(write_runs=True, train_steps=60)
    for n, lr in enumerate((5e-5, 1e-3)):  # something for the Runs screen to compare
        config = TrainConfig(model="demo-model", data="stories.txt", name=f"lr{lr:g}",
                             eval_every=10, lr=lr)
        list(source.iter_train(config, out_dir=runs_dir / f"20250101-12000{n}-lr{lr:g}",
                               stop_token=StopToken(), resume_from=None))
    app = make_app(model="demo-model", event_source=source, runs_dir=runs_dir)
    data = runs_dir.parent / "stories.txt"
    data.write_text("Once upon a time there was a fox.\n", encoding="utf-8")
    return await tour(app, top_k="3", train={"data": str(data), "name": "demo"},
                      lr_b="1e-3", prefix="tui", timeout=30)


FACTS = Path(__file__).resolve().parents[1] / "demo" / "facts"
FACTS_FORM = {"data": str(FACTS / "train.jsonl"), "eval_data": str(FACTS / "eval.jsonl"),
              "prompt_field": "prompt", "completion_field": "completion", "seq_len": "64",
              "max_steps": "80", "eval_every": "10", "lr": "0.0005", "name": "facts",
              "sample_prompts": "Q: What is the favorite food of Pim the owl?\\nA:"}
"""The LoRA demo's facts, trained from the form (prompt + completion fields)."""


async def main_real(data: str | None, separator: str, runs_dir: Path | None, work: Path
                    ) -> list[Path]:
    """The real app on the shipped model: generate, train two LoRAs, run a lesson."""
    if runs_dir is not None:
        shutil.copytree(runs_dir, work / "runs")
    app = make_app(model="default", runs_dir=work / "runs")
    train = dict(FACTS_FORM)
    if data:  # a text file instead (e.g. TinyStories with its <|endoftext|> separator)
        train = {"data": data, "doc_separator": separator, "eval_split": "0.05",
                 "max_steps": "40", "eval_every": "10", "lr": "0.0005", "name": "real-demo"}
    return await tour(app, top_k="10", train=train, lr_b="0.003", prefix="tui-real",
                      timeout=1200)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", help="The real app on the shipped model.")
    parser.add_argument("--data", help="--real: a text file the Train screen trains on "
                                       "(default: the LoRA demo's facts, demo/facts).")
    parser.add_argument("--doc-separator", default="", help="--real: the data's separator.")
    parser.add_argument("--runs-dir", type=Path, help="--real: more run directories to list.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.real:
            svgs = asyncio.run(main_real(args.data, args.doc_separator, args.runs_dir,
                                          Path(tmp)))
        else:
            svgs = asyncio.run(main(Path(tmp) / "runs"))
    try:
        import cairosvg
    except ImportError:
        print("cairosvg is not installed: wrote SVGs only", file=sys.stderr)
        raise SystemExit(0) from None
    for svg in svgs:
        cairosvg.svg2png(url=str(svg), write_to=str(svg.with_suffix(".png")), output_width=1680)
        svg.unlink()
        print(svg.with_suffix(".png"))

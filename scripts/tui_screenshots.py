"""Render the TUI's screens to docs/tui-*.png (SVG via Textual, PNG via cairosvg).

Two modes, run from the repository root:

* ``python scripts/tui_screenshots.py`` uses the tests' deterministic fake event source, so the
  pictures show the layout, not a model's quality (writes docs/tui-{sample,train,runs}.png);
* ``python scripts/tui_screenshots.py --real --data FILE --runs-dir DIR`` drives the real app on
  the shipped model: the Sample screen generates for real, the Train screen trains a LoRA on
  FILE for 40 steps (CPU: about a minute), and the Runs screen lists DIR (e.g. a sweep's
  ``trials/``) plus that run; writes docs/tui-real-{sample,train,runs}.png. ``--doc-separator``
  fills the form's field of that name (e.g. ``'<|endoftext|>'`` for TinyStories).

Needs ``cairosvg`` (``pip install cairosvg``) for the PNGs; without it only SVGs are written.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from genlab.core.configs import TrainConfig
from genlab.core.events import StopToken
from genlab.tui.app import make_app
from genlab.tui.fake_source import FakeSource
from genlab.tui.widgets.sample_column import SampleColumn
from genlab.tui.widgets.train_form import TrainForm

SIZE = (140, 42)
DOCS = Path(__file__).resolve().parents[1] / "docs"


async def wait(pilot, condition, timeout=20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.02)


async def shoot(pilot, name: str, prefix: str = "tui") -> Path:
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False
    await pilot.pause()
    path = DOCS / f"{prefix}-{name}.svg"
    path.write_text(pilot.app.export_screenshot(title=f"genlab tui · {name}"), encoding="utf-8")
    return path


async def tour(app, *, top_k: str, train: dict[str, str], prefix: str,
               timeout: float) -> list[Path]:
    """Shoot the Sample screen (4 columns, the 4th with ``top_k``), the Train screen after a run
    with the ``train`` form values, and the Runs screen with three runs marked."""
    shots = []
    async with app.run_test(size=SIZE) as pilot:
        await wait(pilot, lambda: app.model_state == "ready", timeout)
        await pilot.press("ctrl+n")
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
        await pilot.pause(0.1)
        await pilot.press("f5")
        await wait(pilot, lambda: not app.bridge.running("train"), timeout)
        form.query_one("#lr").focus()
        shots.append(await shoot(pilot, "train", prefix))
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
    return await tour(app, top_k="3", train={"data": "stories.txt", "name": "demo"},
                      prefix="tui", timeout=20)


async def main_real(data: str, separator: str, runs_dir: Path, work: Path) -> list[Path]:
    """The real app on the shipped model: generate, train a short LoRA, list real runs."""
    shutil.copytree(runs_dir, work / "runs")
    app = make_app(model="default", runs_dir=work / "runs")
    train = {"data": data, "doc_separator": separator, "eval_split": "0.05", "max_steps": "40",
             "eval_every": "10", "lr": "0.002", "name": "real-demo"}
    return await tour(app, top_k="10", train=train, prefix="tui-real", timeout=900)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", help="The real app on the shipped model.")
    parser.add_argument("--data", help="--real: a text file the Train screen trains on.")
    parser.add_argument("--doc-separator", default="", help="--real: the data's separator.")
    parser.add_argument("--runs-dir", type=Path, help="--real: run directories to list.")
    args = parser.parse_args()
    if args.real and not (args.data and args.runs_dir):
        parser.error("--real needs --data and --runs-dir")
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

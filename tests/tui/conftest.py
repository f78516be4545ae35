"""Shared helpers for the TUI tests: the app built through ``make_app`` with a fake source.

Tests are plain functions that run an async scenario with ``asyncio.run`` (no async pytest
plugin needed). ``wait_for`` polls a condition while the app keeps running, so tests wait for
what they need instead of sleeping a fixed time.

Snapshots: a test drives a screen to a deterministic state and calls ``check_snapshot``,
which saves it with ``export_screenshot`` (SVG, committed under ``snapshots/`` so a reviewer
can open it) and compares the terminal text read back out of the SVG, line by line, with run
timestamps normalised. That catches layout and content changes without failing on SVG ids or
colour details. Snapshots belong to the Textual minor version they were recorded with
(``snapshots/TEXTUAL_VERSION``, pinned by the ``test`` extra); on another version the test
fails, because a snapshot that is not compared proves nothing.
Re-record with ``GENLAB_UPDATE_SNAPSHOTS=1 pytest tests/tui`` and look at the SVGs.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import textual

from genlab.tui.app import GenlabApp, make_app
from genlab.tui.fake_source import FakeSource

SIZE = (140, 42)
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_SNAPSHOTS = os.environ.get("GENLAB_UPDATE_SNAPSHOTS") == "1"
TEXTUAL_MINOR = ".".join(textual.__version__.split(".")[:2])
_SVG_LINE = re.compile(r'<text [^>]*clip-path="url\(#[\w-]+-line-(\d+)\)"[^>]*>([^<]*)</text>')


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 10.0,
                   what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)  # (pilot.pause would also wait for every queue to drain)


async def wait_ready(pilot) -> None:
    """Wait until the app's model finished loading (or failed)."""
    app = pilot.app
    await wait_for(pilot, lambda: app.model_state != "loading", what="model load")


async def wait_idle(pilot, group: str) -> None:
    """Wait until no run of ``group`` is going and its messages were handled."""
    await wait_for(pilot, lambda: not pilot.app.bridge.running(group), what=f"{group} idle")
    await pilot.pause()


def fake_app(tmp_path, source: FakeSource | None = None, **kwargs) -> GenlabApp:
    """The app as users get it, on a fake source, writing runs under ``tmp_path``."""
    kwargs.setdefault("runs_dir", tmp_path / "runs")
    return make_app(model="fake-model", event_source=source or FakeSource(), **kwargs)


def svg_text(svg: str) -> str:
    """The terminal's text from a Rich/Textual SVG screenshot, one line per row."""
    rows: dict[int, list[str]] = {}
    for number, content in _SVG_LINE.findall(svg):
        rows.setdefault(int(number), []).append(html.unescape(content).replace("\xa0", " "))
    lines = ["".join(rows.get(n, [])).rstrip() for n in range(max(rows, default=-1) + 1)]
    text = re.sub(r"\d{8}-\d{6}", "YYYYMMDD-HHMMSS", "\n".join(lines))
    # a measured wall time (the fake sweep's "the last run took 0 s" or 1 s, by load)
    return re.sub(r"(the last run took) [\d.]+ (s|min|h)\b", r"\1 N \2", text)


async def settle(pilot) -> None:
    """Let the screen finish what it draws in the background (charts) and lay out."""
    from genlab.tui.widgets.chart_view import ChartView

    app = pilot.app
    await pilot.pause()
    await wait_for(pilot, lambda: not any(c.pending for c in app.screen.query(ChartView)),
                   what="charts drawn")
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


async def check_snapshot(pilot, name: str, tmp_path: Path) -> None:
    """Compare the app's current screen with ``snapshots/<name>.svg`` (or record it)."""
    app = pilot.app
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False
    await settle(pilot)
    svg = app.export_screenshot(title=f"genlab {name}")
    expected_file = SNAPSHOTS / f"{name}.svg"
    if UPDATE_SNAPSHOTS:
        SNAPSHOTS.mkdir(exist_ok=True)
        expected_file.write_text(svg, encoding="utf-8")
        (SNAPSHOTS / "TEXTUAL_VERSION").write_text(TEXTUAL_MINOR + "\n", encoding="utf-8")
        return
    recorded = (SNAPSHOTS / "TEXTUAL_VERSION").read_text().strip()
    if recorded != TEXTUAL_MINOR:
        pytest.fail(f"snapshot {name} cannot be compared: recorded with Textual {recorded}, "
                    f"this is {TEXTUAL_MINOR} (the test extra pins it: pip install -e "
                    "'.[test]'); or re-record with GENLAB_UPDATE_SNAPSHOTS=1 and look at the SVGs")
    if not expected_file.exists():
        pytest.fail(f"no snapshot {expected_file.name}: record it with GENLAB_UPDATE_SNAPSHOTS=1")
    actual, expected = svg_text(svg), svg_text(expected_file.read_text(encoding="utf-8"))
    if actual != expected:
        (tmp_path / f"{name}.svg").write_text(svg, encoding="utf-8")
        exp, act = expected.splitlines(), actual.splitlines()
        diff = [f"{n:3}: -{e}\n     +{a}" for n, (e, a) in
                enumerate(zip(exp + [""] * len(act), act + [""] * len(exp), strict=False))
                if e != a]
        pytest.fail(f"{name} differs from its snapshot (actual saved in {tmp_path}):\n"
                    + "\n".join(diff[:12]))


def run(scenario) -> None:
    """Run an async test scenario to completion."""
    asyncio.run(scenario())


@pytest.fixture
def tui():
    """The helpers above, as one object (tests import nothing from conftest)."""
    return SimpleNamespace(SIZE=SIZE, wait_for=wait_for, wait_ready=wait_ready,
                           wait_idle=wait_idle, fake_app=fake_app, run=run, settle=settle,
                           check_snapshot=check_snapshot, svg_text=svg_text)

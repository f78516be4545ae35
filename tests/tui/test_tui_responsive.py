"""Responsiveness and memory: typing stays fast while a long run streams; no leak per run.

Latency is measured from posting a key (as the terminal driver does) to the prompt's text
showing it, while a never-ending fake generation streams into six columns from a worker
thread. The numbers are printed (``pytest -s``) and bounded generously, since CI machines are
shared; on an idle laptop the median is a few milliseconds.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time

from textual.widgets import TextArea

from genlab.tui.fake_source import FakeSource
from genlab.tui.widgets.sample_column import SampleColumn


async def measure_key_latency(app, pilot, presses: int = 20) -> list[float]:
    """Seconds from each key press to the prompt showing its character.

    Polls with bare ``asyncio.sleep`` (not ``pilot.pause``, which waits for every widget's
    queue to drain and would add its own delay to the measurement).
    """
    prompt = app.screen.query_one("#prompt", TextArea)
    prompt.focus()
    await asyncio.sleep(0.05)
    latencies = []
    for _ in range(presses):
        before = len(prompt.text)
        start = time.perf_counter()
        app.simulate_key("x")
        while len(prompt.text) == before:
            if time.perf_counter() - start > 5:
                raise AssertionError("a key press was not handled within 5 s")
            await asyncio.sleep(0.0005)
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(0.02)
    return latencies


def test_typing_stays_responsive_while_six_columns_stream(tmp_path, tui):
    source = FakeSource(endless=True, token_delay_s=0.002)
    result = {}

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=tui.SIZE) as pilot:
            await tui.wait_ready(pilot)
            await pilot.press("ctrl+n", "ctrl+n", "ctrl+n")
            app.screen.action_run_all()
            columns = list(app.screen.query(SampleColumn))
            await tui.wait_for(pilot, lambda: len(columns[-1].tokens) > 20, what="streaming")
            streamed_before = sum(len(c.tokens) for c in columns)
            result["latencies"] = await measure_key_latency(app, pilot)
            result["streamed"] = sum(len(c.tokens) for c in columns) - streamed_before
            assert app.bridge.running("generate")  # the run really was going throughout
            app.screen.action_stop()
            await tui.wait_idle(pilot, "generate")

    tui.run(scenario)
    lat = sorted(result["latencies"])
    median, p95 = statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]
    print(f"\nkey latency while streaming 6 columns ({result['streamed']} tokens meanwhile): "
          f"median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")
    assert result["streamed"] > 100
    assert median < 0.1 and p95 < 0.5  # shared CI machines; idle: ~4 ms and ~15 ms


def _rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def test_no_memory_growth_over_100_regenerations(tmp_path, tui):
    """Python heap blocks and RSS after 100 regenerations stay where they were.

    ``sys.getallocatedblocks`` counts live interpreter allocations without tracemalloc's
    10x slowdown; a leak of even one small object per token would add thousands.
    """
    source = FakeSource()
    result = {}

    async def scenario():
        app = tui.fake_app(tmp_path, source)
        async with app.run_test(size=(100, 30)) as pilot:
            await tui.wait_ready(pilot)
            screen = app.screen
            await pilot.press("ctrl+b")  # two columns of 8 tokens: the UI work per run
            for column in screen.query(SampleColumn):  # is what could leak, not the tokens
                column.panel.set_value("max_new_tokens", "8")
            await pilot.pause(0.05)

            async def regenerate(times: int) -> None:
                for _ in range(times):
                    screen.action_run_all()
                    while app.bridge.running("generate"):
                        await asyncio.sleep(0.002)
                    await asyncio.sleep(0.01)

            await regenerate(10)  # warm Textual's caches (styles, strips, segments)
            gc.collect()
            blocks, rss = [sys.getallocatedblocks()], _rss_bytes()
            started = time.perf_counter()
            for _ in range(2):  # two halves: a leak grows in both, a filling cache does not
                await regenerate(50)
                gc.collect()
                blocks.append(sys.getallocatedblocks())
            result["seconds"] = time.perf_counter() - started
            result["halves"] = [blocks[1] - blocks[0], blocks[2] - blocks[1]]
            result["rss"] = _rss_bytes() - rss
            result["runs"] = source.generations

    tui.run(scenario)
    first, second = result["halves"]
    print(f"\nover 100 regenerations: heap blocks {first:+d} then {second:+d} per 50 runs, "
          f"RSS {result['rss'] / 2**20:+.1f} MiB ({result['seconds']:.1f} s)")
    assert result["runs"] == 110
    # A leak of one token event (with its 10 alternatives) per token adds ~10k blocks per half.
    assert min(first, second) < 2000 and first + second < 20000
    assert result["rss"] < 16 * 2**20

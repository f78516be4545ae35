"""The genlab TUI application: global bindings, screens, and the model everyone shares.

``make_app`` is the one factory: ``genlab tui`` and the tests build the app through it, so the
tests run what users run (tests pass a fake event source). The app owns the shared model:
it loads it in the background right after the first paint (the status line follows it),
loads another on Ctrl+L (also after a failed load), attaches adapters (from ``--adapter`` and
from finished training runs and experiments), and exposes ``model_state``/``model_text``/
``adapter_names`` reactives that the screens watch. Nothing here imports torch: model work
goes through ``self.bridge`` and ``self.source``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App
from textual.reactive import reactive

from genlab.tui.bindings import APP_BINDINGS
from genlab.tui.bridge import Bridge, describe_failure
from genlab.tui.screens.experiments import ExperimentsScreen
from genlab.tui.screens.help import HelpScreen
from genlab.tui.screens.load_model import LoadModelScreen
from genlab.tui.screens.runs import RunsScreen
from genlab.tui.screens.sample import SampleScreen
from genlab.tui.screens.train import TrainScreen
from genlab.tui.sources import CoreSource, EventSource
from genlab.tui.wording import tui_message

MODEL_GROUP = "model"


class GenlabApp(App):
    """Sample, Train and Runs screens over one background-loaded model."""

    # Every screen's styles load with the app: a screen that brought its own CSS_PATH would
    # change the stylesheet when first shown and make Textual restyle every screen on the
    # next switches (~0.4 s each on a busy CPU).
    CSS_PATH = ["app.tcss", *(f"screens/{name}.tcss" for name in
                              ("sample", "train", "runs", "experiments", "help", "run_samples",
                               "load_model"))]
    TITLE = "genlab"
    ENABLE_COMMAND_PALETTE = False  # every action has a key; the key bar needs the room
    MODES = {"sample": SampleScreen, "train": TrainScreen, "runs": RunsScreen,
             "experiments": ExperimentsScreen}
    BINDINGS = APP_BINDINGS

    model_state: reactive[str] = reactive("loading")
    """``loading``, ``ready`` or ``failed``."""
    model_text: reactive[str] = reactive("")
    adapter_names: reactive[tuple[str, ...]] = reactive(())

    def __init__(self, *, model: str, adapters: dict[str, str] | None = None,
                 device: str = "auto", dtype: str = "auto", runs_dir: str | Path = "runs",
                 event_source: EventSource | None = None, threads: int | None = None,
                 quantize: str = "none", compile: bool = False) -> None:
        super().__init__()
        self.model_name = model
        self.initial_adapters = dict(adapters or {})
        self.device = device
        self.dtype = dtype
        self.threads = threads
        self.quantize = quantize
        self.compile = compile
        self.runs_dir = Path(runs_dir)
        self.source: EventSource = event_source or CoreSource()
        self.bridge = Bridge(self)
        self.loaded: Any = None
        self._pending_adapters: list[tuple[str, str]] = []
        self._help: HelpScreen | None = None
        self.model_text = f"loading {short_name(model)} in the background…"

    def on_mount(self) -> None:
        self.switch_mode("sample")
        self.call_after_refresh(self._load_model)

    def _load_model(self, adapters: dict[str, str] | None = None) -> None:
        source, name = self.source, self.model_name
        device, dtype = self.device, self.dtype
        adapters = self.initial_adapters if adapters is None else adapters

        def stage(text: str) -> None:  # called in the worker: hand it to the UI thread
            self.call_from_thread(self._loading_stage, name, text)

        runtime = {"threads": self.threads, "quantize": self.quantize, "compile": self.compile}

        def load() -> tuple[Any, list[str]]:
            if runtime["quantize"] == "int8":  # adapters attach before the layers are int8
                loaded = source.load_model(name, adapters=adapters, device=device,
                                           dtype=dtype, on_progress=stage, **runtime)
                return loaded, []
            loaded = source.load_model(name, adapters={}, device=device, dtype=dtype,
                                       on_progress=stage, **runtime)
            errors = []
            for adapter_name, adapter_dir in adapters.items():
                try:
                    source.attach_adapter(loaded, adapter_name, adapter_dir)
                except Exception as err:  # noqa: BLE001 - a bad adapter must not lose the model
                    errors.append(describe_failure(err))
            return loaded, errors

        self.bridge.call(self, MODEL_GROUP, load, uses_model=True)

    def _loading_stage(self, name: str, text: str) -> None:
        if self.model_state == "loading":
            self.model_text = f"loading {short_name(name)}: {text}…"

    # ---------------------------------------------------------------- adapters

    def offer_adapter(self, name: str, adapter_dir: str) -> None:
        """Attach an adapter (e.g. a finished run's) so the Sample screen can choose it."""
        if self.model_state != "ready":
            self._pending_adapters.append((name, adapter_dir))
            return
        loaded, source = self.loaded, self.source
        taken = set(self.adapter_names) | {"base"}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}-{n}", n + 1

        def attach() -> str:
            source.attach_adapter(loaded, unique, adapter_dir)
            return unique

        self.bridge.call(self, f"adapter-{unique}", attach, uses_model=True)

    # ---------------------------------------------------------------- messages

    def load_model_named(self, name: str) -> None:
        """Load ``name`` (hub id or directory) for every screen, replacing the loaded model."""
        self.model_name = name
        self.loaded = None
        self.model_state = "loading"
        self.model_text = f"loading {short_name(name)} in the background…"
        self.adapter_names = ()
        self._load_model(adapters={})

    def action_load_model(self) -> None:
        why = f"The model did not load: {tui_message(self.model_text)}" \
            if self.model_state == "failed" else ""

        def chosen(name: str | None) -> None:
            if name:
                self.load_model_named(name)

        self.push_screen(LoadModelScreen(self.model_name, why), chosen)

    def on_bridge_finished(self, message: Bridge.Finished) -> None:
        if message.group == MODEL_GROUP:
            self.loaded, errors = message.result
            memory = getattr(self.loaded, "memory_text", None)  # weights and peak memory
            self.model_text = short_description(self.loaded.describe(), self.model_name) + (
                f" · {memory()}" if memory else "")
            self.model_state = "ready"
            for note in getattr(self.loaded, "notes", ()):
                self.notify(note, title="Slow on this CPU", severity="warning", timeout=10)
            self.adapter_names = tuple(self.loaded.adapters)
            for error in errors:
                self.notify(tui_message(error), title="Adapter not loaded", severity="error",
                            timeout=10)
            pending, self._pending_adapters = self._pending_adapters, []
            for name, adapter_dir in pending:
                self.offer_adapter(name, adapter_dir)
        elif message.group.startswith("adapter-"):
            self.adapter_names = tuple(self.loaded.adapters)
            self.notify(f"Adapter {message.result!r} is ready: choose it in a Sample column's "
                        "model (F2).", title="Adapter attached")

    def on_bridge_failed(self, message: Bridge.Failed) -> None:
        if message.group == MODEL_GROUP:
            self.model_state = "failed"
            self.model_text = f"model not loaded: {tui_message(message.message)}"
            self.notify(f"{tui_message(message.message)}. Ctrl+L loads another model.",
                        title="Model failed to load", severity="error", timeout=15)
        else:
            self.notify(tui_message(message.message), title="Adapter not attached",
                        severity="error", timeout=10)

    # ----------------------------------------------------------------- actions

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        if self._help is None:  # built once (installed, so a pop keeps it): composing the
            self._help = HelpScreen()  # key tables is the costly part
            self.install_screen(self._help, name="help")
        self.push_screen("help")

    def action_press_key(self, key: str) -> None:
        """A click on a key in the key bar presses it."""
        self.simulate_key(key)

    async def action_quit(self) -> None:
        self.bridge.stop_all()
        self.exit()


def short_name(model: str) -> str:
    """A local model directory by its folder name; a hub id as it is."""
    path = Path(model).expanduser()
    return path.name if path.is_absolute() or path.exists() else model


def short_description(text: str, model: str) -> str:
    """``LoadedModel.describe()`` (``NAME (1.4M params, cpu, float32)``) with a local
    model directory shortened to its folder name."""
    name, sep, rest = text.partition(" (")
    return f"{short_name(name)}{sep}{rest}" if sep else short_name(text)


def make_app(*, model: str, adapters: dict[str, str] | None = None, device: str = "auto",
             dtype: str = "auto", runs_dir: str | Path = "runs",
             event_source: EventSource | None = None, threads: int | None = None,
             quantize: str = "none", compile: bool = False) -> GenlabApp:
    """Build the app (``genlab tui`` and the tests both come through here).

    Args:
        model: Base model: hub id or local directory (loaded in the background).
        adapters: Adapter name -> PEFT adapter directory, attached after the model loads.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        runs_dir: Where the Train screen writes runs and the Runs screen lists them.
        event_source: Where model work happens; default the real core (tests inject a fake).
        threads: CPU threads for the model (None: the physical cores).
        quantize: ``none``, ``int8`` (CPU) or ``8bit``/``4bit`` (CUDA), as ``genlab sample``.
        compile: Decode with a ``torch.compile``d step.
    """
    return GenlabApp(model=model, adapters=adapters, device=device, dtype=dtype,
                     runs_dir=runs_dir, event_source=event_source, threads=threads,
                     quantize=quantize, compile=compile)

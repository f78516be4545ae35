"""Config fields, CLI flags and TUI form fields stay in step: each knob is declared once.

A knob (``genlab.core.configs.knobs``) is the one source of a setting's type, range, help and
face hints; ``genlab train``/``sample``/``pretrain`` options and the TUI forms are generated
from it. These tests check the generated faces against the configs, and that a new knob needs
nothing but its declaration.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from genlab.cli import app
from genlab.cli.options import knob_command, knob_options, parse_knobs
from genlab.core.configs import (
    ConfigError,
    GenerationRequest,
    ModelShape,
    PretrainConfig,
    SamplingParams,
    TrainConfig,
    knob,
    knob_fields,
)
from genlab.core.configs.training import LORA
from genlab.tui.widgets.params_panel import FIELDS as SAMPLE_FIELDS
from genlab.tui.widgets.train_form import SECTIONS, form_sections


def _params(command: str) -> dict[str, object]:
    click_command = typer.main.get_command(app).commands[command]
    return {p.name: p for p in click_command.params}


def test_every_train_config_field_is_a_knob_with_a_flag_and_the_form_shows_the_tui_ones():
    params = _params("train")
    knobs = {kf.name: kf for kf in knob_fields(TrainConfig)}
    assert set(knobs) == {f.name for f in fields(TrainConfig)}
    for name, kf in knobs.items():
        if kf.knob.cli:
            assert kf.flag in params[name].opts, name
    form = {f.name for _, rows in SECTIONS for f in rows}
    assert form == {name for name, kf in knobs.items() if kf.knob.tui}
    assert {"lr", "rank", "alpha", "batch_size", "schedule", "warmup_steps"} <= form


def test_sampling_knobs_are_sample_flags_and_column_settings():
    params = _params("sample")
    for kf in knob_fields(SamplingParams):
        assert kf.flag in params[kf.name].opts, kf.name
    main = [kf.name for kf in knob_fields(SamplingParams) if kf.knob.grid and not kf.knob.advanced]
    advanced = [kf.name for kf in knob_fields(SamplingParams) if kf.knob.advanced]
    assert [f.name for f in SAMPLE_FIELDS] == [*main, "seed", *advanced]
    assert all(f.advanced for f in SAMPLE_FIELDS[len(main) + 1:])
    assert knob_fields(GenerationRequest)[0].name == "seed"


def test_pretrain_flags_come_from_its_configs():
    params = _params("pretrain")
    for cls in (PretrainConfig, ModelShape):
        for kf in knob_fields(cls):
            if kf.knob.cli:
                assert kf.flag in params[kf.name].opts, kf.name
    assert "Default: 0.0025." in params["lr"].help  # the pretraining default, not TrainConfig's


def test_help_shows_the_range_and_default_from_the_knob():
    rank = _params("train")["rank"]
    assert rank.help == "LoRA rank r. Range: an integer >= 1. Default: 8."
    top_p = _params("sample")["top_p"]
    assert "Range: in (0, 1] (1 = off). Default: 1.0." in top_p.help


@dataclass(frozen=True)
class Extended(TrainConfig):
    """TrainConfig plus one hypothetical knob: its declaration is the only edit."""

    lora_sparkle: int = knob(3, low=1, panel=LORA, metavar="N", tui=True,
                             intuition="how much sparkle the adapter gets")
    """A new knob."""


def test_a_new_knob_needs_only_its_declaration():
    options = {p.name: p for p in knob_options(Extended)}
    option = options["lora_sparkle"].default
    assert option.param_decls[0] == "--lora-sparkle"
    assert option.help == "A new knob. Range: an integer >= 1. Default: 3."
    assert parse_knobs(Extended, {"lora_sparkle": "5"}) == {"lora_sparkle": 5}
    with pytest.raises(ConfigError, match=r"lora_sparkle=0: must be an integer >= 1"):
        Extended(model="m", data="d", lora_sparkle=0)
    lora_rows = dict(form_sections(Extended))[LORA]
    assert "lora_sparkle" in [row.name for row in lora_rows]

    seen = {}
    demo = typer.Typer()

    @demo.command()
    @knob_command(knob_options(Extended, include=("lora_sparkle", "rank")))
    def run(knobs: dict) -> None:
        seen.update(knobs)

    result = CliRunner().invoke(demo, ["--lora-sparkle", "7"])
    assert result.exit_code == 0, result.output
    assert seen == {"lora_sparkle": "7", "rank": None}

"""Messages from the core, in the TUI's words: field labels and keys, not flags or field names."""

from __future__ import annotations

import re

import pytest

from genlab.core.configs import ConfigError, TrainConfig
from genlab.core.configs.knobs import knob_fields
from genlab.tui.wording import config_message, model_not_ready, tui_message


@pytest.mark.parametrize("core, tui", [
    ("--seq-len 256: the model handles at most 128 positions; use --seq-len 128 or less",
     '"seq len" 256: the model handles at most 128 positions; use "seq len" 128 or less'),
    ("stopped at step 20 of 40; resume with --resume runs/x", "stopped at step 20 of 40; F6 "
     "resumes it"),
    ("loss became nan at step 3 (lr 1); try a lower --lr, e.g. 0.1",
     'loss became nan at step 3 (lr 1); try a lower "lr", e.g. 0.1'),
    ("--patience 3: early stopping needs eval data; give --eval-data or --eval-split > 0",
     '"patience" 3: early stopping needs eval data; give "eval data" or "eval split" > 0'),
    ("--prompt-field and --completion-field go together: pass both",
     '"prompt field" and "completion" go together: pass both'),
])
def test_core_messages_are_rewritten(core, tui):
    assert tui_message(core) == tui


def test_no_knob_flag_survives():
    flags = [kf.flag for kf in knob_fields(TrainConfig) if kf.knob.tui]
    text = tui_message("; ".join(f"{flag} 1: bad" for flag in flags))
    assert not re.search(r"--[a-z]", text), text


def test_config_errors_name_the_label_and_say_what_was_typed():
    assert config_message(ConfigError("top_k", "x", "an integer >= 0")) == \
        '"top-k": must be an integer >= 0 (got \'x\')'
    assert config_message(ConfigError("data", "", "a data file")) == '"data": required: a data file'
    assert config_message(ConfigError("dropout", 1.5, "in [0, 1)")) == \
        '"dropout": must be in [0, 1) (got 1.5)'


def test_a_failed_model_says_how_to_load_another():
    assert "Ctrl+L loads another model" in model_not_ready("failed", "model not loaded: x")
    assert "still loading" in model_not_ready("loading", "")

"""Typed, frozen, validated configs: the bottom layer every face and core package builds on.

Each config validates itself once in ``__post_init__`` and raises ``ConfigError`` naming the
field, the bad value and the valid range; faces translate the field name into their own
vocabulary (``top_p`` -> ``--top-p`` for the CLI, ``base.top_p`` in a spec file). Every
user-facing field is a knob (``configs.knobs``) whose declaration is the one source of its type,
range, help and face hints. Standard library only, so the CLI can read it at ``--help`` time.
"""

from genlab.core.configs.knobs import ConfigError, Knob, KnobField, knob, knob_fields
from genlab.core.configs.lr_find import LrFindConfig
from genlab.core.configs.pretrain import ModelShape, PretrainConfig
from genlab.core.configs.sampling import SAMPLING_FIELDS, GenerationRequest, SamplingParams
from genlab.core.configs.training import (
    LR_SCALINGS,
    OPTIMIZERS,
    SCHEDULES,
    TRAIN_METHODS,
    TrainConfig,
)

__all__ = [
    "LR_SCALINGS", "OPTIMIZERS", "SAMPLING_FIELDS", "SCHEDULES", "TRAIN_METHODS", "ConfigError",
    "GenerationRequest", "Knob", "KnobField", "LrFindConfig", "ModelShape", "PretrainConfig",
    "SamplingParams",
    "TrainConfig", "knob", "knob_fields",
]

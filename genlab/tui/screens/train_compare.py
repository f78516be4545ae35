"""Train side by side: the form's configs (A, B, C) as one small sweep, and their legends.

Owns turning two or three ``TrainConfig`` s into a sweep spec that ``genlab sweep`` would run:
the fields they share become ``base``, the fields that differ become one bundle dimension
``config`` with a choice per config, labelled ``A lr=0.0002`` (the legend of its curves), run
as a grid. So a comparison on the Train screen is an ordinary sweep output directory
(``results.jsonl``, ``trials/<n>/`` run directories, a report), resumable with F6.
"""

from __future__ import annotations

from typing import Any

from genlab.core.configs import TrainConfig
from genlab.core.specs.loader import load_spec

LETTERS = "ABC"
NOT_SWEPT = ("model", "name", "save_every")
"""Fields a comparison does not put in the spec: the model is the spec's, trials are named
by the sweep, and trials write no periodic checkpoints (a stopped trial runs again)."""


def short_value(value: Any) -> str:
    """``0.0002``, ``cosine``, ``8`` (lists joined by commas)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(short_value(v) for v in value)
    return str(value)


def differing_fields(configs: list[TrainConfig]) -> list[str]:
    """The fields whose values are not the same in every config (form order)."""
    dicts = [c.to_dict() for c in configs]
    return [k for k in dicts[0] if k not in ("name",)
            and any(d[k] != dicts[0][k] for d in dicts[1:])]


def legends(configs: list[TrainConfig]) -> list[str]:
    """``A lr=0.0002`` per config: its letter and the values that set it apart."""
    differ = differing_fields(configs)
    out = []
    for letter, config in zip(LETTERS, configs, strict=False):
        data = config.to_dict()
        parts = [f"{name}={short_value(data[name])}" for name in differ]
        out.append(" ".join([letter, *parts]))
    return out


def compare_spec(configs: list[TrainConfig], name: str) -> Any:
    """The sweep spec running ``configs`` side by side (validated like a spec file).

    Raises:
        SpecError: The configs cannot share a sweep (e.g. different models); one line.
        ValueError: The configs do not differ at all.
    """
    differ = differing_fields(configs)
    if "model" in differ:
        raise ValueError("the configs train different models; a comparison trains one model "
                         "(set the same model in each)")
    differ = [k for k in differ if k not in NOT_SWEPT]
    if not differ:
        raise ValueError("the configs are the same: change a field in B (Ctrl+N made it a "
                         "copy of A), e.g. its lr")
    # base: config A whole (a bundle choice overrides the fields it sets, data included)
    base = {k: v for k, v in configs[0].to_dict().items() if k not in NOT_SWEPT}
    choices = []
    for label, config in zip(legends(configs), configs, strict=True):
        data = config.to_dict()
        choices.append({"label": label, **{k: data[k] for k in differ}})
    has_eval = all(c.eval_data or c.eval_split > 0 for c in configs)
    objective = "best_eval_loss" if has_eval else "final_train_loss"
    mapping = {"kind": "sweep", "name": name, "model": configs[0].model,
               "description": "Train screen: configs side by side", "base": base,
               "search": {"config": {"choices": choices}}, "method": "grid",
               "objective": objective}
    return load_spec(mapping)

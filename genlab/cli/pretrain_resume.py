"""``genlab pretrain --resume DIR``: the stored config of a pretraining, with the few flags a
resumed run may change (``--time-limit``, which then counts from now, and ``--decay-fraction``).

Every check runs before anything is touched: the directory must be a genlab pretraining that
has not finished, and no other flag may be given (the stored settings are the run's).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from genlab.cli import common
from genlab.cli.common import UsageError
from genlab.core.configs import PretrainConfig

RESUME_OVERRIDES = frozenset({"time_limit", "decay_fraction"})
FLAGS = {"seq_len": "--context", "time_limit_s": "--time-limit",
         "sample_prompts": "--sample-prompt"}


def resumed_config(resume_dir: str, out_dir: str | None, fields: dict[str, Any]
                   ) -> tuple[PretrainConfig, Path]:
    """The stored config of ``resume_dir`` with the allowed overrides applied."""
    # torch-free --help: the pretraining layout loads only when resuming
    from genlab.core.pretrain.setup import CONFIG_FILE, PRETRAIN_FILE

    path = Path(resume_dir).expanduser()
    if out_dir is not None and Path(out_dir).resolve() != path.resolve():
        raise UsageError(f"--out {out_dir}: conflicts with --resume {resume_dir}; a resumed "
                         "run continues in its own directory, so drop --out")
    if not (path / CONFIG_FILE).is_file():
        raise UsageError(f"--resume {resume_dir}: no {CONFIG_FILE} there; pass a directory "
                         "written by genlab pretrain")
    if _finished_status(path / PRETRAIN_FILE) not in (None, "stopped"):
        raise UsageError(f"--resume {resume_dir}: this pretraining already finished (see "
                         f"{path / PRETRAIN_FILE}); start a new one with --out")
    extra = sorted(set(fields) - RESUME_OVERRIDES)
    if extra:
        raise UsageError(f"{common.flag_for(extra[0], FLAGS)}: cannot be changed when resuming; "
                         f"drop it (the settings stored in {path / CONFIG_FILE} are used)")
    try:
        config = PretrainConfig.from_dict(json.loads((path / CONFIG_FILE).read_text("utf-8")))
        if "time_limit" in fields and config.time_limit_s is None:
            raise UsageError(f"--time-limit: the run in {resume_dir} is not time-boxed; "
                             "resume it without --time-limit")
        config = replace(config, time_limit_s=fields.get("time_limit", config.time_limit_s),
                         decay_fraction=fields.get("decay_fraction", config.decay_fraction))
    except (OSError, ValueError, TypeError) as err:
        raise UsageError(f"--resume {resume_dir}: cannot use its {CONFIG_FILE} "
                         f"({common.first_line(err)})") from None
    return config, path


def _finished_status(record: Path) -> str | None:
    """Status in ``pretrain.json`` (None when absent): a ``stopped`` run may be resumed."""
    if not record.is_file():
        return None
    try:
        return str(json.loads(record.read_text(encoding="utf-8")).get("status"))
    except (OSError, ValueError):
        return "unreadable"

"""A pretraining output directory: its layout, and what is written before training starts.

``prepare_pretrain_dir`` reads the corpus (before anything is created, so unreadable data leaves
nothing behind), trains the tokenizer, saves the initial model directory, the config and the
held-out stories. Both the single-run pipeline and the time box start from it.

Held-out stories: the first ``eval_stories`` documents of ``eval_data``; without it, the
``eval_split`` of the corpus's documents (at most ``eval_stories``), picked by the same seeded
shuffle ``genlab train``'s ``--eval-split`` uses (``data.packing.split_documents``), so the
training run holds out exactly those documents and scores them during training, and the final
bits per byte scores them whole. ``eval_split.json`` records that split, for resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.core.configs import PretrainConfig
from genlab.core.data.packing import split_documents
from genlab.core.data.sources import load_documents
from genlab.core.io import clear_dir, write_json_atomic, write_marker, write_text_atomic
from genlab.core.pretrain.model import build_model, save_model_dir
from genlab.core.pretrain.stories import join_stories, read_stories
from genlab.core.pretrain.tokenizer import train_tokenizer

PRETRAIN_FILE = "pretrain.json"
CONFIG_FILE = "pretrain_config.json"
INIT_DIR = "init"
RUN_DIR = "run"
STABLE_DIR = "run-stable"
EVAL_FILE = "eval_stories.txt"
PRETRAIN_KIND = "pretrain"
"""The marker kind of a pretraining output directory."""
SPLIT_FILE = "eval_split.json"


@dataclass(frozen=True)
class EvalPlan:
    """What a pretraining run evaluates.

    Attributes:
        eval_file: ``eval_stories.txt`` when the stories come from ``eval_data`` (the training
            run evaluates that file); None otherwise.
        held_out_split: ``TrainConfig.eval_split`` holding the stories out of ``data``
            (0 with ``eval_data`` or without held-out text).
        stories: Held-out stories scored whole at the end (0 = nothing is scored).
        source: ``eval_data``, ``split`` or ``none``.
        reason: Why nothing is held out (``source == "none"``), for the summary.
    """

    eval_file: Path | None
    held_out_split: float
    stories: int
    source: str
    reason: str = ""

    def train_config(self, config: PretrainConfig, model_dir: Path) -> Any:
        """``config``'s ``TrainConfig`` evaluating what this plan holds out."""
        return config.train_config(model_dir, self.eval_file, self.held_out_split)


def held_out_documents(docs: list[Any], config: PretrainConfig) -> tuple[list[str], float, str]:
    """(held-out texts, ``TrainConfig.eval_split`` that holds out exactly them, why none).

    ``eval_split`` of the documents, at least 1 and at most ``eval_stories`` (and never all of
    them), picked by ``split_documents`` with the run's seed.
    """
    n = len(docs)
    if config.eval_split <= 0:
        return [], 0.0, "--eval-split 0"
    if n < 2:
        return [], 0.0, (f"the corpus has {n} document, too few to hold one out (documents "
                         "are split on --doc-separator)")
    k = min(config.eval_stories, n - 1, max(1, round(n * config.eval_split)))
    fraction = k / n
    _, held = split_documents(docs, fraction, int(config.training.get("seed", 0)))
    return [d.text.strip() for d in held], fraction, ""


def prepare_pretrain_dir(config: PretrainConfig, out: Path, replace: bool = False) -> EvalPlan:
    """Train the tokenizer, save the initial model dir, the config and the eval stories.

    Returns what the run evaluates. The corpus is read before ``out`` is created (or, with
    ``replace``, cleared), so unreadable data leaves nothing behind.
    """

    documents = load_documents(config.data, doc_separator=config.doc_separator)
    docs = [d.text for d in documents]
    if replace and out.is_dir():
        clear_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, PRETRAIN_KIND)
    write_json_atomic(out / CONFIG_FILE, config.to_dict())

    tokenizer = train_tokenizer(docs, config.vocab_size)
    s = config.shape
    model = build_model(tokenizer, layers=s.layers, hidden=s.hidden, heads=s.heads,
                        kv_heads=s.kv_heads, mlp=s.mlp, context=s.context,
                        tie_embeddings=config.tie_embeddings,
                        seed=int(config.training.get("seed", 0)))
    save_model_dir(model, tokenizer, out / INIT_DIR)
    if config.eval_data:
        stories = read_stories(config.eval_data, config.eval_stories,
                               separator=config.doc_separator)
        plan = EvalPlan(out / EVAL_FILE, 0.0, len(stories), "eval_data")
    else:
        stories, split, reason = held_out_documents(documents, config)
        plan = EvalPlan(None, split, len(stories), "split" if stories else "none", reason)
    if stories:
        write_text_atomic(out / EVAL_FILE, join_stories(stories, config.doc_separator))
    write_json_atomic(out / SPLIT_FILE, {
        "source": plan.source, "stories": plan.stories, "documents": len(docs),
        "train_eval_split": plan.held_out_split, "reason": plan.reason})
    return plan


def read_eval_plan(out: Path) -> EvalPlan:
    """The ``EvalPlan`` a pretraining directory was prepared with (for resumes)."""
    eval_file = out / EVAL_FILE if (out / EVAL_FILE).is_file() else None
    try:
        data = json.loads((out / SPLIT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # written before held-out splits existed
        return EvalPlan(eval_file, 0.0, 0, "eval_data" if eval_file else "none")
    source = str(data.get("source", "none"))
    return EvalPlan(eval_file if source == "eval_data" else None,
                    float(data.get("train_eval_split") or 0.0), int(data.get("stories") or 0),
                    source, str(data.get("reason", "")))


def read_pretrain_config(out_dir: str | Path) -> PretrainConfig:
    """The ``PretrainConfig`` stored in a ``genlab pretrain`` output directory."""
    return PretrainConfig.from_dict(json.loads((Path(out_dir) / CONFIG_FILE).read_text("utf-8")))


def is_legacy_pretrain_dir(path: str | Path) -> bool:
    """A pretraining output of a genlab without markers: its ``pretrain_config.json`` reads."""
    try:
        read_pretrain_config(path)
    except Exception:  # noqa: BLE001 - anything unreadable is not one
        return False
    return True



"""A pretraining output directory: its layout, and what is written before training starts.

``prepare_pretrain_dir`` reads the corpus (before anything is created, so unreadable data leaves
nothing behind), trains the tokenizer, saves the initial model directory, the config and the
held-out stories. Both the single-run pipeline and the time box start from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from genlab.core.configs import PretrainConfig
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



def prepare_pretrain_dir(config: PretrainConfig, out: Path, replace: bool = False
                         ) -> Path | None:
    """Train the tokenizer, save the initial model dir, the config and the eval stories.

    Returns the eval file (None without ``eval_data``). The corpus is read before ``out`` is
    created (or, with ``replace``, cleared), so unreadable data leaves nothing behind.
    """

    docs = [d.text for d in load_documents(config.data, doc_separator=config.doc_separator)]
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
    if not config.eval_data:
        return None
    stories = read_stories(config.eval_data, config.eval_stories,
                           separator=config.doc_separator)
    eval_file = out / EVAL_FILE
    write_text_atomic(eval_file, join_stories(stories, config.doc_separator))
    return eval_file


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



"""Write genlab's LoRA demo dataset: made-up facts about made-up story animals.

The data
    30 characters in the TinyStories register ("Pim the owl", "Zog the duck", ...), each with
    three facts drawn from fixed value lists: a colour ("Zog the duck is yellow."), a favourite
    food ("Zog the duck likes to eat soup.") and a home ("Zog the duck lives in a tent.").
    That is 90 facts. Names were checked to be absent from the TinyStories text, and every value
    is used about equally often (3-4 times per value), so guessing the most common value scores
    about 1/8 per question. Nothing is copied from any corpus: the names, animals, values and
    wordings below are all there is.

The files (prompt/completion JSON Lines, one question per row)
    ``train.jsonl``: 180 rows, every fact asked in two wordings, in a seeded shuffled order.
    ``eval.jsonl``: 90 rows, every fact asked once in a third wording, held out from training.
    A row is ``{"prompt": "Q: What color is Zog the duck?\\nA:", "completion": " Zog the duck
    is yellow.", "character": "Zog the duck", "attribute": "color", "value": "yellow"}``.
    Train with ``--data demo/facts/train.jsonl --eval-data demo/facts/eval.jsonl
    --prompt-field prompt --completion-field completion``; the loss falls on the answer only.

    Eval asks the *same* facts in a new wording rather than holding out facts, because the facts
    are arbitrary: no model can infer an unseen one. What eval measures is whether the adapter
    learned the fact or only the string of the question (on the eval wording the adapter has to
    transfer; on the train wordings it only has to recall).

The measure (``demo/measure.py``)
    Greedy answers are scored by exact match of their first sentence with the expected
    completion (case and spacing ignored): ``fact_accuracy``. A TinyStories base model scores
    about 0%: it has never seen the answer format nor the names. After a LoRA it should be
    high on the train wordings and above chance on the eval wording. ``score_answers`` also reports
    how many answers have the right form ("Zog the duck is <something>."), which is learned
    within a few steps, long before the facts: a format-only model scores about 1/8.

Run ``python demo/make_facts.py`` (default output ``demo/facts/``); the output is byte-identical
on every run and platform (seeded ``random.Random``, fixed key order, ``\\n`` line endings).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20240607
NAMES = (
    "Pim", "Zog", "Bix", "Tova", "Mako", "Nib", "Fenn", "Dov", "Wisp", "Tully",
    "Rumi", "Oona", "Quill", "Suki", "Bram", "Yoyo", "Hap", "Ezzy", "Vim", "Gilly",
    "Ulla", "Ibo", "Ansel", "Xan", "Rolo", "Mibs", "Tib", "Moxie", "Bop", "Lopo",
)
ANIMALS = (
    "dragon", "cat", "dog", "frog", "bunny", "bear", "duck", "fox", "mouse", "owl",
    "pig", "lion", "fish", "bird", "turtle",
)
VALUES = {
    "color": ("red", "blue", "green", "yellow", "pink", "purple", "orange", "white"),
    "food": ("apples", "cake", "carrots", "soup", "cookies", "bread", "cheese", "berries"),
    "home": ("a tree", "a cave", "a boat", "a castle", "a barn", "a garden", "a tent", "a shoe"),
}
ANSWERS = {
    "color": "{c} is {v}.",
    "food": "{c} likes to eat {v}.",
    "home": "{c} lives in {v}.",
}
TRAIN_QUESTIONS = {
    "color": ("What color is {c}?", "Tell me the color of {c}."),
    "food": ("What does {c} like to eat?", "What food does {c} like best?"),
    "home": ("Where does {c} live?", "Where is the home of {c}?"),
}
EVAL_QUESTIONS = {
    "color": "Do you know what color {c} is?",
    "food": "What is the favorite food of {c}?",
    "home": "Can you tell me where {c} lives?",
}
PROMPT = "Q: {question}\nA:"


def make_facts(seed: int = SEED) -> list[dict[str, str]]:
    """The fact table: one dict per (character, attribute) with ``character``/``attribute``/
    ``value``, in character order then attribute order."""
    rng = random.Random(seed)
    characters = [f"{name} the {rng.choice(ANIMALS)}" for name in NAMES]
    facts = []
    columns = {}
    for attribute, values in VALUES.items():
        # Balanced: each value used floor or ceil of len(NAMES) / len(values) times.
        pool = [values[i % len(values)] for i in range(len(NAMES))]
        rng.shuffle(pool)
        columns[attribute] = pool
    for i, character in enumerate(characters):
        for attribute in VALUES:
            facts.append({"character": character, "attribute": attribute,
                          "value": columns[attribute][i]})
    return facts


def make_row(fact: dict[str, str], question: str) -> dict[str, str]:
    """One prompt/completion row asking ``fact`` with the ``question`` template."""
    c, v = fact["character"], fact["value"]
    return {
        "prompt": PROMPT.format(question=question.format(c=c)),
        "completion": " " + ANSWERS[fact["attribute"]].format(c=c, v=v),
        "character": c,
        "attribute": fact["attribute"],
        "value": v,
    }


def make_splits(seed: int = SEED) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train rows, eval rows): two train wordings per fact, shuffled; one eval wording each."""
    facts = make_facts(seed)
    train = [make_row(f, q) for f in facts for q in TRAIN_QUESTIONS[f["attribute"]]]
    random.Random(seed + 1).shuffle(train)
    evals = [make_row(f, EVAL_QUESTIONS[f["attribute"]]) for f in facts]
    return train, evals


def to_jsonl(rows: list[dict[str, str]]) -> bytes:
    """Rows as UTF-8 JSON Lines, keys in insertion order, ``\\n`` after every row."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def write_dataset(out_dir: str | Path, seed: int = SEED) -> list[Path]:
    """Write ``train.jsonl`` and ``eval.jsonl`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, evals = make_splits(seed)
    paths = []
    for name, rows in (("train.jsonl", train), ("eval.jsonl", evals)):
        path = out / name
        path.write_bytes(to_jsonl(rows))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python demo/make_facts.py [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "facts"),
                        help="output directory (default: demo/facts next to this script)")
    args = parser.parse_args(argv)
    for path in write_dataset(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Score a model's answers to the demo fact questions (see ``demo/make_facts.py``).

One measure shared by the tests, the README and anyone comparing adapters: generate greedily
from each row's ``prompt``, pass the generated text (without the prompt) here.

* ``fact_accuracy``: share of answers whose first sentence equals the expected completion,
  ignoring case and runs of whitespace. A TinyStories base model scores about 0.
* ``score_answers``: that accuracy plus ``well_formed``, the share of answers shaped like the
  expected one with any value ("Zog the duck is <anything>."). The form is learned in a few
  steps; the facts take longer, and a form-only model scores about 1/8 accuracy.

Pure functions of strings, no genlab or torch imports, so they run anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class FactScore:
    """How a set of answers scores against the facts.

    Attributes:
        accuracy: Share of answers whose first sentence is exactly the expected one.
        well_formed: Share whose first sentence has the expected shape with any value.
        total: Number of answers scored.
    """

    accuracy: float
    well_formed: float
    total: int


def first_sentence(text: str) -> str:
    """The answer's first line up to and including its first period, normalised.

    Normalised means lower-cased with whitespace runs collapsed to one space and stripped.
    """
    line = text.strip().split("\n", 1)[0]
    end = line.find(".")
    if end >= 0:
        line = line[: end + 1]
    return _SPACES.sub(" ", line).strip().lower()


def is_correct(answer: str, expected: str) -> bool:
    """True when the first sentence of ``answer`` is the expected completion."""
    return first_sentence(answer) == first_sentence(expected)


def fact_accuracy(answers: Sequence[str], expected: Sequence[str]) -> float:
    """Share of ``answers`` whose first sentence equals the matching ``expected`` completion.

    Raises:
        ValueError: The two sequences differ in length or are empty.
    """
    if len(answers) != len(expected) or not answers:
        raise ValueError(f"need one answer per expected completion (got {len(answers)} answers "
                         f"for {len(expected)} completions)")
    return sum(is_correct(a, e) for a, e in zip(answers, expected, strict=True)) / len(answers)


def is_well_formed(answer: str, expected: str, value: str) -> bool:
    """True when ``answer`` reads like ``expected`` with ``value`` replaced by any words."""
    target = first_sentence(expected)
    value = first_sentence(value)
    at = target.rfind(value)
    if at < 0:
        return False
    prefix, suffix = target[:at], target[at + len(value):]
    got = first_sentence(answer)
    return (got.startswith(prefix) and got.endswith(suffix)
            and len(got) > len(prefix) + len(suffix))


def score_answers(rows: Sequence[dict[str, str]], answers: Sequence[str]) -> FactScore:
    """Score ``answers`` against demo rows (each with ``completion`` and ``value``)."""
    if len(rows) != len(answers) or not rows:
        raise ValueError(f"need one answer per row (got {len(answers)} answers for "
                         f"{len(rows)} rows)")
    expected = [r["completion"] for r in rows]
    formed = sum(is_well_formed(a, r["completion"], r["value"])
                 for a, r in zip(answers, rows, strict=True))
    return FactScore(fact_accuracy(answers, expected), formed / len(rows), len(rows))


def load_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a demo ``train.jsonl`` / ``eval.jsonl`` file."""
    text = Path(path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]

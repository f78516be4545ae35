"""The LoRA demo end to end: score the base model, train a LoRA on the fact set, score again.

Before and after are measured the same way (``demo/measure.py``): greedy answers to every
question of a demo file, exact match of the first sentence. The base model and the adapter
answer in ONE batch through genlab's sampling engine, so the comparison is the adapter alone.

    python demo/run_demo.py                       # on the shipped default model
    python demo/run_demo.py --model DIR --max-steps 150 --out runs/demo-facts

It prints one JSON object (accuracy and well-formed share on the train and eval wordings,
before and after, plus training steps, wall time and the run directory) and a few example
answers on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import load_rows, score_answers  # noqa: E402


def answer_all(loaded, rows: list[dict], adapter: str | None) -> list[str]:
    """Greedy answers (first line) of ``loaded`` (or its ``adapter``) to every row's prompt."""
    from genlab.core.configs import GenerationRequest, SamplingParams
    from genlab.core.generation.decode import generate

    params = SamplingParams(temperature=0.0, max_new_tokens=16, stop=("\n",))
    requests = [GenerationRequest(r["prompt"], params, seed=0, adapter=adapter) for r in rows]
    return [row.text for row in generate(loaded, requests, batch_size=64)]


def score(loaded, rows: list[dict], adapter: str | None) -> dict[str, float]:
    """Accuracy and well-formed share of greedy answers, as a JSON-able dict."""
    result = score_answers(rows, answer_all(loaded, rows, adapter))
    return {"accuracy": round(result.accuracy, 4), "well_formed": round(result.well_formed, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Base model (default: the shipped one).")
    parser.add_argument("--out", default="runs/demo-facts", help="Run directory to write.")
    parser.add_argument("--max-steps", type=int, default=240)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=64.0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter

    from genlab.core.configs import TrainConfig
    from genlab.core.modeling.loading import load_model
    from genlab.core.training.train import train

    model = args.model or _default_model()
    train_rows = load_rows(HERE / "facts" / "train.jsonl")
    eval_rows = load_rows(HERE / "facts" / "eval.jsonl")
    config = TrainConfig(
        model=model, data=str(HERE / "facts" / "train.jsonl"),
        eval_data=str(HERE / "facts" / "eval.jsonl"), prompt_field="prompt",
        completion_field="completion", seq_len=64, rank=args.rank, alpha=args.alpha,
        dropout=0.0, lr=args.lr, schedule="cosine", warmup_steps=10,
        batch_size=args.batch_size, max_steps=args.max_steps, eval_every=40,
        sample_prompts=(eval_rows[0]["prompt"],), sample_max_new_tokens=16, name="demo-facts",
    )
    start = time.perf_counter()
    finished = train(config, out_dir=args.out)
    wall = time.perf_counter() - start

    loaded = load_model(model, adapters={"facts": str(Path(finished.run_dir) / "adapter")})
    report = {
        "model": model,
        "run_dir": finished.run_dir,
        "status": finished.status,
        "steps": finished.steps,
        "train_wall_s": round(wall, 1),
        "best_eval_loss": finished.best_eval_loss,
        "before": {"train_wording": score(loaded, train_rows, None),
                   "eval_wording": score(loaded, eval_rows, None)},
        "after": {"train_wording": score(loaded, train_rows, "facts"),
                  "eval_wording": score(loaded, eval_rows, "facts")},
    }
    before = answer_all(loaded, eval_rows[:3], None)
    after = answer_all(loaded, eval_rows[:3], "facts")
    for row, b, a in zip(eval_rows[:3], before, after, strict=True):
        print(f"{row['prompt']!r}\n  base:    {b.strip()!r}\n  adapter: {a.strip()!r}",
              file=sys.stderr)
    print(json.dumps(report, indent=2))


def _default_model() -> str:
    from genlab import assets

    return assets.resolve_model(None)


if __name__ == "__main__":
    main()

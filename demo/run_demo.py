"""The LoRA demo end to end: train a LoRA on the fact set, then score base and adapter.

Before and after are measured the same way (``demo/measure.py``): greedy answers to every
question of the train and eval files, exact match of the first sentence. Base model and adapter
answer in ONE batch through genlab's sampling engine, so the comparison is the adapter alone.

    python demo/run_demo.py                  # on the shipped model, into runs/demo-facts
    python demo/run_demo.py --fresh          # train again from scratch
    python demo/run_demo.py --model DIR --max-steps 150 --out runs/demo-mine

It trains with one torch thread (``--threads``): the shipped model is so small that a second
thread mostly waits (measured under load: 49 s of training with one thread, 373 s with torch's
default two). Training shows ``genlab train``'s own progress on stderr; stdout gets the
README's table, the training time and three example answers (``--json``: one JSON object
instead). A rerun reuses a finished run in ``--out`` (and continues a stopped one);
``--fresh`` deletes that run first, but only a run directory genlab wrote. Ctrl-C stops
training with a checkpoint (rerun to continue).
Exit codes: 0 done, 1 training failed or diverged, 2 bad input, 130 stopped.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import load_rows, score_answers  # noqa: E402

TRAIN, EVAL = HERE / "facts" / "train.jsonl", HERE / "facts" / "eval.jsonl"
FINISHED = ("completed", "early-stopped")
RUN_ENTRIES = {"config.json", "metrics.jsonl", "samples.jsonl", "summary.json", "adapter",
               "model", "checkpoints", ".genlab.json"}
"""What a genlab run directory holds (plus ``.tmp-*`` leftovers); ``--fresh`` deletes nothing
else."""
SAME_RUN_IGNORES = {"model", "data", "eval_data", "target_modules"}  # resolved when stored


class DemoError(Exception):
    """One line for the user, and the exit code."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="Base model (default: the shipped one).")
    parser.add_argument("--out", default="runs/demo-facts", help="Run directory.")
    parser.add_argument("--fresh", action="store_true",
                        help="Delete the run in --out (if genlab wrote it) and train again.")
    parser.add_argument("--max-steps", type=int, default=240)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=64.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1,
                        help="Torch threads (default 1: at this model size a second thread "
                             "only adds waiting, and on a shared CPU a lot of it).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    return parser.parse_args(argv)


def demo_config(args: argparse.Namespace, model: str) -> Any:
    """The ``genlab train`` settings of the demo (see the README's command)."""
    from genlab.core.configs import ConfigError, TrainConfig

    eval_rows = load_rows(EVAL)
    try:
        return TrainConfig(
            model=model, data=str(TRAIN), eval_data=str(EVAL), prompt_field="prompt",
            completion_field="completion", seq_len=64, rank=args.rank, alpha=args.alpha,
            dropout=0.0, lr=args.lr, schedule="cosine", warmup_steps=min(10, args.max_steps // 10),
            batch_size=args.batch_size, max_steps=args.max_steps, eval_every=40,
            sample_prompts=(eval_rows[0]["prompt"],), sample_max_new_tokens=16,
            name="demo-facts")
    except ConfigError as err:
        raise DemoError(str(err).splitlines()[0]) from None


# ----------------------------------------------------------------------------- the run dir


def genlab_wrote(out: Path) -> bool:
    """True when ``out`` is a run directory genlab wrote and holds nothing else: its marker
    says so, or (older runs) its config.json is a genlab run config and every entry is one a
    run directory has."""
    from genlab.core.training import run_dir as runs

    marker = out / ".genlab.json"
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("kind") == "run":
            return True
    except (OSError, ValueError, AttributeError):
        pass
    try:
        runs.read_config(out)
    except Exception:  # noqa: BLE001 - anything unreadable is not ours to delete
        return False
    return all(p.name in RUN_ENTRIES or p.name.startswith(".tmp-") for p in out.iterdir())


def plan(out: Path, config: Any, fresh: bool) -> str:
    """``train`` (a new run), ``resume`` (a stopped one) or ``reuse`` (a finished one)."""
    from genlab.core.training import run_dir as runs

    if out.exists() and not out.is_dir():
        raise DemoError(f"--out {out}: is a file; choose a directory")
    if not out.exists() or not any(out.iterdir()):
        return "train"
    if not genlab_wrote(out):
        raise DemoError(f"--out {out}: holds files genlab did not write; choose another "
                        "--out (the demo deletes nothing it did not write)")
    if fresh:
        shutil.rmtree(out)
        return "train"
    differ = _differences(runs.read_config(out), config)
    if differ:
        raise DemoError(f"--out {out}: holds a run with other settings ({', '.join(differ)}); "
                        "pass --fresh to replace it, or another --out")
    status = (runs.read_summary(out) or {}).get("status", "stopped")
    if status in FINISHED and (out / "adapter").is_dir():
        return "reuse"
    if status in FINISHED:
        raise DemoError(f"--out {out}: the finished run there has no adapter/ any more; pass "
                        "--fresh to train again")
    if status == "stopped":
        return "resume"
    raise DemoError(f"--out {out}: the run there {status}; pass --fresh to train again", 1)


def _differences(stored: Any, wanted: Any) -> list[str]:
    mine, theirs = wanted.to_dict(), stored.to_dict()
    differ = [f"{k} {theirs.get(k)} vs {mine[k]}" for k in mine
              if k not in SAME_RUN_IGNORES and mine[k] != theirs.get(k)]
    if Path(stored.model).resolve() != Path(wanted.model).resolve():
        differ.insert(0, f"model {stored.model}")
    return differ


# ----------------------------------------------------------------------------- training


def train(config: Any, out: Path, mode: str) -> Any:
    """Train (or continue) with ``genlab train``'s progress on stderr; the ``RunFinished``."""
    from rich.console import Console

    from genlab.cli import common
    from genlab.cli.train_cmd import known_error
    from genlab.cli.train_progress import TrainProgress
    from genlab.core.events import RunFinished, StopToken
    from genlab.core.training.train import iter_train

    stop, finished = StopToken(), None
    progress = TrainProgress(Console(stderr=True))
    resume = out if mode == "resume" else None
    try:
        with common.StopOnSignals(stop, on_first=progress.stopping), progress:
            for event in iter_train(config, out_dir=None if resume else out, stop_token=stop,
                                    resume_from=resume):
                progress.handle(event)
                finished = event if isinstance(event, RunFinished) else finished
    except KeyboardInterrupt:
        raise DemoError(f"aborted; rerun to continue from the last checkpoint in {out}",
                        common.EXIT_STOPPED) from None
    except Exception as err:
        known = known_error(err, progress.step)
        if known is None:
            raise
        raise DemoError(*known) from None
    if finished is None or finished.status == "stopped":
        raise DemoError(f"stopped; rerun python demo/run_demo.py --out {out} to continue",
                        common.EXIT_STOPPED)
    if finished.status not in FINISHED:
        raise DemoError(f"training {finished.status}: {finished.message}; the table needs a "
                        "trained adapter (try a lower --lr, then --fresh)", 1)
    return finished


# ----------------------------------------------------------------------------- scoring


def answer_all(loaded: Any, rows: list[dict], adapters: list[str | None]) -> list[list[str]]:
    """Greedy first-line answers to every row, per adapter (None = base), in one batch."""
    from genlab.core.configs import GenerationRequest, SamplingParams
    from genlab.core.generation.decode import generate

    params = SamplingParams(temperature=0.0, max_new_tokens=16, stop=("\n",))
    requests = [GenerationRequest(r["prompt"], params, seed=0, adapter=a)
                for a in adapters for r in rows]
    texts = [row.text for row in generate(loaded, requests, batch_size=64)]
    return [texts[i * len(rows):(i + 1) * len(rows)] for i in range(len(adapters))]


def score(model: str, adapter_dir: Path) -> dict[str, Any]:
    """Accuracy and well-formed share, base and adapter, train and eval wordings."""
    from genlab.core.modeling.loading import ModelLoadError, load_model

    train_rows, eval_rows = load_rows(TRAIN), load_rows(EVAL)
    try:
        loaded = load_model(model, adapters={"facts": str(adapter_dir)})
    except ModelLoadError as err:
        raise DemoError(f"{' '.join(str(err).split())}; pass --fresh to train again") from None
    base, tuned = answer_all(loaded, train_rows + eval_rows, [None, "facts"])
    n = len(train_rows)
    result: dict[str, Any] = {"examples": [
        {"prompt": r["prompt"], "base": b.strip(), "adapter": a.strip()}
        for r, b, a in zip(eval_rows[:3], base[n:n + 3], tuned[n:n + 3], strict=True)]}
    for name, answers in (("before", base), ("after", tuned)):
        train, evals = score_answers(train_rows, answers[:n]), score_answers(eval_rows,
                                                                             answers[n:])
        result[name] = {"train_wording": _rounded(train), "eval_wording": _rounded(evals)}
    result["rows"] = {"train": len(train_rows), "eval": len(eval_rows)}
    return result


def _rounded(s: Any) -> dict[str, float]:
    return {"accuracy": round(s.accuracy, 4), "well_formed": round(s.well_formed, 4)}


# ----------------------------------------------------------------------------- output


def table_lines(report: dict[str, Any]) -> list[str]:
    """The README's table: exact answers and well-formed answers, base vs LoRA."""
    b, a, rows = report["before"], report["after"], report["rows"]

    def pct(value: float) -> str:
        return f"{100 * value:.1f} %"

    return [
        "| | base model | with the LoRA |",
        "|---|---|---|",
        f"| exact answers, trained wordings ({rows['train']}) | "
        f"{pct(b['train_wording']['accuracy'])} | {pct(a['train_wording']['accuracy'])} |",
        f"| exact answers, unseen wording ({rows['eval']}) | "
        f"{pct(b['eval_wording']['accuracy'])} | {pct(a['eval_wording']['accuracy'])} |",
        f"| answers in the right form, unseen wording | "
        f"{pct(b['eval_wording']['well_formed'])} | {pct(a['eval_wording']['well_formed'])} |",
    ]


def text_report(report: dict[str, Any]) -> str:
    """What ``main`` prints: the table, how the run went, example answers, a try-it line."""
    run = report["run"]
    best = run["best_eval_loss"]
    facts = (f"{run['steps']} steps, best eval loss "
             f"{best:.3f}" if best is not None else f"{run['steps']} steps")
    if run["reused"]:
        done = (f"Reused the finished run in {run['run_dir']} (trained in "
                f"{run['train_wall_s']:.0f} s, {facts}; --fresh trains again); scoring took "
                f"{report['script_s']:.0f} s.")
    else:
        done = (f"Training took {run['train_wall_s']:.0f} s ({facts}); the whole script "
                f"{report['script_s']:.0f} s.")
    lines = [*table_lines(report), "", done, "", "Before and after, on the unseen wording:"]
    for ex in report["examples"]:
        lines += [ex["prompt"].split("\n")[0], f"  base:    {ex['base']}",
                  f"  adapter: {ex['adapter']}"]
    prompt = report["examples"][0]["prompt"].replace("\n", "\\n")
    lines += ["", "See it side by side: genlab sample --adapter facts="
              f"{shlex.quote(run['run_dir'] + '/adapter')} -t 0 --prompt {shlex.quote(prompt)} "
              "--stop '\\n'"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train or reuse, then score; the report as a dict."""
    import torch

    from genlab import assets
    from genlab.core.training import run_dir as runs

    start = time.perf_counter()
    if args.threads < 1:
        raise DemoError(f"--threads {args.threads}: must be an integer >= 1")
    torch.set_num_threads(args.threads)
    try:
        model = args.model or assets.resolve_model(None)
    except assets.ModelNotFound as err:
        raise DemoError(f"--model is required: {err}") from None
    config = demo_config(args, model)
    out = Path(args.out)
    mode = plan(out, config, args.fresh)
    if mode == "reuse":
        print(f"{out}: reusing the finished demo run (pass --fresh to train again)",
              file=sys.stderr)
    else:
        train(config, out, mode)
    summary = runs.read_summary(out) or {}
    print("scoring every question, base model and adapter in one batch ...", file=sys.stderr)
    report = score(model, out / "adapter")
    report["model"] = model
    report["run"] = {"run_dir": str(out), "reused": mode == "reuse",
                     "steps": summary.get("steps"), "status": summary.get("status"),
                     "train_wall_s": round(float(summary.get("wall_time_s") or 0.0), 1),
                     "best_eval_loss": summary.get("best_eval_loss")}
    report["script_s"] = round(time.perf_counter() - start, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter
    try:
        report = run(args)
    except DemoError as err:
        print(f"run_demo: error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("run_demo: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(report, indent=2) if args.json else text_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

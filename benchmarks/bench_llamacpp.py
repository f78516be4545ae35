"""genlab against llama.cpp on identical weights: the same random-init model as GGUF F16 / Q8_0.

Needs the ``llamacpp`` extra (``pip install 'genlab[llamacpp]'``: llama-cpp-python and gguf;
llama-cpp-python compiles llama.cpp from source, so it is not part of CI). In one run:

1. builds the ``smollm2-135m-shape`` preset (random init, std 0.05 as in ``bench_dtypes.py``)
   and writes it as GGUF F16 and Q8_0 with genlab's own writer (``tests/gguf_writer.py``: the
   ``gguf`` package's ``GGUFWriter``, llama.cpp's tensor names and its q/k row permutation);
2. checks the conversion: llama.cpp's teacher-forced logits on a fixed sequence against
   genlab's float32 model (F16 must agree to well under 1 % relative RMS error; a missing q/k
   permutation gives ~8 %);
3. measures, taking turns within each repeat: llama.cpp single stream (T 0.8, top-k 40, the
   same prompt ids) at 1 and 2 threads, and genlab one setting (same sampling) at float16 and
   ``--quantize int8`` plus genlab's grid of 8 settings in one batch, at ``--genlab-threads``.

Reported per runner: tokens per CPU-second (``time.process_time``: every thread of this
process) and per wall-second, and the ratios the goals are stated in:

* genlab int8, one setting, vs llama.cpp Q8_0 single stream, 1 thread (goal: within 1.2x,
  i.e. ratio >= 0.83);
* genlab's grid of 8 (all rows' tokens) vs llama.cpp Q8_0 single stream (goal: >= 3x).

Peak memory of llama.cpp (each file, its own process, VmHWM) is printed beside genlab's from
``bench_dtypes.py``. The other cores' load during the run is printed: the machine is shared.

    PYTHONPATH=. python benchmarks/bench_llamacpp.py [--new-tokens 64] [--repeats 2]
        [--llama-threads 1,2] [--genlab-threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_dtypes import PRESET, QUALITY_STD, CpuLoad, measure
from bench_sampling import GRID, PROMPT
from presets import build_preset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from gguf_writer import write_llama_gguf  # noqa: E402 - genlab's GGUF writer (tests/)

SAMPLING = {"temperature": 0.8, "top_k": 40}
"""The issue's llama.cpp setting; top_p 1, min_p 0 and no penalties on both sides."""
FILES = ("F16", "Q8_0")
CHECK_TOKENS = 96
F16_MAX_REL_ERR = 0.01


def require_llama_cpp():
    try:
        import gguf  # noqa: F401
        import llama_cpp
    except ImportError as err:
        raise SystemExit(f"bench_llamacpp needs the llamacpp extra ({err.name} is missing): "
                         "pip install 'genlab[llamacpp]' (builds llama.cpp from source)") from None
    return llama_cpp


def export(model_dir: Path, out_dir: Path) -> dict[str, Path]:
    """The model as GGUF F16 and Q8_0 files (genlab's writer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return {qtype: write_llama_gguf(out_dir / f"model-{qtype}.gguf", model, tokenizer,
                                    qtype=qtype) for qtype in FILES}


def open_llama(path: Path, threads: int, logits_all: bool = False):
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=512, n_batch=512, n_threads=threads,
                 n_threads_batch=threads, seed=0, logits_all=logits_all, verbose=False)


def check_conversion(files: dict[str, Path], reference) -> dict:
    """Teacher-forced logits of each GGUF against genlab's float32 model."""
    import numpy as np
    import torch

    seq = torch.randint(3, 2048, (CHECK_TOKENS,), generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        want = reference.model(seq[None]).logits[0].float()
    out = {}
    for qtype, path in files.items():
        llm = open_llama(path, threads=1, logits_all=True)
        llm.eval(seq.tolist())
        got = torch.from_numpy(np.array(llm.scores[:CHECK_TOKENS], dtype=np.float32))
        llm.close()
        rel = ((got - want).pow(2).mean().sqrt() / want.std()).item()
        out[qtype] = {"rel_rms_err": round(rel, 5),
                      "top1_agree": round((got.argmax(-1) == want.argmax(-1)).float()
                                          .mean().item(), 4)}
        del llm
    if out["F16"]["rel_rms_err"] > F16_MAX_REL_ERR:
        raise SystemExit(f"conversion check failed: F16 logits differ from float32 by "
                         f"{out['F16']['rel_rms_err']:.2%} (relative RMS); the GGUF is wrong")
    return out


def llama_runner(llm, prompt_ids: list[int], new_tokens: int):
    def run() -> None:
        n = 0
        for _ in llm.generate(prompt_ids, reset=True, temp=SAMPLING["temperature"],
                              top_k=SAMPLING["top_k"], top_p=1.0, min_p=0.0,
                              repeat_penalty=1.0):
            n += 1
            if n == new_tokens:
                break
        assert n == new_tokens, n

    return run


def genlab_runner(loaded, rows: int, new_tokens: int):
    from genlab.core.configs import GenerationRequest, SamplingParams
    from genlab.core.generation.decode import generate

    if rows == 1:
        settings = [SamplingParams(**SAMPLING, max_new_tokens=new_tokens, ignore_eos=True)]
    else:
        settings = [SamplingParams(temperature=t, top_k=k, top_p=p, min_p=m,
                                   repetition_penalty=r, max_new_tokens=new_tokens,
                                   ignore_eos=True) for t, k, p, m, r in GRID[:rows]]
    requests = [GenerationRequest(PROMPT, s, seed=i, chat=False) for i, s in enumerate(settings)]
    return lambda: generate(loaded, requests)


PEAK_SCRIPT = """
import sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=512, n_threads=1, seed=0, verbose=False)
ids = [int(x) for x in sys.argv[2].split(",")]
for i, _ in enumerate(llm.generate(ids, temp=0.8, top_k=40, top_p=1.0, min_p=0.0)):
    if i + 1 == int(sys.argv[3]):
        break
print([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
"""


def llama_peak_mb(path: Path, prompt_ids: list[int], new_tokens: int) -> int:
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path),
                          ",".join(map(str, prompt_ids)), str(new_tokens)],
                         capture_output=True, text=True, check=True)
    return round(int(out.stdout.strip().splitlines()[-1]) / 1024)


def build_runners(files, models, prompt_ids, args) -> tuple[dict, dict, list]:
    """Every runner and its token count, llama.cpp and genlab in one dict (turn order), and
    the llama.cpp handles to close."""
    runners, tokens, handles = {}, {}, []
    for qtype, path in files.items():
        for threads in args.llama_threads:
            name = f"llama.cpp {qtype} {threads}t"
            handles.append(open_llama(path, threads))
            runners[name] = llama_runner(handles[-1], prompt_ids, args.new_tokens)
            tokens[name] = args.new_tokens
    for (fmt, threads), loaded in models.items():
        for rows in (1, len(GRID)):
            name = f"genlab {fmt} {'1 setting' if rows == 1 else f'grid of {rows}'} {threads}t"
            runners[name] = genlab_runner(loaded, rows, args.new_tokens)
            tokens[name] = rows * args.new_tokens
    return runners, tokens, handles


def ratios(per_cpu: dict[str, float], args) -> dict:
    """The goal ratios, on tokens per CPU-second."""
    q8, f16 = f"llama.cpp Q8_0 {args.llama_threads[0]}t", f"llama.cpp F16 {args.llama_threads[0]}t"
    t = args.genlab_threads[0]
    out = {}
    for fmt, ref in (("int8", q8), ("float16", f16)):
        single, grid = f"genlab {fmt} 1 setting {t}t", f"genlab {fmt} grid of {len(GRID)} {t}t"
        out[f"{fmt} 1 setting / {ref}"] = round(per_cpu[single] / per_cpu[ref], 3)
        out[f"{fmt} grid of {len(GRID)} / {ref}"] = round(per_cpu[grid] / per_cpu[ref], 3)
    out["goals"] = {f"int8 1 setting / {q8}": ">= 0.83 (within 1.2x)",
                    f"int8 grid of {len(GRID)} / {q8}": ">= 3"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--llama-threads", default="1,2", help="llama.cpp thread counts")
    ap.add_argument("--genlab-threads", default="1", help="genlab thread counts")
    args = ap.parse_args()
    args.llama_threads = [int(x) for x in args.llama_threads.split(",")]
    args.genlab_threads = [int(x) for x in args.genlab_threads.split(",")]
    llama_cpp = require_llama_cpp()

    from genlab.core.modeling.loading import load_model

    load = CpuLoad()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_preset(PRESET, Path(tmp) / PRESET, init_std=QUALITY_STD)
        files = export(model_dir, Path(tmp))
        reference = load_model(str(model_dir), device="cpu", threads=args.genlab_threads[0])
        report = {"model": f"random-init {PRESET} (init std {QUALITY_STD})",
                  "llama_cpp_python": llama_cpp.__version__,
                  "gguf_mb": {q: round(p.stat().st_size / 2**20) for q, p in files.items()},
                  "conversion_check": check_conversion(files, reference)}
        del reference
        models = {(fmt, t): load_model(str(model_dir), device="cpu",
                                       dtype="float16" if fmt == "float16" else "float32",
                                       quantize="int8" if fmt == "int8" else "none", threads=t)
                  for fmt in ("float16", "int8") for t in args.genlab_threads}
        first = next(iter(models.values()))
        prompt_ids = first.tokenizer(PROMPT)["input_ids"]
        runners, tokens, handles = build_runners(files, models, prompt_ids, args)
        times = measure(runners, args.repeats, warmups=runners)  # each warms up on a full run
        for handle in handles:  # before the interpreter shuts down under them
            handle.close()
        per_cpu = {n: tokens[n] / times[n]["cpu_s"] for n in runners}
        report["tokens_per_cpu_s"] = {n: round(v, 1) for n, v in per_cpu.items()}
        report["tokens_per_wall_s"] = {n: round(tokens[n] / times[n]["wall_s"], 1)
                                       for n in runners}
        report["ratios"] = ratios(per_cpu, args)
        report["llama_cpp_peak_mb"] = {q: llama_peak_mb(p, prompt_ids, args.new_tokens)
                                       for q, p in files.items()}
    report.update(new_tokens=args.new_tokens, repeats=args.repeats,
                  other_cores_busy=load.other_cores_busy(),
                  load_avg_1min=round(os.getloadavg()[0], 2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

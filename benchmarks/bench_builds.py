"""Two (or more) builds of llama-cpp-python side by side: the same GGUF, threads and measures, each
build in its own process, taken in turn for several rounds so a drift of the machine hits both.

    python benchmarks/bench_builds.py --build avx2= --build avx512=/path/to/site [--rounds 2]
                                      [--model qwen2.5-coder-1.5b] [--threads 2]

A build is NAME=DIR: DIR goes first on the child's PYTHONPATH (empty: the llama_cpp this Python
imports). A second build goes into its own folder, for instance an AVX-512 one:

    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \\
      -DGGML_AVX_VNNI=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX512_VBMI=ON" \\
      pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python -w wheel llama-cpp-python==0.3.36
    pip install --no-deps --target DIR wheel/llama_cpp_python-*.whl

(--no-cache-dir: pip's wheel cache does not look at CMAKE_ARGS, so it would hand back the build it
already holds.) The measures are bench_backends.py's for bbm's backend, fewer of them:
  first_question_s  the first question of a task: its ~2,000-token few-shot prompt evaluated
  greedy_tok_s      one stream, 5 greedy steps of a multistep-arithmetic trace (64 tokens at most each)
  samples8_tok_s    8 samples of one step at T=1 (one request, n=8), aggregate
  traces8_tok_s     8 traces decoded together (batch 8), aggregate
and whether the builds decode the same greedy steps (one stream, and the 8 traces): kernels compiled
for other instruction sets add up in another order, so greedy paths can part.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_backends import cpu_line, eight_samples, eight_traces, greedy_trace, questions  # noqa: E402  (benchmarks/ is the script's own folder)

RATES = ("first_question_s", "greedy_tok_s", "samples8_tok_s", "traces8_tok_s")


def measure(model: str, threads: int, cache_dir: str) -> dict:
    import llama_cpp

    from backtrack.lm.backends import LlamaOptions, load_llama
    from backtrack.lm.generator import StepRequest
    from bigbench_mistake.tasks import get_task

    spec = get_task("multistep_arithmetic")
    qs = questions("multistep_arithmetic", 12)
    out = {"llama_cpp": llama_cpp.__file__, "system_info": llama_cpp.llama_print_system_info().decode().strip()}
    gen = load_llama(model, cache_dir, LlamaOptions(threads=threads, n_ctx=16384, prefix_states=False))
    out["name"] = gen.name
    t0 = time.perf_counter()
    gen.generate_steps([StepRequest(spec.prompt(qs[0].input), max_tokens=1)])
    out["first_question_s"] = round(time.perf_counter() - t0, 2)
    out["prompt_tokens"] = len(gen.tokenize(spec.prompt(qs[0].input)))
    steps, _, out["greedy_tok_s"] = greedy_trace(gen, spec, qs[0].input, 5, 64)
    out["greedy_steps"] = steps
    _, out["samples8_tok_s"] = eight_samples(gen, spec.prompt(qs[0].input, steps[:2]), 64)
    _, together, out["traces8_tok_s"] = eight_traces(gen, spec, qs[2:10], 5, 64)
    out["traces8_steps"] = [d.steps for d in together]
    gen.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR (DIR first on PYTHONPATH; empty: "
                    "the llama_cpp this Python imports); give two or more")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--cache-dir", default=os.environ.get("BBM_CACHE_DIR", str(Path.home() / ".cache" / "bbm")))
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # measure here (used by the parent)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.model, args.threads, args.cache_dir)))
        return
    builds = []
    for b in args.build:
        name, sep, folder = b.partition("=")
        if not sep or not name:
            raise SystemExit(f"--build: NAME=DIR, got {b!r}")
        if folder and not (Path(folder) / "llama_cpp").is_dir():
            raise SystemExit(f"--build {name}: {folder} holds no llama_cpp package")
        builds.append((name, folder))
    if len(builds) < 2 or args.rounds < 1:
        raise SystemExit("give two or more --build and --rounds >= 1")
    print(f"CPU: {cpu_line()}")
    runs: dict[str, list[dict]] = {name: [] for name, _ in builds}
    for r in range(args.rounds):
        for name, folder in builds:
            path = os.pathsep.join(p for p in (folder, os.environ.get("PYTHONPATH", "")) if p)
            proc = subprocess.run([sys.executable, __file__, "--one", "--build", "x=", "--model", args.model,
                                   "--threads", str(args.threads), "--cache-dir", args.cache_dir],
                                  capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=path))
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{name}: benchmark failed")
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[name].append(out)
            print(f"round {r + 1} {name}: " + json.dumps({k: v for k, v in out.items() if not k.endswith("_steps")}),
                  flush=True)
    base, first = builds[0][0], runs[builds[0][0]][0]
    for name, _ in builds[1:]:
        ratios = {}
        for k in RATES:
            a = sum(o[k] for o in runs[base]) / args.rounds
            b = sum(o[k] for o in runs[name]) / args.rounds
            ratios[k] = round(a / b if k == "first_question_s" else b / a, 2)  # seconds: fewer is faster
        other = runs[name][0]
        same = sum(x == y for x, y in zip(first["traces8_steps"], other["traces8_steps"]))
        print(f"{name} against {base} (speed-up, mean of {args.rounds} rounds): {json.dumps(ratios)}; greedy steps "
              f"equal: one stream {first['greedy_steps'] == other['greedy_steps']}, 8 traces {same}/"
              f"{len(first['traces8_steps'])}")


if __name__ == "__main__":
    main()

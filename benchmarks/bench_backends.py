"""bbm's llama.cpp backend against llama-cpp-python's high-level API, on the same GGUF file with the
same thread count, side by side in one run, for each packaged model.

    python benchmarks/bench_backends.py [--models qwen2.5-coder-1.5b,gemma-3-270m] [--threads 2]
                                        [--kernels fast,invariant]

Each model is measured with each of bbm's llama.cpp kernel choices (`--llama-kernels`: fast, the
default, or batch-invariant), the high-level API beside each.

What it measures (each model in its own subprocess, so peak RSS is the model's own):
  greedy   one stream, step by step through a multistep-arithmetic trace (the few-shot prompt
           cached first): llama.cpp's high-level API (Llama.create_completion with stop="\\n", which
           reuses the previous request's prefix) vs bbm's greedy generate_steps. Decode tokens/s.
  samples  8 samples of one step at T=1: bbm's raw_samples (one request, n=8), aggregate tokens/s.
  traces   8 traces decoded together (decode_traces, batch 8), aggregate tokens/s.
  reuse    seconds for the first question of a task (whole few-shot prompt) vs a second question,
           and the first question again in a new context (a second run), without and with the
           few-shot prompt's KV state kept on disk (backtrack/lm/prefix_store.py).
  exact    |log-prob of a sample - a separate forward pass over prefix + sample| (max over 8);
           greedy steps of 3 of the 8 traces decoded together vs one at a time in a fresh context:
           texts equal, and the largest log-prob difference per token.
  memory   peak RSS of the process (ru_maxrss).
Print the CPU (lscpu's model name and flags that matter) with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_line() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    has = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx_vnni") if f in flags]
    return f"{name} ({os.cpu_count()} cores; {' '.join(has) or 'no AVX2'})"


def questions(task: str, n: int):
    from bigbench_mistake.dataset import load_all
    from bigbench_mistake.questions import questions_from_traces

    return questions_from_traces(load_all(None, [task]), n)


def disk_reuse(path: str, threads: int, spec, qs, invariant: bool) -> float:
    """Seconds for a new run's first question when an earlier run kept the few-shot prompt's KV state
    on disk: run 1 answers two questions (the second branches off the few-shot prompt, which is saved)
    into an empty store; run 2, a new context on the same store, answers a third."""
    import tempfile

    from backtrack.lm.generator import StepRequest
    from backtrack.lm.llama_cpp_backend import LlamaCppConfig, LlamaCppGenerator

    with tempfile.TemporaryDirectory() as store:
        config = LlamaCppConfig(path, n_threads=threads, n_ctx=16384, prefix_dir=store, batch_invariant=invariant)
        first = LlamaCppGenerator(config)
        first.generate_steps([StepRequest(spec.prompt(q.input), max_tokens=1) for q in qs[:1]])
        first.generate_steps([StepRequest(spec.prompt(q.input), max_tokens=1) for q in qs[1:2]])
        first.close()
        later = LlamaCppGenerator(config)
        t0 = time.perf_counter()
        later.generate_steps([StepRequest(spec.prompt(qs[2].input), max_tokens=1)])
        seconds = round(time.perf_counter() - t0, 2)
        restored = later.prompt_tokens_restored
        later.close()
    if not restored:
        raise RuntimeError("the second run restored nothing from the prefix store")
    return seconds


def greedy_trace(gen, spec, question: str, n_steps: int, max_tokens: int) -> tuple[list[str], int, float]:
    """bbm's greedy steps of one trace, one stream, step by step: (steps, tokens, tokens/s)."""
    from backtrack.lm.generator import StepRequest

    steps, tokens, seconds = [], 0, 0.0
    for _ in range(n_steps):
        t0 = time.perf_counter()
        [[s]] = gen.generate_steps([StepRequest(spec.prompt(question, steps), max_tokens=max_tokens)])
        seconds += time.perf_counter() - t0
        tokens += s.n_tokens
        steps.append(s.text)
    return steps, tokens, round(tokens / seconds, 2)


def eight_samples(gen, prompt: str, max_tokens: int) -> tuple[list, float]:
    """8 samples of one step at T=1 from a cached prompt (as a backtracking step's prompt is), in one
    request: (samples, aggregate tokens/s)."""
    from backtrack.lm.generator import StepRequest

    gen.generate_steps([StepRequest(prompt, max_tokens=1)])
    t0 = time.perf_counter()
    samples = gen.raw_samples([prompt], [8], 1.0, [0], [0], max_tokens)[0]
    return samples, round(sum(len(s.token_ids) for s in samples) / (time.perf_counter() - t0), 2)


def eight_traces(gen, spec, qs, n_steps: int, max_tokens: int) -> tuple[list, list, float]:
    """8 multistep-arithmetic traces decoded together (batch 8): (requests, traces, aggregate tokens/s)."""
    from backtrack.lm.generator import StepRequest
    from backtrack.methods.decoding import DecodeConfig, TraceRequest, decode_traces

    reqs = [TraceRequest(spec.name, q.input) for q in qs]
    # a pool holding the few-shot prompt and the 8 questions only, as in a run (cells left by the
    # measures before would make every token's attention dearer)
    for s in list(gen.seqs):
        gen._free_seq(s)
    gen.generate_steps([StepRequest(spec.prompt(q.input), max_tokens=1) for q in qs])
    t0 = time.perf_counter()
    together = decode_traces(gen, reqs, DecodeConfig(max_steps=n_steps, max_tokens=max_tokens, batch_size=8))
    return reqs, together, round(sum(d.n_tokens for d in together) / (time.perf_counter() - t0), 2)


def bench_model(name: str, threads: int, cache_dir: str, invariant: bool, max_tokens: int = 64,
                trace_steps: int = 5) -> dict:
    from backtrack.lm.backends import LlamaOptions, load_llama
    from backtrack.methods.decoding import DecodeConfig, decode_traces
    from backtrack.lm.embedded import model_gguf
    from backtrack.lm.generator import StepRequest
    from bigbench_mistake.tasks import get_task

    spec = get_task("multistep_arithmetic")
    qs = questions("multistep_arithmetic", 12)
    out: dict = {"model": name, "threads": threads, "kernels": "invariant" if invariant else "fast"}
    path = str(model_gguf(name, cache_dir))

    # -------- llama.cpp high-level API: one stream, step by step, its own prefix cache
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=8192, n_threads=threads, n_threads_batch=threads, verbose=False)
    prompt = spec.prompt(qs[0].input)
    llm.create_completion(prompt, max_tokens=1, temperature=0.0)  # evaluates (caches) the prompt
    steps, tokens, seconds = [], 0, 0.0
    for _ in range(trace_steps):
        p = spec.prompt(qs[0].input, steps)
        t0 = time.perf_counter()
        r = llm.create_completion(p, max_tokens=max_tokens, temperature=0.0, stop=["\n"])
        seconds += time.perf_counter() - t0
        tokens += r["usage"]["completion_tokens"]
        steps.append(r["choices"][0]["text"].strip())
    out["llama_hl_greedy_tok_s"] = round(tokens / seconds, 2)
    out["llama_hl_greedy_tokens"] = tokens
    del llm

    # -------- bbm's backend
    gen = load_llama(name, cache_dir, LlamaOptions(threads=threads, n_ctx=16384, prefix_states=False,
                                                   batch_invariant=invariant))
    t0 = time.perf_counter()
    gen.generate_steps([StepRequest(spec.prompt(qs[0].input), max_tokens=1)])
    out["reuse_first_question_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    gen.generate_steps([StepRequest(spec.prompt(qs[1].input), max_tokens=1)])
    out["reuse_second_question_s"] = round(time.perf_counter() - t0, 2)

    steps, tokens, out["bbm_greedy_tok_s"] = greedy_trace(gen, spec, qs[0].input, trace_steps, max_tokens)
    out["bbm_greedy_tokens"] = tokens

    prompt = spec.prompt(qs[0].input, steps[:2])
    samples, out["bbm_8_samples_tok_s"] = eight_samples(gen, prompt, max_tokens)
    ptoks = gen.tokenize(prompt)
    out["exact_sample_vs_forward_max_abs"] = max(
        abs(sum(s.token_logprobs) - sum(gen.token_logprobs(ptoks, list(s.token_ids)))) for s in samples)

    reqs, together, out["bbm_8_traces_tok_s"] = eight_traces(gen, spec, qs[2:10], trace_steps, max_tokens)

    alone = []
    for r in reqs[:3]:  # each needs a fresh context, so its whole prompt: ~70 s apiece for the 1.5B model
        fresh = load_llama(name, cache_dir, LlamaOptions(threads=threads, n_ctx=8192, prefix_states=False,
                                                         batch_invariant=invariant))
        alone.append(decode_traces(fresh, [r], DecodeConfig(max_steps=trace_steps, max_tokens=max_tokens))[0])
        fresh.close()
    out["exact_batched_traces_equal"] = f"{sum(a.steps == b.steps for a, b in zip(together, alone))}/{len(alone)}"
    diffs = [abs(x.logprob - y.logprob) / max(x.n_tokens, 1) for a, b in zip(together, alone)
             for x, y in zip(a.new_steps, b.new_steps) if x.text == y.text]
    out["exact_batched_logprob_max_per_token"] = round(max(diffs), 5) if diffs else None
    gen.close()
    second_run = load_llama(name, cache_dir, LlamaOptions(threads=threads, n_ctx=16384, prefix_states=False,
                                                          batch_invariant=invariant))
    t0 = time.perf_counter()
    second_run.generate_steps([StepRequest(spec.prompt(qs[0].input), max_tokens=1)])
    out["reuse_second_run_first_question_s"] = round(time.perf_counter() - t0, 2)
    second_run.close()
    out["reuse_second_run_first_question_prefix_on_disk_s"] = disk_reuse(path, threads, spec, qs, invariant)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["ratio_greedy"] = round(out["bbm_greedy_tok_s"] / out["llama_hl_greedy_tok_s"], 2)
    out["ratio_8_samples"] = round(out["bbm_8_samples_tok_s"] / out["llama_hl_greedy_tok_s"], 2)
    out["ratio_8_traces"] = round(out["bbm_8_traces_tok_s"] / out["llama_hl_greedy_tok_s"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="qwen2.5-coder-1.5b,gemma-3-270m")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--cache-dir", default=os.environ.get("BBM_CACHE_DIR", str(Path.home() / ".cache" / "bbm")))
    ap.add_argument("--kernels", default="fast,invariant")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # run one model in this process (used by the parent)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(bench_model(args.one, args.threads, args.cache_dir, args.kernels == "invariant")))
        return
    print(f"CPU: {cpu_line()}")
    rows = []
    for m, k in [(m, k) for m in args.models.split(",") for k in args.kernels.split(",")]:
        if k not in ("fast", "invariant"):
            raise SystemExit(f"--kernels: fast and/or invariant, got {k!r}")
        # ggml reads the tiled-matmul switch at a process's first decode, which here is the high-level
        # API's: the invariant child starts with it off (it changes nothing for one stream's decoding)
        env = dict(os.environ, GGML_CPU_TILED_MM="0") if k == "invariant" else os.environ
        r = subprocess.run([sys.executable, __file__, "--one", m, "--threads", str(args.threads), "--kernels", k,
                            "--cache-dir", args.cache_dir], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(r.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{m}: benchmark failed")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1], indent=1), flush=True)  # each model as soon as it is measured


if __name__ == "__main__":
    main()

"""bbm find's prompt-based finders, trace by trace against checked together (`--batch-size`), on one model.

    python benchmarks/bench_find.py [--model qwen2.5-coder-1.5b] [--threads 2] [--method cot-step]
                                    [--task word_sorting] [--traces 8] [--steps 3] [--rounds 1]

The first --traces traces of the task, each cut to its first --steps steps, go through PromptFinder
in generate mode twice: one trace per find call (how bbm find ran before --batch-size, and what
--batch-size 1 does), and all of them in one call (the step-level finders in lockstep). Each way
gets a freshly loaded model (no prefix store), warmed up by one check of a trace outside the set,
so both start with the finder's few-shot prompt evaluated and nothing of the measured traces held.
Printed per way: seconds, tokens generated, prompt tokens evaluated, generated tokens/s; then the
speed-up, and how many traces got the same prediction (batching moves llama.cpp's log-probs a little,
so a greedy line can part).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_backends import cpu_line  # noqa: E402  (benchmarks/ is the script's own folder)


def measure(args: argparse.Namespace, together: bool) -> dict:
    from backtrack.lm.backends import LlamaOptions, load_llama
    from bigbench_mistake.dataset import load_task
    from reward_model.prompt_finders import FinderConfig, PromptFinder

    traces = [t.replace(steps=t.steps[:args.steps], mistake_index=t.mistake_index
                        if t.mistake_index is not None and t.mistake_index < args.steps else None)
              for t in load_task(args.task)[:args.traces + 1]]
    warm, traces = traces[-1], traces[:-1]
    gen = load_llama(args.model, args.cache_dir, LlamaOptions(threads=args.threads, n_ctx=32768, prefix_states=False))
    finder = PromptFinder(gen, FinderConfig(args.method, "generate", reasoning_tokens=args.reasoning_tokens))
    finder.find([warm.replace(steps=warm.steps[:1])])
    generated, evaluated = gen.generated_tokens, gen.prompt_tokens_evaluated
    t0 = time.perf_counter()
    results = finder.find(traces) if together else [r for t in traces for r in finder.find([t])]
    seconds = time.perf_counter() - t0
    tokens, prompt = gen.generated_tokens - generated, gen.prompt_tokens_evaluated - evaluated
    gen.close()
    return {"seconds": round(seconds, 1), "generated_tokens": tokens, "prompt_tokens": prompt,
            "tok_s": round(tokens / seconds, 2),
            "checks": sum(r.checks for r in results), "predictions": [r.index for r in results]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--method", default="cot-step", choices=("direct-trace", "direct-step", "cot-step"))
    ap.add_argument("--task", default="word_sorting")
    ap.add_argument("--traces", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3, help="steps kept of each trace")
    ap.add_argument("--reasoning-tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=1, help="each way this many times, in turn")
    ap.add_argument("--cache-dir", default=os.environ.get("BBM_CACHE_DIR", str(Path.home() / ".cache" / "bbm")))
    args = ap.parse_args()
    if args.traces < 2 or args.steps < 1 or args.rounds < 1:
        raise SystemExit("--traces >= 2, --steps >= 1 and --rounds >= 1")
    print(f"CPU: {cpu_line()}; {args.model}, {args.threads} threads, {args.method}, {args.traces} traces of "
          f"{args.task} cut to {args.steps} steps", flush=True)
    runs: dict[str, list[dict]] = {"one by one": [], "together": []}
    for r in range(args.rounds):
        for way in runs:
            out = measure(args, way == "together")
            runs[way].append(out)
            print(f"round {r + 1} {way}: {json.dumps(out)}", flush=True)
    mean = {way: sum(o["seconds"] for o in outs) / args.rounds for way, outs in runs.items()}
    a, b = runs["one by one"][0]["predictions"], runs["together"][0]["predictions"]
    print(f"together against one by one: {mean['one by one'] / mean['together']:.2f}x faster (mean seconds "
          f"{mean['one by one']:.1f} vs {mean['together']:.1f}); same prediction for {sum(x == y for x, y in zip(a, b))}"
          f"/{len(a)} traces")


if __name__ == "__main__":
    main()

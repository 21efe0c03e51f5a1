"""bbm compare one question at a time against --batch-size N questions together, on one model.

    python benchmarks/bench_compare.py [--model qwen2.5-coder-1.5b] [--threads 2] [--batch-size 4]
        [--tasks multistep_arithmetic,dyck_languages,logical_deduction,tracking_shuffled_objects]
        [--per-task 1] [--strategies cot,least-to-most,backtrack] [--order one-first|together-first]

The first --per-task questions of each task go through run_compare twice, with the strategies of
the issue's comparison (backtracking guarded: --selection verifier --accept verified, the trained
locator): batch size 1 (how the comparison in results/qwen-compare runs) and --batch-size (each
model call holds the next request of every question of the batch; backtrack/lm/lockstep.py). Each way
gets a freshly loaded model with no prefix store, so both evaluate the tasks' few-shot prompts
themselves and neither holds the other's prompts. The default strategies are the ones that decode a
single trace (self-consistency already decodes its k samples together; add it with --strategies).
Printed per way: wall seconds, tokens generated, prompt tokens evaluated, generated tokens/s; then
the speed-up, and how many records have the same steps both ways (batching moves llama.cpp's sums in
the last bits with its default kernels, so a greedy path can part at a near-tie).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_backends import cpu_line  # noqa: E402  (benchmarks/ is the script's own folder)


def measure(args: argparse.Namespace, items: list, batch_size: int) -> dict:
    from backtrack.lm.backends import LlamaOptions, load_llama
    from backtrack.methods.strategies import StrategyConfig
    from backtrack.runs.compare import run_compare
    from backtrack.runs.rundir import finished_records
    from reward_model.registry import LocatorOptions, make_locator

    gen = load_llama(args.model, args.cache_dir, LlamaOptions(threads=args.threads, n_ctx=32768, prefix_states=False))
    config = StrategyConfig(bt_selection="verifier", bt_accept="verified")
    strategies = args.strategies.split(",")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run_compare(items, strategies, config, gen, Path(out) / "run", locator_spec="trained",
                    make_locator=lambda lm: make_locator("trained", LocatorOptions(generator=lm, cache_dir=args.cache_dir)),
                    batch_size=batch_size)
        seconds = time.perf_counter() - t0
        records, _ = finished_records(Path(out) / "run")
    tokens, prompt = gen.generated_tokens, gen.prompt_tokens_evaluated
    gen.close()
    return {"batch_size": batch_size, "seconds": round(seconds, 1), "generated_tokens": tokens, "prompt_tokens": prompt,
            "tok_s": round(tokens / seconds, 2), "correct": sum(r["correct"] for r in records),
            "steps": {r["key"]: r["steps"] for r in records},
            "seconds_by_strategy": {s: round(sum(r["seconds"] for r in records if r["strategy"] == s), 1)
                                    for s in strategies}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--tasks", default="multistep_arithmetic,dyck_languages,logical_deduction,tracking_shuffled_objects")
    ap.add_argument("--per-task", type=int, default=1)
    ap.add_argument("--strategies", default="cot,least-to-most,backtrack")
    ap.add_argument("--order", default="one-first", choices=("one-first", "together-first"))
    ap.add_argument("--cache-dir", default=os.environ.get("BBM_CACHE_DIR", str(Path.home() / ".cache" / "bbm")))
    args = ap.parse_args()
    if args.batch_size < 2 or args.per_task < 1:
        raise SystemExit("--batch-size >= 2 and --per-task >= 1")
    from bigbench_mistake.dataset import load_all
    from bigbench_mistake.questions import first_per_task, questions_from_traces

    tasks = tuple(args.tasks.split(","))
    items = first_per_task(questions_from_traces(load_all(None, tasks)), tasks, args.per_task)
    print(f"CPU: {cpu_line()}; {args.model}, {args.threads} threads, {len(items)} questions "
          f"({', '.join(tasks)}), strategies {args.strategies}", flush=True)
    sizes = (1, args.batch_size) if args.order == "one-first" else (args.batch_size, 1)
    runs = {}
    for b in sizes:
        runs[b] = measure(args, items, b)
        print(json.dumps({k: v for k, v in runs[b].items() if k != "steps"}), flush=True)
    one, many = runs[1], runs[args.batch_size]
    same = sum(one["steps"][k] == many["steps"].get(k) for k in one["steps"])
    for k, steps in one["steps"].items():  # where each record that differs parts
        other = many["steps"].get(k) or []
        if steps != other:
            at = next((i for i, (x, y) in enumerate(zip(steps, other)) if x != y), min(len(steps), len(other)))
            print(f"{k}: parts at step {at + 1} of {len(steps)} / {len(other)}: "
                  f"{(steps[at] if at < len(steps) else '')[:60]!r} / {(other[at] if at < len(other) else '')[:60]!r}")
    print(f"batch {args.batch_size} against 1: {one['seconds'] / many['seconds']:.2f}x faster ({one['seconds']:.1f} s "
          f"vs {many['seconds']:.1f} s); same steps in {same}/{len(one['steps'])} records; correct {one['correct']} "
          f"vs {many['correct']}")


if __name__ == "__main__":
    main()

"""Raw few-shot completion against the model's chat template, on the same questions, greedy, step-wise.

    python benchmarks/prompt_format.py [--model qwen2.5-coder-1.5b] [--per-task 10] [--out runs/prompt-format.json]

For each format and task: accuracy (the lenient answer extraction bbm scores with, and the
paper's strict regex alone), how many traces end with an answer, mean steps and tokens, seconds.
Both formats write "Thought N:" steps scored the same way (backtrack/lm/chat_format.py); the better
one is the default of --prompt-format.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from backtrack.lm.backends import LlamaOptions, load_llama
    from backtrack.lm.chat_format import ChatFormatGenerator
    from backtrack.methods.decoding import MAX_STEP_TOKENS, MAX_STEPS, DecodeConfig, TraceRequest, decode_traces
    from bigbench_mistake.dataset import load_all
    from bigbench_mistake.questions import questions_from_traces
    from bigbench_mistake.tasks import TASKS, get_task

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--per-task", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=MAX_STEPS)
    ap.add_argument("--max-step-tokens", type=int, default=MAX_STEP_TOKENS)
    ap.add_argument("--task", action="append", default=None, help="only this task (repeatable; default: all five)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--cache-dir", default=os.environ.get("BBM_CACHE_DIR", str(Path.home() / ".cache" / "bbm")))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    base = load_llama(args.model, args.cache_dir, LlamaOptions(threads=args.threads))
    formats = {"raw": base, "chat": ChatFormatGenerator(base, base.chat_prefix)}
    qs = questions_from_traces(load_all(), args.per_task)
    cfg = DecodeConfig(args.max_steps, args.max_step_tokens, batch_size=8)
    report: dict = {"model": base.name, "per_task": args.per_task, "formats": {}}
    for fmt, gen in formats.items():
        rows = {}
        for task in args.task or TASKS:
            mine = [q for q in qs if q.task == task]
            t0 = time.perf_counter()
            done = decode_traces(gen, [TraceRequest(q.task, q.input) for q in mine], cfg)
            secs = time.perf_counter() - t0
            spec = get_task(task)
            scored = [spec.score(d.steps, q.target) for d, q in zip(done, mine)]
            strict = [spec.score_strict(d.steps, q.target) for d, q in zip(done, mine)]
            rows[task] = {"n": len(mine), "correct": sum(s.correct for s in scored),
                          "correct_strict": sum(s.correct for s in strict),
                          "answered": sum(d.stop_reason == "answer" for d in done),
                          "mean_steps": round(sum(len(d.steps) for d in done) / len(done), 1),
                          "tokens": sum(d.n_tokens for d in done), "seconds": round(secs, 1),
                          "stop_reasons": {r: sum(d.stop_reason == r for d in done)
                                           for r in sorted({d.stop_reason for d in done})}}
            print(fmt, task, json.dumps(rows[task]), flush=True)
        n = sum(r["n"] for r in rows.values())
        rows["overall"] = {"n": n, **{k: sum(r[k] for r in rows.values()) for k in
                                      ("correct", "correct_strict", "answered", "tokens")},
                           "seconds": round(sum(r["seconds"] for r in rows.values()), 1)}
        report["formats"][fmt] = rows
        print(fmt, "overall", json.dumps(rows["overall"]), flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

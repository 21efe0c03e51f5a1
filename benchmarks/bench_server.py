"""Traces per minute through the OpenAI-compatible server backend, 1 vs 4 concurrent requests.

Decodes the same greedy chain-of-thought traces (few-shot prompt + question, step by step until the
answer step, EOS or --max-steps) twice: with concurrency 1 and with concurrency 4, and prints
traces/minute for each and their ratio. Every active trace's next step is one request, so with
concurrency c up to c requests are in flight at once.

Against a server you run:   python benchmarks/bench_server.py --base-url http://127.0.0.1:8000/v1 --model NAME
Self-contained (starts llama-cpp-python's server on the embedded Gemma 3 270M GGUF, needs
`pip install 'llama-cpp-python[server]'`):   python benchmarks/bench_server.py --start-llama-cpp

The two settings must give the same traces (greedy decoding is deterministic); the script checks it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backtrack.llama_cpp_server import LlamaCppServer, embedded_gguf  # noqa: E402
from backtrack.openai_backend import OpenAIConfig, OpenAIGenerator  # noqa: E402
from bigbench_mistake.dataset import load_all  # noqa: E402
from bigbench_mistake.tasks import get_task  # noqa: E402


def decode_traces(generator: OpenAIGenerator, questions: list[tuple[str, str]], max_steps: int,
                  max_tokens: int) -> list[list[str]]:
    """Greedy step-wise decoding of every question at once: one request per active trace per round."""
    steps: list[list[str]] = [[] for _ in questions]
    active = list(range(len(questions)))
    for _ in range(max_steps):
        if not active:
            break
        prompts = [get_task(questions[i][0]).prompt(questions[i][1], steps[i]) for i in active]
        still = []
        for i, step in zip(active, generator.greedy_steps(prompts, max_tokens)):
            steps[i].append(step.text)
            if step.stop_reason == "newline" and "answer is" not in step.text:
                still.append(i)
        active = still
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url")
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--start-llama-cpp", action="store_true", help="start llama-cpp-python's server here")
    ap.add_argument("--task", default="multistep_arithmetic")
    ap.add_argument("--traces", type=int, default=8)
    ap.add_argument("--max-steps", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--server-threads", type=int, default=2)
    ap.add_argument("--json-out")
    args = ap.parse_args()

    traces = load_all(None, [args.task])[: args.traces]
    questions = [(t.task, t.input) for t in traces]
    server = None
    if args.start_llama_cpp:
        server = LlamaCppServer(embedded_gguf(), alias=args.model, n_threads=args.server_threads).start()
        base_url = server.base_url
    elif args.base_url:
        base_url = args.base_url
    else:
        ap.error("give --base-url or --start-llama-cpp")
    out: dict = {"base_url": base_url, "model": args.model, "task": args.task, "traces": len(questions),
                 "max_steps": args.max_steps, "max_tokens": args.max_tokens, "runs": []}
    try:
        reference = None
        for c in args.concurrency:
            with OpenAIGenerator(OpenAIConfig(base_url=base_url, model=args.model, concurrency=c)) as g:
                decode_traces(g, questions[:1], 1, 4)  # warm-up: load, first prompt evaluation
                start = time.perf_counter()
                result = decode_traces(g, questions, args.max_steps, args.max_tokens)
                seconds = time.perf_counter() - start
                n_requests = g.stats["requests"]
            same = reference is None or result == reference
            reference = reference or result
            run = {"concurrency": c, "seconds": round(seconds, 2), "requests": n_requests,
                   "traces_per_minute": round(60 * len(questions) / seconds, 2), "same_traces_as_first": same}
            out["runs"].append(run)
            print(json.dumps(run), flush=True)
    finally:
        if server:
            server.stop()
    base = out["runs"][0]["traces_per_minute"]
    for r in out["runs"]:
        r["speedup_vs_first"] = round(r["traces_per_minute"] / base, 2)
    print(json.dumps(out, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
    if not all(r["same_traces_as_first"] for r in out["runs"]):
        sys.exit("traces differ between concurrency settings")


if __name__ == "__main__":
    main()

"""Traces per minute through the OpenAI-compatible server backend, 1 vs 4 concurrent requests.

Decodes the same greedy chain-of-thought traces with backtrack/decoding.decode_traces (step by step
until the answer step, EOS or --max-steps; all traces in one batch) twice: with concurrency 1 and
with concurrency 4, and prints traces/minute for each and their ratio. Every active trace's next
step is one request, so with concurrency c up to c requests are in flight at once.

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

from backtrack.lm.llama_cpp_server import LlamaCppServer, embedded_gguf  # noqa: E402
from backtrack.lm.openai_backend import OpenAIConfig, OpenAIGenerator  # noqa: E402
from bigbench_mistake.dataset import load_all  # noqa: E402
from backtrack.methods.decoding import DecodeConfig, TraceRequest, decode_traces  # noqa: E402

# One exemplar instead of the paper's few-shot prompt (--few-shot paper): llama-cpp-python sorts the
# whole 262k-token Gemma vocabulary in Python for every token it returns a log-prob for, and the
# full prompts cost minutes per step on 2 CPU cores.
SHORT_FEW_SHOT = "Q: 3 + 4 =\nThought 1: 3 + 4 = 7.\nThought 2: So the answer is 7."


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
    ap.add_argument("--few-shot", choices=["short", "paper"], default="short")
    ap.add_argument("--no-logprobs", action="store_true", help="ask the server for no log-probs")
    ap.add_argument("--json-out")
    args = ap.parse_args()

    traces = load_all(None, [args.task])[: args.traces]
    requests = [TraceRequest(t.task, t.input) for t in traces]
    decode = DecodeConfig(max_steps=args.max_steps, max_tokens=args.max_tokens, batch_size=len(requests),
                          few_shot=SHORT_FEW_SHOT if args.few_shot == "short" else None)
    logprobs = {"logprobs_mode": "none", "require_logprobs": False} if args.no_logprobs else {}
    server = None
    if args.start_llama_cpp:
        server = LlamaCppServer(embedded_gguf(), alias=args.model, n_threads=args.server_threads).start()
        base_url = server.base_url
    elif args.base_url:
        base_url = args.base_url
    else:
        ap.error("give --base-url or --start-llama-cpp")
    out: dict = {"base_url": base_url, "model": args.model, "task": args.task, "traces": len(requests),
                 "max_steps": args.max_steps, "max_tokens": args.max_tokens, "few_shot": args.few_shot,
                 "logprobs": not args.no_logprobs, "runs": []}
    try:
        reference = None
        for c in args.concurrency:
            with OpenAIGenerator(OpenAIConfig(base_url=base_url, model=args.model, concurrency=c, **logprobs)) as g:
                g.check_model()
                # warm-up, untimed: the server's first prompt evaluation and page-ins
                decode_traces(g, requests[:1], DecodeConfig(max_steps=1, max_tokens=2, few_shot=decode.few_shot))
                g.stats["requests"] = 0
                start = time.perf_counter()
                decoded = decode_traces(g, requests, decode)
                seconds = time.perf_counter() - start
                n_requests = g.stats["requests"]
            result = [(d.steps, d.stop_reason) for d in decoded]
            same = reference is None or result == reference
            reference = reference or result
            run = {"concurrency": c, "seconds": round(seconds, 2), "requests": n_requests,
                   "steps": sum(len(d.new_steps) for d in decoded), "tokens": sum(d.n_tokens for d in decoded),
                   "traces_per_minute": round(60 * len(requests) / seconds, 2), "same_traces_as_first": same}
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
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    if not all(r["same_traces_as_first"] for r in out["runs"]):
        sys.exit("traces differ between concurrency settings")


if __name__ == "__main__":
    main()

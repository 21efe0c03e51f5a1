"""Where the memory of a transformers run goes, stage by stage (the 270M model by default).

    python benchmarks/memory_stages.py [--dtype auto|float32|bfloat16] [--cache-dir DIR] [--traces 4]

After each stage it prints the process's peak RSS (VmHWM) and its resident memory split into
anonymous memory (tensors, caches) and file-backed pages (shared libraries, memory-mapped files),
from /proc/self/status (Linux). Stages: import torch, import transformers, load the model, train or
load the default locator, decode N traces greedily, backtrack them at step 2. Run it alone: other
processes do not change the figures, but the first run on an empty cache also converts the GGUF.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def memory() -> dict[str, int]:
    """MB: peak RSS, anonymous and file-backed resident memory now."""
    fields = {}
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                fields[{"VmHWM": "peak", "RssAnon": "anon", "RssFile": "file"}[key]] = round(int(value.split()[0]) / 1024)
    return fields


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--cache-dir", default=None, help="default: bbm's (~/.cache/bbm)")
    ap.add_argument("--traces", type=int, default=4)
    args = ap.parse_args()
    out = {"python": memory()}
    import torch  # noqa: F401

    out["import torch"] = memory()
    import transformers  # noqa: F401

    out["import transformers"] = memory()
    from backtrack.lm.backends import BackendConfig, load_lm
    from backtrack.methods.backtracking import BacktrackConfig, backtrack_batch
    from backtrack.methods.decoding import DecodeConfig, TraceRequest, decode_traces
    from backtrack.runs.commands import make_locator
    from backtrack.runs.options import Selection
    from bigbench_mistake.dataset import load_task

    backend = BackendConfig(backend="hf", dtype=args.dtype, cache_dir=args.cache_dir)
    lm = load_lm(backend)
    out[f"load the model ({lm.name})"] = memory()
    make_locator("trained", 0, Selection(), backend)
    out["default locator"] = memory()
    traces = load_task("multistep_arithmetic")[:args.traces]
    decode_traces(lm, [TraceRequest(t.task, t.input) for t in traces], DecodeConfig(max_steps=6, max_tokens=64,
                                                                                    batch_size=args.traces))
    out[f"decode {args.traces} traces"] = memory()
    backtrack_batch(traces, [1] * len(traces), lm, BacktrackConfig(max_steps=6, max_step_tokens=64,
                                                                   batch_size=args.traces))
    out[f"backtrack {args.traces} traces"] = memory()
    for stage, m in out.items():
        print(f"{stage:45s} peak {m['peak']:6d} MB   anon {m['anon']:6d} MB   file {m['file']:6d} MB")
    print(json.dumps(out))


if __name__ == "__main__":
    main()

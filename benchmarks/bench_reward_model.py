"""Benchmark: train the CPU step classifier on all 2,186 traces, then locate all of them from the saved
model in a fresh process (cold feature caches), against the targets (train < 120 s, locate < 10 s).

    python benchmarks/bench_reward_model.py [--features all|generic] [--out /tmp/bench-rm]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TRAIN_TARGET_S = 120.0
LOCATE_TARGET_S = 10.0

LOCATE_SNIPPET = """
import json, sys, time
t0 = time.perf_counter()
from bigbench_mistake.dataset import load_all
from reward_model.locator import first_mistake
from reward_model.trained import load_locator
traces = load_all()
t1 = time.perf_counter()
loc = load_locator(sys.argv[1])
scores = loc.scores(traces)
preds = [first_mistake(s, loc.threshold) for s in scores]
t2 = time.perf_counter()
print(json.dumps({"load_data_s": round(t1 - t0, 2), "locate_s": round(t2 - t1, 2), "n": len(preds)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--features", default="all")
    ap.add_argument("--out", default="/tmp/bench-rm")
    args = ap.parse_args()

    from bigbench_mistake.dataset import load_all
    from reward_model.classifier import TrainConfig, train

    traces = load_all()
    t0 = time.perf_counter()
    model = train(traces, TrainConfig(features=args.features))
    train_s = time.perf_counter() - t0
    model.save(args.out)
    res = subprocess.run([sys.executable, "-c", LOCATE_SNIPPET, args.out], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    loc = json.loads(res.stdout)
    report = {
        "features": args.features, "n_traces": len(traces),
        "train_s": round(train_s, 1), "train_target_s": TRAIN_TARGET_S, "train_ratio_to_target": round(train_s / TRAIN_TARGET_S, 2),
        "locate_s": loc["locate_s"], "locate_target_s": LOCATE_TARGET_S,
        "locate_ratio_to_target": round(loc["locate_s"] / LOCATE_TARGET_S, 2),
        "locate_per_trace_ms": round(1000 * loc["locate_s"] / loc["n"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

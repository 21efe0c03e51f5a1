"""What the paper's sample selection kept, judged by a verifier: over the traces a backtracking run
replaced, whether the kept replacement passes the verifier in place (steps 0..j-1 + the sample), and
whether any of the samples drawn at step j did. A trace that ended wrong although some sample passed
is one that `--selection verifier` could have chosen differently; one where no sample passed is one
the model could not rewrite. Reads only the run directories (samples.jsonl keeps every sample).

    python benchmarks/replacement_verdicts.py results/qwen-table6/gold-{multistep_arithmetic,tracking_shuffled_objects,logical_deduction}/ --verifier checks

--verifier takes any locator spec that reads text (`checks`: the hand-written checks, no learning;
`trained`: the default classifier under ~/.cache/bbm).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUTCOMES = {("correct", "correct"): "kept right", ("correct", "wrong"): "broken", ("correct", "invalid"): "broken",
            ("wrong", "correct"): "fixed", ("invalid", "correct"): "fixed"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories of bbm backtrack")
    ap.add_argument("--verifier", default="checks", help="locator spec that reads text (default: checks)")
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "bbm"))
    args = ap.parse_args()

    from backtrack.methods.backtracking import Verifier
    from bigbench_mistake.records import Trace
    from reward_model.registry import LocatorOptions, make_locator

    verifier = Verifier(make_locator(args.verifier, LocatorOptions(cache_dir=args.cache_dir)))
    total: Counter = Counter()
    for run in map(Path, args.runs):
        counts: Counter = Counter()
        for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            rnd = (r["rounds"] or [None])[0]  # later rounds start from another trace
            if rnd is None or rnd.get("replacement") is None:
                continue
            j = rnd["location"]
            trace = Trace(r["task"], r["id"], r["input"], tuple(r["original_steps"]), None, r["target"], None)
            texts = sorted({s["text"] for s in rnd["samples"] if not s["same_as_mistake"]})
            firsts = dict(zip(texts, verifier.in_place_first_mistakes(trace, texts, j)))
            kept_passes = firsts[rnd["replacement"]] is None
            any_passes = any(f is None for f in firsts.values())
            outcome = OUTCOMES.get((r["original_status"], r["status"]), "still wrong")
            counts[(outcome, "kept passes" if kept_passes else "kept flagged",
                    "a sample passes" if any_passes else "no sample passes")] += 1
        print(f"{run.name} (verifier {verifier.name}): {sum(counts.values())} traces replaced")
        for key, n in sorted(counts.items()):
            print(f"  {n:3d}  {' / '.join(key)}")
        total.update(counts)
    chosen_badly = sum(n for (o, kept, some), n in total.items()
                       if o in ("still wrong", "broken") and kept == "kept flagged" and some == "a sample passes")
    print(f"all runs: {sum(total.values())} traces replaced; {chosen_badly} ended wrong or without an answer with a "
          f"kept replacement the verifier flags while another sample passed")


if __name__ == "__main__":
    main()

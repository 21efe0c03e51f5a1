"""Whether a causal verifier's verdict on a sample in place (steps 0..j-1 + the sample) is the verdict
the finished trace got, over the attempts recorded by guarded backtracking runs (`--accept
verified`), and the tokens the attempts it rejects had cost to finish (what rejecting them in place
saves). Runs made before the in-place rule finished every attempt, so both can be read from them.

    python benchmarks/in_place_verdicts.py results/qwen-table6/trained-verified-{multistep_arithmetic,tracking_shuffled_objects,logical_deduction,dyck_languages}/

The verifier is the run's own (`trained`: the default classifier under ~/.cache/bbm, or `checks`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run directories of bbm backtrack --accept verified")
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "bbm"))
    args = ap.parse_args()

    from backtrack.methods.backtracking import NOT_FINISHED, Verifier
    from bigbench_mistake.records import Trace
    from reward_model.registry import LocatorOptions, make_locator

    agree = disagree = all_rejected = all_saved = all_tokens = 0
    for run in map(Path, args.runs):
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        verifier = Verifier(make_locator(config["verifier"], LocatorOptions(cache_dir=args.cache_dir)),
                            config.get("threshold"))
        rejected = rejected_tokens = 0
        for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            trace = Trace(r["task"], r["id"], r["input"], tuple(r["original_steps"]), None, r["target"], None)
            for rnd in r["rounds"][:1]:  # later rounds start from another trace
                loc = rnd["location"]
                for a in rnd.get("attempts") or []:
                    if a["stop_reason"] == NOT_FINISHED:
                        continue  # rejected in place already: nothing to compare
                    [first] = verifier.in_place_first_mistakes(trace, [a["steps"][0]], loc)
                    in_place = first is not None and first <= loc
                    finished = a["verifier_first_mistake"] is not None and a["verifier_first_mistake"] <= loc
                    agree += in_place == finished
                    disagree += in_place != finished
                    if finished:
                        rejected, rejected_tokens = rejected + 1, rejected_tokens + a["tokens"]
        total = json.loads((run / "results.json").read_text(encoding="utf-8"))["overall"]["tokens"]
        print(f"{run.name}: {rejected} attempts rejected by the verifier, {rejected_tokens} of the run's {total} "
              f"tokens ({100 * rejected_tokens / max(total, 1):.0f}%)")
        all_rejected, all_saved, all_tokens = all_rejected + rejected, all_saved + rejected_tokens, all_tokens + total
    print(f"all runs: {all_rejected} attempts rejected by the verifier, {all_saved} of {all_tokens} tokens "
          f"({100 * all_saved / max(all_tokens, 1):.0f}%)")
    print(f"in-place verdict = finished trace's verdict: {agree} of {agree + disagree}")


if __name__ == "__main__":
    main()

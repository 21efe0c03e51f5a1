"""Matched compute for `bbm compare`: self-consistency at every k up to the run's, from the samples
it drew, and the tokens each strategy spends per answer it corrects.

Self-consistency's sample i is drawn from the stream (question, i) whatever k is, so the first j
samples of a k=8 run are exactly what a k=j run would draw: its answer is the vote over them and its
cost their tokens. That gives self-consistency's accuracy-against-tokens curve, and the k whose cost
matches another strategy's, without drawing anything again.

Tokens per corrected answer (the compass question of a comparison): a strategy's tokens beyond
chain of thought's, over its net gain in right answers on the same questions,
(T_strategy - T_cot) / (correct_strategy - correct_cot); None when the net gain is not positive.
"""
from __future__ import annotations

from typing import Any, Sequence

from bigbench_mistake.bootstrap import accuracy_interval
from bigbench_mistake.tasks import get_task

from backtrack.methods.self_consistency import majority_vote

SC = "self-consistency"
COT = "cot"


def sc_curve(rows: Sequence[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Accuracy and mean tokens of self-consistency at k = 1..K on the questions of `rows` (each a
    {strategy: record} of one question); [] when the run has no self-consistency records with
    per-sample tokens (runs made before they were recorded)."""
    recs = [v[SC] for v in rows if SC in v and "sample_tokens" in v[SC]]
    if not recs or len(recs) < len([v for v in rows if SC in v]):
        return []
    out = []
    for k in range(1, min(len(r["samples"]) for r in recs) + 1):
        correct, tokens = [], 0
        for r in recs:
            spec = get_task(r["task"])
            vote = majority_vote(spec, r["samples"][:k])
            correct.append(vote.answer is not None and spec.score_stored(vote.answer, r["target"]).correct)
            tokens += sum(r["sample_tokens"][:k])
        out.append({"k": k, "accuracy": round(100.0 * sum(correct) / len(recs), 2),
                    "accuracy_interval": accuracy_interval(correct), "mean_tokens": round(tokens / len(recs), 2)})
    return out


def matched_k(curve: Sequence[dict[str, Any]], mean_tokens: float) -> dict[str, Any] | None:
    """The point of the curve whose mean tokens are closest to `mean_tokens`."""
    return min(curve, key=lambda p: abs(p["mean_tokens"] - mean_tokens)) if curve else None


def tokens_per_corrected(rows: Sequence[dict[str, dict[str, Any]]], strategies: Sequence[str]) -> dict[str, Any]:
    """Per strategy other than cot: extra tokens over cot, net answers gained, and their ratio -- only
    where both are positive: a strategy that gains answers for fewer tokens than cot has no cost per
    corrected answer (a negative ratio would read as one), and one that gains none has no ratio."""
    if COT not in strategies or not rows:
        return {}
    out = {}
    for s in strategies:
        if s == COT:
            continue
        extra = sum(v[s]["tokens"] - v[COT]["tokens"] for v in rows)
        gained = sum(bool(v[s]["correct"]) - bool(v[COT]["correct"]) for v in rows)
        out[s] = {"extra_tokens": extra, "net_corrected": gained,
                  "tokens_per_corrected": round(extra / gained, 1) if gained > 0 and extra > 0 else None}
    return out

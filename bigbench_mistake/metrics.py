"""Mistake-finding metrics (the paper's Tables 4 and 5) and the trivial baselines.

A prediction is the 0-based index of the first mistake, or None for "no mistake". All functions
are pure: gold traces and a {trace id: prediction} mapping in, plain dicts out.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from .records import Trace

Prediction = int | None


def _rate(hits: int, total: int) -> float | None:
    return round(100.0 * hits / total, 2) if total else None


def weighted_f1(gold: Sequence[bool], pred: Sequence[bool]) -> float | None:
    """Weighted-average F1 of the two classes 'has a mistake' / 'has none' (sklearn's 'weighted')."""
    if not gold:
        return None
    from sklearn.metrics import f1_score

    return round(100.0 * float(f1_score(gold, pred, average="weighted", labels=[False, True], zero_division=0)), 2)


def mistake_finding_scores(traces: Sequence[Trace], predictions: Mapping[str, Prediction]) -> dict[str, Any]:
    """accuracy_mistake (exact index on traces with a mistake), accuracy_no_mistake (None predicted on
    traces without), accuracy_overall, weighted_f1 of has-mistake, for all traces and per task.
    Traces without a prediction are counted under `missing` and left out of every rate."""

    def block(ts: Sequence[Trace]) -> dict[str, Any]:
        scored = [t for t in ts if t.id in predictions]
        mis = [t for t in scored if t.has_mistake]
        clean = [t for t in scored if not t.has_mistake]
        hit_mis = sum(predictions[t.id] == t.mistake_index for t in mis)
        hit_clean = sum(predictions[t.id] is None for t in clean)
        acc_mis, acc_clean = _rate(hit_mis, len(mis)), _rate(hit_clean, len(clean))
        return {
            # ProcessBench's F1: the harmonic mean of the two accuracies (first error exact / no error found)
            "f1": round(2 * acc_mis * acc_clean / (acc_mis + acc_clean), 2) if acc_mis is not None and
            acc_clean is not None and acc_mis + acc_clean > 0 else (0.0 if acc_mis == 0 == acc_clean else None),
            "n": len(scored),
            "n_mistake": len(mis),
            "n_no_mistake": len(clean),
            "missing": len(ts) - len(scored),
            "accuracy_mistake": _rate(hit_mis, len(mis)),
            "accuracy_no_mistake": _rate(hit_clean, len(clean)),
            "accuracy_overall": _rate(hit_mis + hit_clean, len(scored)),
            "weighted_f1": weighted_f1([t.has_mistake for t in scored], [predictions[t.id] is not None for t in scored]),
        }

    by_task: dict[str, list[Trace]] = {}
    for t in traces:
        by_task.setdefault(t.task, []).append(t)
    per_task = {task: block(ts) for task, ts in by_task.items()}
    rates = [v["accuracy_overall"] for v in per_task.values() if v["accuracy_overall"] is not None]
    return {
        "overall": block(traces),
        "tasks": per_task,
        "mean_task_accuracy_overall": round(sum(rates) / len(rates), 2) if rates else None,
    }


def always_null_predictions(traces: Sequence[Trace]) -> dict[str, Prediction]:
    return {t.id: None for t in traces}


def majority_predictions(traces: Sequence[Trace], train: Sequence[Trace] | None = None) -> dict[str, Prediction]:
    """Per task, the most common label (an index or None) in `train` (default: the traces themselves),
    clipped to None where a trace is too short for it."""
    counts: dict[str, Counter] = {}
    for t in train if train is not None else traces:
        counts.setdefault(t.task, Counter())[t.mistake_index] += 1
    # Ties break towards None, then the smaller index, so the baseline is deterministic.
    majority = {task: min(c.items(), key=lambda kv: (-kv[1], kv[0] is not None, kv[0] or 0))[0] for task, c in counts.items()}
    out = {}
    for t in traces:
        m = majority.get(t.task)
        out[t.id] = m if m is not None and m < len(t.steps) else None
    return out


def random_expected_scores(traces: Sequence[Trace]) -> dict[str, Any]:
    """Expected metrics of guessing uniformly among {no mistake, step 0, ..., step n-1}; computed exactly,
    so the baseline needs no seed."""

    def block(ts: Sequence[Trace]) -> dict[str, Any]:
        mis = [t for t in ts if t.has_mistake]
        clean = [t for t in ts if not t.has_mistake]
        p = lambda t: 1.0 / (len(t.steps) + 1)  # noqa: E731
        e_mis, e_clean = sum(p(t) for t in mis), sum(p(t) for t in clean)
        return {
            "n": len(ts),
            "accuracy_mistake": _rate(e_mis, len(mis)),
            "accuracy_no_mistake": _rate(e_clean, len(clean)),
            "accuracy_overall": _rate(e_mis + e_clean, len(ts)),
        }

    by_task: dict[str, list[Trace]] = {}
    for t in traces:
        by_task.setdefault(t.task, []).append(t)
    return {"overall": block(traces), "tasks": {task: block(ts) for task, ts in by_task.items()}}


def baselines(traces: Sequence[Trace]) -> dict[str, Any]:
    return {
        "always_null": mistake_finding_scores(traces, always_null_predictions(traces)),
        "majority_index": mistake_finding_scores(traces, majority_predictions(traces)),
        "random_uniform_expected": random_expected_scores(traces),
    }


# The paper's Table 4 (accuracy of finding the first mistake, %): GPT-4's overall figure, for context in
# reports (issue 15 cites it as direct step-level prompting). Source: Tyen et al. 2023, arXiv 2311.08516.
PAPER_TABLE4_GPT4_OVERALL = 52.87
# Table 7: a small fine-tuned model evaluated on a held-out task (leave-one-task-out), mean 25.1.
PAPER_TABLE7_HELD_OUT_MEAN = 25.1

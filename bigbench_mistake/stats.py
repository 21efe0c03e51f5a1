"""Per-task figures of a set of traces (the dataset card's numbers)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from .records import Trace
from .tasks import task_spec


def answer_status(trace: Trace) -> str:
    """'correct' | 'wrong' | 'invalid' for the stored answer field (stripped, option letter for MC)."""
    if trace.target is None:
        return "no target"
    return task_spec(trace.task).score_stored(trace.answer, trace.target).status


def task_stats(traces: Sequence[Trace]) -> dict[str, Any]:
    statuses = Counter(answer_status(t) for t in traces)
    with_mistake = [t for t in traces if t.has_mistake]
    noise = [t.id for t in traces if not t.has_mistake and answer_status(t) in ("wrong", "invalid")]
    return {
        "traces": len(traces),
        "with_mistake": len(with_mistake),
        "without_mistake": len(traces) - len(with_mistake),
        "correct_answers": statuses["correct"],
        "wrong_answers": statuses["wrong"],
        "invalid_answers": statuses["invalid"],
        "no_target": statuses["no target"],
        "mean_steps": round(sum(len(t.steps) for t in traces) / max(len(traces), 1), 2),
        "mistake_index_distribution": dict(sorted(Counter(t.mistake_index for t in with_mistake).items())),
        "label_noise_no_mistake_but_wrong": len(noise),
        "label_noise_ids": noise,
    }


def dataset_stats(traces: Sequence[Trace]) -> dict[str, Any]:
    by_task: dict[str, list[Trace]] = {}
    for t in traces:
        by_task.setdefault(t.task, []).append(t)
    per_task = {task: task_stats(ts) for task, ts in by_task.items()}
    total = task_stats(list(traces))
    total.pop("mistake_index_distribution")
    return {"tasks": per_task, "total": total}

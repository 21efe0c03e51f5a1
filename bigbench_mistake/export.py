"""Exports: TRL's stepwise-supervision shape, and a seeded, puzzle-aware DatasetDict split."""
from __future__ import annotations

import random
from typing import Any, Sequence

from .dataset import group_key, to_hf_dataset
from .records import Trace
from .tasks import format_step, task_spec


def stepwise_example(trace: Trace) -> dict[str, Any]:
    """{prompt, completions, labels}: steps before the first mistake True, the mistake False, later
    steps dropped (their correctness is undefined once the trace has gone wrong)."""
    last = len(trace.steps) if trace.mistake_index is None else trace.mistake_index + 1
    return {
        "prompt": task_spec(trace.task).question(trace.input),
        "completions": [format_step(i, s) for i, s in enumerate(trace.steps[:last])],
        "labels": [i != trace.mistake_index for i in range(last)],
        "task": trace.task,
        "id": trace.id,
    }


def split_by_group(traces: Sequence[Trace], test_fraction: float, seed: int) -> tuple[list[Trace], list[Trace]]:
    """Whole groups (see `group_key`) go to one side; per task, so every task is in both splits."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = random.Random(seed)
    train: list[Trace] = []
    test: list[Trace] = []
    by_task: dict[str, dict[str, list[Trace]]] = {}
    for t in traces:
        by_task.setdefault(t.task, {}).setdefault(group_key(t), []).append(t)
    for task in by_task:
        groups = list(by_task[task].values())
        rng.shuffle(groups)
        n_total = sum(len(g) for g in groups)
        taken = 0
        for g in groups:
            if taken < test_fraction * n_total:
                test.extend(g)
                taken += len(g)
            else:
                train.extend(g)
    return train, test


def hf_split(traces: Sequence[Trace], test_fraction: float = 0.2, seed: int = 0):
    import datasets

    train, test = split_by_group(traces, test_fraction, seed)
    return datasets.DatasetDict({"train": to_hf_dataset(train), "test": to_hf_dataset(test)})

"""Locators that need no model: random (the paper's Table 6 baseline) and the simulated reward model.

Both draw per trace from `random.Random(f"{seed}:{name}:{trace.id}")`, so a trace's answer does not
depend on which other traces share the batch, and reruns with the same seed agree.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Sequence

from bigbench_mistake.records import Trace

from .locator import one_hot


def label_distribution(traces: Sequence[Trace]) -> dict[str, Counter]:
    """Per task, how often each label (a step index or None) occurs."""
    dist: dict[str, Counter] = {}
    for t in traces:
        dist.setdefault(t.task, Counter())[t.mistake_index] += 1
    return dist


def _draw(rng: random.Random, counts: Counter, n_steps: int, exclude: object = "<nothing>") -> int | None:
    """A label drawn from `counts`, kept to ones valid for the trace and not `exclude`; uniform over the
    valid labels when the distribution has none of them."""
    choices = [(lab, c) for lab, c in sorted(counts.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
               if (lab is None or lab < n_steps) and lab != exclude]
    if not choices:
        valid = [lab for lab in [*range(n_steps), None] if lab != exclude]
        return rng.choice(valid)
    labels, weights = zip(*choices)
    return rng.choices(labels, weights=weights, k=1)[0]


class RandomLocator:
    """A step chosen uniformly at random; with `distribution`, a label drawn from the task's labels."""

    def __init__(self, seed: int = 0, distribution: dict[str, Counter] | None = None):
        self.seed = seed
        self.distribution = distribution
        self.name = "random:dist" if distribution is not None else "random"

    def choose(self, trace: Trace) -> int | None:
        rng = random.Random(f"{self.seed}:{self.name}:{trace.id}")
        if self.distribution is None:
            return rng.randrange(len(trace.steps))
        return _draw(rng, self.distribution.get(trace.task, Counter()), len(trace.steps))

    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        return [one_hot(len(t.steps), self.choose(t)) for t in traces]


class SimulatedLocator:
    """The paper's simulated reward model: with probability `accuracy` the gold label; otherwise a label
    drawn from the task's label distribution that is guaranteed to differ from the gold one."""

    def __init__(self, accuracy: float, distribution: dict[str, Counter], seed: int = 0):
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"simulated accuracy must be in [0, 1], got {accuracy}")
        self.accuracy = accuracy
        self.distribution = distribution
        self.seed = seed
        self.name = f"simulated:{accuracy:g}"

    def draw(self, trace: Trace) -> tuple[float, int | None]:
        """(u, wrong label) for a trace. Seeded by the seed and trace id only — not the accuracy — so the
        draws are nested across accuracies: the gold label at X is kept at every X' > X, and a wrong label
        is always the same one. That is what lets `bbm simulate` reuse two backtracks per trace for a sweep."""
        rng = random.Random(f"{self.seed}:simulated:{trace.id}")
        u = rng.random()
        counts = self.distribution.get(trace.task, Counter())
        return u, _draw(rng, counts, len(trace.steps), exclude=trace.mistake_index)

    def choose(self, trace: Trace) -> tuple[int | None, bool]:
        """(label, whether it is meant to be the gold one)."""
        u, wrong = self.draw(trace)
        return (trace.mistake_index, True) if u < self.accuracy else (wrong, False)

    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        return [one_hot(len(t.steps), self.choose(t)[0]) for t in traces]

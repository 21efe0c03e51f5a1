"""The locator interface: step scores for a batch of traces, and one pure rule from scores to an index.

`scores(traces)[i][j]` is the probability that step j of trace i is the first logical mistake given
the question and steps 0..j-1 (i.e. that it is wrong, given that the steps before it are right).
A locator whose score of step j reads nothing after step j (the trained classifiers, the checks)
says so with `causal = True`: its verdict on a trace's first j+1 steps then holds for any ending
(backtracking uses that to reject a sample before finishing its trace). A prompt-based finder that
reads the whole trace is not causal.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from bigbench_mistake.records import Trace


@runtime_checkable
class Locator(Protocol):
    name: str

    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        ...


def first_mistake(step_scores: Sequence[float], threshold: float = 0.5) -> int | None:
    """The first step whose score reaches the threshold, or None (no mistake)."""
    for j, s in enumerate(step_scores):
        if s >= threshold:
            return j
    return None


DEFAULT_THRESHOLD = 0.5  # for locators that fitted none (gold, random, simulated: their scores are 0/1)


def decision_threshold(locator: Locator, override: float | None = None) -> float:
    """The threshold a command applies: `override` when the user gave one (--threshold), else the
    locator's own (a trained locator carries the one it fitted), else 0.5."""
    if override is not None:
        return override
    own = getattr(locator, "threshold", None)
    return DEFAULT_THRESHOLD if own is None else float(own)


def locate(locator: Locator, traces: Sequence[Trace], threshold: float | None = None) -> list[int | None]:
    """First-mistake indices; `threshold=None` means the locator's own (see decision_threshold)."""
    th = decision_threshold(locator, threshold)
    return [first_mistake(s, th) for s in locator.scores(traces)]


def one_hot(n_steps: int, index: int | None) -> list[float]:
    return [1.0 if j == index else 0.0 for j in range(n_steps)]


class GoldLocator:
    """The dataset's label (an upper bound; what the paper's Table 6 calls 'mistake step')."""

    name = "gold"

    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        return [one_hot(len(t.steps), t.mistake_index) for t in traces]

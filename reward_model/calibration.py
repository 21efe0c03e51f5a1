"""Setting the decision for traces from a new source. A locator's threshold is fitted where it was
trained (BIG-Bench Mistake: ~70% of traces hold a mistake); on a source whose mistake rate differs,
the same threshold flags too many or too few traces. Two measured ways to set it for the new source:

- `flag_rate_threshold`: the user knows (or guesses) the share of traces with a mistake there; the
  threshold flags that share of the new traces (a trace is flagged when its highest step score
  reaches the threshold), needing no labels.
- `labelled_threshold`: a small labelled sample of the new source; the threshold that maximises F1
  (harmonic mean of first-error accuracy and no-error accuracy) on it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from bigbench_mistake.records import Trace

from .locator import first_mistake


def flag_rate_threshold(scores: Sequence[Sequence[float]], rate: float) -> float:
    """The threshold at which a `rate` share of the traces have a step scored at or above it."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"flag rate must be in [0, 1], got {rate}")
    peaks = np.sort([max(s) if len(s) else 0.0 for s in scores])[::-1]
    if rate == 0.0 or not len(peaks):
        return float(np.nextafter(peaks[0], np.inf)) if len(peaks) else 1.0
    k = max(1, int(round(rate * len(peaks))))
    return float(peaks[k - 1])


def f1(traces: Sequence[Trace], predictions: Sequence[int | None]) -> float:
    mis = [(t, p) for t, p in zip(traces, predictions) if t.has_mistake]
    clean = [(t, p) for t, p in zip(traces, predictions) if not t.has_mistake]
    a = sum(p == t.mistake_index for t, p in mis) / len(mis) if mis else 0.0
    b = sum(p is None for _, p in clean) / len(clean) if clean else 0.0
    return 2 * a * b / (a + b) if a + b else 0.0


def labelled_threshold(traces: Sequence[Trace], scores: Sequence[Sequence[float]]) -> float:
    """The threshold (among the sample's own step scores) with the highest F1 on the labelled sample."""
    if not traces:
        raise ValueError("calibration needs at least one labelled trace")
    candidates = sorted({round(x, 6) for s in scores for x in s} | {1.0 + 1e-9})
    best = max(candidates, key=lambda th: (f1(traces, [first_mistake(s, th) for s in scores]), -abs(th - 0.5)))
    return float(best)

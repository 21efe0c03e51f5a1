"""95% bootstrap intervals over questions, for accuracies and for differences between two strategies
answered on the same questions (paired: each resample draws questions, and both strategies are scored
on the drawn ones), or on different questions (unpaired: each side resampled on its own). Seeded, so a
summary recomputed from the same records gives the same intervals."""
from __future__ import annotations

from typing import Sequence

import numpy as np

N_RESAMPLES = 2000
SEED = 0


def _resampled_means(columns: np.ndarray, seed: int) -> np.ndarray:
    """Means of each column over N_RESAMPLES resamples of the rows (questions), in percent."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(columns), size=(N_RESAMPLES, len(columns)))
    return 100.0 * columns[idx].mean(axis=1)


def accuracy_interval(correct: Sequence[bool], seed: int = SEED) -> list[float] | None:
    """[low, high] of the 95% percentile interval of the accuracy (percent); None without questions."""
    if not correct:
        return None
    means = _resampled_means(np.asarray(correct, dtype=float)[:, None], seed)[:, 0]
    return [round(float(np.percentile(means, 2.5)), 2), round(float(np.percentile(means, 97.5)), 2)]


def difference_interval(a: Sequence[bool], b: Sequence[bool], seed: int = SEED) -> dict[str, object] | None:
    """Accuracy of a minus accuracy of b on the same questions, with its paired 95% interval; `real` is
    True when the interval leaves out 0 (the data support a difference)."""
    if len(a) != len(b):
        raise ValueError(f"paired interval needs the same questions: {len(a)} vs {len(b)}")
    if not a:
        return None
    cols = np.stack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)], axis=1)
    means = _resampled_means(cols, seed)
    return _difference(cols[:, 0].mean() - cols[:, 1].mean(), means[:, 0] - means[:, 1])


def unpaired_difference_interval(a: Sequence[bool], b: Sequence[bool],
                                 seed: int = SEED) -> dict[str, object] | None:
    """Accuracy of a minus accuracy of b on different questions (two runs, or fresh questions against
    the dataset's), each side resampled on its own; the same fields as difference_interval."""
    if not a or not b:
        return None
    a_, b_ = np.asarray(a, dtype=float)[:, None], np.asarray(b, dtype=float)[:, None]
    diffs = _resampled_means(a_, seed)[:, 0] - _resampled_means(b_, seed + 1)[:, 0]
    return _difference(a_.mean() - b_.mean(), diffs)


def _difference(observed: float, diffs: np.ndarray) -> dict[str, object]:
    """The observed difference (a fraction) and the 95% percentile interval of the resampled ones
    (percent); `real` when the interval leaves out 0."""
    low, high = float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))
    return {"difference": round(100.0 * observed, 2),
            "interval": [round(low, 2), round(high, 2)], "real": bool(low > 0 or high < 0)}

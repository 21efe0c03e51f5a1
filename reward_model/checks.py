"""The hand-written checks as a locator, with no learning: a step scores 1 when any `check_` feature of
the chosen feature set fires on it (reward_model/features), else 0. It needs no training and no
labels, so it runs on traces of any task, and it is the baseline a trained locator must beat (the
gain of learning: `bbm rm eval` puts both side by side)."""
from __future__ import annotations

from typing import Sequence

from bigbench_mistake.records import Trace

from .features import FEATURE_SETS, checks_fired, contexts, numeric_features


class ChecksLocator:
    causal = True  # the checks of a step read the question, the steps before it and the step

    def __init__(self, feature_set: str = "all"):
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"'checks' takes a feature set ({' | '.join(FEATURE_SETS)}), got {feature_set!r}")
        self.groups = FEATURE_SETS[feature_set]
        self.name = f"checks:{feature_set}"

    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        return [[float(checks_fired(numeric_features(c, self.groups))) for c in contexts(t)] for t in traces]

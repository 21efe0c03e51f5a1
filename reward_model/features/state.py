"""How did the state carried from the previous step change?

State is read generically as `Key: value` pairs (`Alice: Gatsby, Bob: Ulysses`, `stack: { [`).
Two task-blind rules: when the same keys carry values from step to step, the values are conserved
(a reassignment moves values, it does not invent them); a value that is a sequence of symbols changes
by at most one symbol at its end per step.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from . import StepContext

_PAIR = re.compile(r"(?:(?<=^)|(?<=[\s,;:]))([A-Z][a-z]+|stack)\s*:\s*([^,;\n]+?)(?=,|;|\.\s|\.$|$)")


@lru_cache(maxsize=65536)
def _state_cached(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(state_of(text).items())


def state_of(text: str) -> dict[str, str]:
    return {k: v.strip().strip('"').strip() for k, v in _PAIR.findall(text.strip())}


def _symbols(value: str) -> list[str] | None:
    """A value made only of bracket-like symbols (or 'empty'), as a list; None otherwise."""
    if value == "empty":
        return []
    toks = value.split()
    return toks if toks and all(re.fullmatch(r"[^\w\s]", t) for t in toks) else None


def features(ctx: StepContext) -> dict[str, float]:
    cur = dict(_state_cached(ctx.step))
    prev: dict[str, str] = {}
    for p in reversed(ctx.previous):
        prev = dict(_state_cached(p))
        if prev:
            break
    shared = set(cur) & set(prev)
    changed = [k for k in shared if cur[k] != prev[k]]
    conserved_violation = bool(shared) and set(cur) == set(prev) and len(cur) > 1 and \
        Counter(cur.values()) != Counter(prev.values())
    seq_jump = 0.0
    grow = shrink = 0
    for k in shared:
        a, b = _symbols(prev[k]), _symbols(cur[k])
        if a is None or b is None:
            continue
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        grow, shrink = len(b) - common, len(a) - common
        seq_jump = float(grow + shrink > 1)
    return {
        "n_keys": min(len(cur), 8) / 8.0,
        "n_changed": min(len(changed), 8) / 8.0,
        "frac_changed": len(changed) / len(shared) if shared else 0.0,
        "check_not_conserved": float(conserved_violation),
        "check_sequence_jump": seq_jump,
        "seq_grow": float(grow),
        "seq_shrink": float(shrink),
    }

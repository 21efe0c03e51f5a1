"""How did the state carried from the previous step change?

State is read generically as `Key: value` pairs (`Alice: Gatsby, Bob: Ulysses`, `stack: { [`).
Task-blind rules: when the same keys carry values from step to step, the values are conserved
(a reassignment moves values, it does not invent them); a value that is a sequence of symbols changes
by at most one symbol at its end per step, and a symbol it gains is the one the step names first.
The symbol walk: when steps take the question's symbols one at a time (each step opens with one
symbol of the question), the k-th such step must open with the question's k-th symbol. A step that
quotes symbols after the state was carried is compared with that state (as is, or reversed).
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


@lru_cache(maxsize=65536)
def _lead_symbol(text: str) -> str | None:
    head = text.strip().split(" ", 1)[0] if text.strip() else ""
    return head if re.fullmatch(r"[^\w\s\"']", head) else None


@lru_cache(maxsize=4096)
def _question_symbols(question: str) -> tuple[tuple[str, ...], frozenset[str]]:
    symbols = tuple(t for t in question.split() if re.fullmatch(r"[^\w\s\"']", t))
    return symbols, frozenset(symbols)


def _walk(ctx: StepContext) -> tuple[float, float]:
    """(is a walk step, opens with the wrong symbol of the question)."""
    lead = _lead_symbol(ctx.step)
    if lead is None:
        return 0.0, 0.0
    symbols, known = _question_symbols(ctx.question)
    if lead not in known:
        return 0.0, 0.0
    k = sum(1 for p in ctx.previous if _lead_symbol(p) in known)
    return 1.0, float(k >= len(symbols) or symbols[k] != lead)


def _quoted_vs_state(ctx: StepContext, prev: dict[str, str]) -> tuple[float, float, float]:
    seqs = [v for v in (_symbols(x) for x in prev.values()) if v is not None]
    quoted = re.findall(r'"([^"]*)"', ctx.step)
    said = [t for q in quoted for t in q.split()]
    if not seqs or not quoted or not said or not all(re.fullmatch(r"[^\w\s]", t) for t in said):
        return 0.0, 0.0, 0.0
    state = seqs[0]
    return 1.0, float(said == state), float(said == list(reversed(state)))


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
    gained_other = 0.0
    for k in shared:
        a, b = _symbols(prev[k]), _symbols(cur[k])
        if a is None or b is None:
            continue
        common = 0
        while common < min(len(a), len(b)) and a[common] == b[common]:
            common += 1
        grow, shrink = len(b) - common, len(a) - common
        seq_jump = float(grow + shrink > 1)
        lead = _lead_symbol(ctx.step)
        gained_other = float(grow == 1 and lead is not None and b[-1] != lead)
    # The keys a step names before its state (`Alice and Claire swap: ...`) are the ones that change.
    head = ctx.step.split(":", 1)[0] if cur else ""
    named = {w for w in re.findall(r"[A-Z][a-z]+", head) if w in cur}
    changed_not_named = float(bool(named) and len(shared) > 1 and set(changed) != named)
    walking, wrong_walk = _walk(ctx)
    if not prev:
        for p in reversed(ctx.previous):
            if (prev := dict(_state_cached(p))):
                break
    quotes_state, quoted_same, quoted_reversed = _quoted_vs_state(ctx, prev) if not cur else (0.0, 0.0, 0.0)
    return {
        "walking": walking,
        "check_walk_order": wrong_walk,
        "check_changed_not_named": changed_not_named,
        "check_gained_other_symbol": gained_other,
        "quotes_symbols": quotes_state,
        "quoted_equals_state": quoted_same,
        "quoted_equals_reversed_state": quoted_reversed,
        "n_keys": min(len(cur), 8) / 8.0,
        "n_changed": min(len(changed), 8) / 8.0,
        "frac_changed": len(changed) / len(shared) if shared else 0.0,
        "check_not_conserved": float(conserved_violation),
        "check_sequence_jump": seq_jump,
        "seq_grow": float(grow),
        "seq_shrink": float(shrink),
    }

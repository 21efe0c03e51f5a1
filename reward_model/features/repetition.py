"""Does the step repeat or contradict an earlier step?

Repeating an earlier step word for word is a loop. A contradiction is the same claim slot
(`<subject> is <value>`, `<key>: <value>`) given a different value than the question gave it.
"""
from __future__ import annotations

import re
from functools import lru_cache

from . import StepContext

_TOKEN = re.compile(r"\w+|[^\w\s]")
_CLAIM = re.compile(r"\bthe ([a-z]+(?: [a-z]+)?) is (?:the )?([a-z][a-z-]+)\b")


@lru_cache(maxsize=65536)
def _tokens(text: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(text.lower()))


@lru_cache(maxsize=65536)
def _claims_cached(text: str) -> dict[str, str]:
    return _claims(text)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _claims(text: str) -> dict[str, str]:
    return {k: v for k, v in _CLAIM.findall(text.lower())}


def features(ctx: StepContext) -> dict[str, float]:
    tokens = _tokens(ctx.step)
    # Similarity to the last few steps is what a loop shows; comparing with all of them costs n^2.
    sims = [_jaccard(tokens, _tokens(p)) for p in ctx.previous[-8:]]
    exact = any(ctx.step.strip() == p.strip() for p in ctx.previous)
    # Repeating the previous step's new content exactly after one step in between is the typical loop.
    repeat_two_back = len(ctx.previous) >= 2 and _jaccard(tokens, _tokens(ctx.previous[-2])) > 0.95
    given = _claims_cached(ctx.question)
    said = _claims(ctx.step)
    contradictions = sum(1 for k, v in said.items() if k in given and given[k] != v)
    return {
        "max_similarity": max(sims, default=0.0),
        "prev_similarity": sims[-1] if sims else 0.0,
        "exact_repeat": float(exact),
        "repeat_two_back": float(repeat_two_back),
        "contradicts_question": float(contradictions > 0),
    }

"""Does the step mention things absent from the question and the earlier steps?"""
from __future__ import annotations

import re
from functools import lru_cache

from . import StepContext

_WORD = re.compile(r"[a-z][a-z']{2,}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r'"([^"]{1,60})"')


@lru_cache(maxsize=65536)
def _vocab(text: str) -> tuple[frozenset[str], frozenset[str]]:
    low = text.lower()
    return frozenset(_WORD.findall(low)), frozenset(_NUMBER.findall(low))


@lru_cache(maxsize=65536)
def _seen(texts: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """Words and numbers of the question and the earlier steps, built one step at a time."""
    if len(texts) == 1:
        return _vocab(texts[0])
    w0, n0 = _seen(texts[:-1])
    w1, n1 = _vocab(texts[-1])
    return w0 | w1, n0 | n1


def features(ctx: StepContext) -> dict[str, float]:
    context = (ctx.question + "\n" + "\n".join(ctx.previous)).lower()
    seen_words, seen_numbers = _seen((ctx.question, *ctx.previous))
    words, numbers = _vocab(ctx.step)
    new_words = words - seen_words
    new_numbers = numbers - seen_numbers
    quoted = set(_QUOTED.findall(ctx.step.lower()))
    # A quoted string may span several question words; it is new when it appears nowhere before.
    new_quoted = {q for q in quoted if q not in context}
    return {
        "frac_new_words": len(new_words) / len(words) if words else 0.0,
        "n_new_words": min(len(new_words), 10) / 10.0,
        "n_new_numbers": min(len(new_numbers), 10) / 10.0,
        "any_new_quoted": float(bool(new_quoted)),
        "frac_new_quoted": len(new_quoted) / len(quoted) if quoted else 0.0,
    }

"""Does the step mention things absent from the question and the earlier steps?"""
from __future__ import annotations

import re

from . import StepContext

_WORD = re.compile(r"[a-z][a-z']{2,}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_QUOTED = re.compile(r'"([^"]{1,60})"')


def features(ctx: StepContext) -> dict[str, float]:
    context = (ctx.question + "\n" + "\n".join(ctx.previous)).lower()
    step = ctx.step.lower()
    seen_words = set(_WORD.findall(context))
    words = set(_WORD.findall(step))
    new_words = words - seen_words
    seen_numbers = set(_NUMBER.findall(context))
    new_numbers = set(_NUMBER.findall(step)) - seen_numbers
    quoted = set(_QUOTED.findall(step))
    # A quoted string may span several question words; it is new when it appears nowhere before.
    new_quoted = {q for q in quoted if q not in context}
    return {
        "frac_new_words": len(new_words) / len(words) if words else 0.0,
        "n_new_words": min(len(new_words), 10) / 10.0,
        "n_new_numbers": min(len(new_numbers), 10) / 10.0,
        "any_new_quoted": float(bool(new_quoted)),
        "frac_new_quoted": len(new_quoted) / len(quoted) if quoted else 0.0,
    }

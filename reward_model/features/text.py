"""Surface features of the step's text (the bag of words is built by the model from `step_text`)."""
from __future__ import annotations

import math
import re

from . import StepContext

_WORD = re.compile(r"[A-Za-z]+")


def features(ctx: StepContext) -> dict[str, float]:
    words = _WORD.findall(ctx.step)
    return {
        "position": min(ctx.index, 40) / 40.0,
        "is_first": float(ctx.index == 0),
        "log_chars": math.log1p(len(ctx.step)),
        "n_words": min(len(words), 200) / 200.0,
        "gives_answer": float(bool(re.search(r"[Tt]he answer is", ctx.step))),
        "hedges": float(bool(re.search(r"\b(maybe|perhaps|assume|guess|not sure|probably)\b", ctx.step, re.I))),
    }

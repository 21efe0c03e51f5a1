"""Step features: named groups, each a small module with `features(ctx) -> dict[str, float]`.

A feature whose name starts with `check_` is a hand-written check: > 0 means "this step looks
wrong". `checks_fired` and the checks-only locator use exactly those, so the gain from training on
top of the checks stays measurable. Generic groups never look at `ctx.task`; only `task_specific`
does, and it is left out by the `generic` feature set.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from bigbench_mistake.records import Trace


@dataclass(frozen=True)
class StepContext:
    """What a step's score may depend on: the question, the steps before it, and the step."""

    task: str
    question: str
    previous: tuple[str, ...]
    step: str

    @property
    def index(self) -> int:
        return len(self.previous)


def contexts(trace: Trace) -> list[StepContext]:
    return [StepContext(trace.task, trace.input, tuple(trace.steps[:j]), s) for j, s in enumerate(trace.steps)]


def _groups() -> dict[str, Callable[[StepContext], dict[str, float]]]:
    from . import arithmetic, letters, novelty, repetition, state, task_specific, text

    return {
        "text": text.features,
        "arithmetic": arithmetic.features,
        "letters": letters.features,
        "novelty": novelty.features,
        "repetition": repetition.features,
        "state": state.features,
        "task_specific": task_specific.features,
    }


# Bumped whenever some step's feature values change (2: units, percents and clock times in the
# arithmetic check; the unsourced-operand check). The cached default model's key holds it, so a model
# trained on older features is never scored with newer ones.
FEATURES_VERSION = 2

GENERIC_GROUPS = ("text", "arithmetic", "letters", "novelty", "repetition", "state")
ALL_GROUPS = GENERIC_GROUPS + ("task_specific",)
FEATURE_SETS = {"all": ALL_GROUPS, "generic": GENERIC_GROUPS}


def numeric_features(ctx: StepContext, groups: Sequence[str]) -> dict[str, float]:
    """Every numeric feature of the named groups, names prefixed by their group, plus the pooled checks."""
    table = _groups()
    out: dict[str, float] = {}
    for g in groups:
        if g not in table:
            raise ValueError(f"unknown feature group {g!r}; known: {', '.join(table)}")
        for name, value in table[g](ctx).items():
            out[_key(g, name)] = float(value)
    return pooled(out)


@lru_cache(maxsize=4096)
def _key(group: str, name: str) -> str:
    return f"{group}.{name}"


def pooled(feats: dict[str, float]) -> dict[str, float]:
    """Add `pooled.any_check` / `pooled.n_checks` over the groups present. A check that only ever fires
    on one task cannot get a weight when that task is held out; the pooled flag carries what the other
    checks taught ("a check fired here") to it."""
    out = {k: v for k, v in feats.items() if not k.startswith("pooled.")}
    fired = [v > 0 for k, v in out.items() if _is_check(k)]
    out["pooled.any_check"] = float(any(fired))
    out["pooled.n_checks"] = float(min(sum(fired), 3))
    return out


@lru_cache(maxsize=4096)
def _is_check(name: str) -> bool:
    return name.split(".", 1)[1].startswith("check_")


def checks_fired(feats: dict[str, float]) -> bool:
    return any(v > 0 for k, v in feats.items() if _is_check(k))


def step_text(ctx: StepContext) -> str:
    """The text the bag-of-words part sees: the step in the shared format (same at train and inference)."""
    from bigbench_mistake.tasks import format_step

    return format_step(ctx.index, ctx.step)

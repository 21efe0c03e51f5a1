"""Prompting strategies behind one signature, registered in one dict (`bbm compare` loops over it).

    strategy(items, config, generator, locator) -> list[StrategyResult]   (one result per item, in order)

Items are questions (task, id, input, target). Every strategy sees the LM through a `CountingLM`,
so tokens generated (sum of Step.n_tokens) and model calls (one per Step returned: 3 greedy requests
are 3 calls, a request for n samples is n calls; a loglikelihood call is 1 call per prompt it scores,
whatever the number of continuations) are counted the same way for every strategy.
A locator that asks the same model (the prompt-based finders) is built on the same counting
generator by the caller, so its calls are charged to the strategy that used it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from bigbench_mistake.questions import Question, questions_from_traces, read_questions  # noqa: F401 (re-exported)
from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import get_task
from reward_model.locator import Locator, locate

from backtrack.methods.backtracking import ACCEPTS, SELECTIONS
from backtrack.methods.decoding import (MAX_STEP_TOKENS, MAX_STEPS, STEP_CAP_FACTOR, STOP_REPEATS, DecodeConfig,
                                        TraceRequest, decode_traces, with_loop_rule)
from backtrack.lm.generator import LM
from backtrack.lm.wrappers import CountingLM
from backtrack.methods.least_to_most import least_to_most as run_least_to_most
from backtrack.methods.self_consistency import extract_ballots, majority_vote, sample_traces, weighted_vote, winning_sample


# ------------------------------------------------------------------ items
# A strategy's item is a question (bigbench_mistake.questions); `Item` is its name here.
Item = Question
items_from_traces = questions_from_traces


# ------------------------------------------------------------------ config and results
@dataclass(frozen=True)
class StrategyConfig:
    max_steps: int = MAX_STEPS  # cap on the Thoughts of one trace
    max_step_tokens: int = MAX_STEP_TOKENS  # cap on the tokens of one step
    stop_repeats: int = STOP_REPEATS  # a trace stops after this many identical steps in a row (0: never)
    step_cap_factor: float = STEP_CAP_FACTOR  # and at this times its task's longest dataset trace (0: no such cap)
    seed: int = 0
    # self-consistency (Wang et al. 2022)
    sc_samples: int = 8
    sc_temperature: float = 0.7
    sc_top_k: int | None = None
    sc_top_p: float | None = None
    # sc-weighted: weight of a trace with a located mistake (1.0 without); see self_consistency.py
    located_weight: float = 0.5
    threshold: float | None = None  # first_mistake threshold on locator scores; None: the locator's own
    # backtrack: the paper's algorithm by default; the guarded variants judge with the same locator
    bt_selection: str = "logprob"
    bt_accept: str = "always"
    bt_samples: int = 8
    bt_temperature: float = 1.0
    # least-to-most (Zhou et al. 2022)
    ltm_max_subquestions: int = 8
    ltm_decompose_tokens: int = 192

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.max_step_tokens < 1 or self.ltm_decompose_tokens < 1:
            raise ValueError("max_steps, max_step_tokens and ltm_decompose_tokens must be >= 1")
        if self.sc_samples < 1:
            raise ValueError("sc_samples must be >= 1")
        if self.sc_temperature <= 0:
            raise ValueError("sc_temperature must be > 0 (self-consistency samples)")
        if self.sc_top_k is not None and self.sc_top_k < 1:
            raise ValueError("sc_top_k must be >= 1 when given")
        if self.sc_top_p is not None and not 0 < self.sc_top_p <= 1:
            raise ValueError("sc_top_p must be in (0, 1] when given")
        if not 0 <= self.located_weight <= 1:
            raise ValueError("located_weight must be in [0, 1]")
        if self.threshold is not None and not 0 < self.threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if self.bt_selection not in SELECTIONS or self.bt_accept not in ACCEPTS:
            raise ValueError(f"bt_selection must be one of {SELECTIONS} and bt_accept one of {ACCEPTS}")
        if self.bt_samples < 1 or self.bt_temperature <= 0:
            raise ValueError("bt_samples must be >= 1 and bt_temperature > 0")
        if self.ltm_max_subquestions < 1:
            raise ValueError("ltm_max_subquestions must be >= 1")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for name, paper in (("bt_selection", "logprob"), ("bt_accept", "always"), ("stop_repeats", 0),
                            ("step_cap_factor", 0),
                            ("bt_samples", 8), ("bt_temperature", 1.0)):
            if d[name] == paper:
                del d[name]  # compare runs written before these options existed still resume
        return with_loop_rule(d)


@dataclass
class StrategyResult:
    strategy: str
    item: Item
    steps: list[str]
    answer: str | None  # normalised answer; None when invalid
    correct: bool
    invalid_reason: str | None
    tokens: int  # tokens generated (sum of Step.n_tokens over every call, kept or not)
    calls: int  # model calls (see the module docstring)
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The dataset's shape (input, steps, answer, target, mistake_index=None: unlabelled) plus costs."""
        return {"key": f"{self.strategy}::{self.item.id}", "strategy": self.strategy, "task": self.item.task,
                "id": self.item.id, "input": self.item.input, "steps": self.steps, "answer": self.answer,
                "target": self.item.target, "mistake_index": None, "correct": self.correct,
                "invalid_reason": self.invalid_reason, "tokens": self.tokens, "calls": self.calls,
                "seconds": round(self.seconds, 3), **self.extra}


def counting(generator: LM) -> CountingLM:
    return generator if isinstance(generator, CountingLM) else CountingLM(generator)


def _run_each(name: str, items: Sequence[Item], generator: LM,
              solve: Callable[[Item, CountingLM], tuple[list[str], dict[str, Any]] | tuple[list[str], dict[str, Any], Any]],
              ) -> list[StrategyResult]:
    """Per item: time it, count what it generated, score its final steps."""
    gen = counting(generator)
    out = []
    for item in items:
        spec = get_task(item.task)
        tokens0, calls0 = gen.snapshot()
        start = time.perf_counter()
        steps, extra, *voted = solve(item, gen)
        seconds = time.perf_counter() - start
        if voted:  # a vote decides the answer, not the final trace's last step
            vote = voted[0]
            scored = spec.score_stored(vote.answer, item.target) if vote.answer is not None else None
            answer, invalid = (scored.answer, None) if scored else (None, "every sample invalid")
            correct = bool(scored and scored.correct)
        else:
            scored = spec.score(steps, item.target)
            answer, invalid, correct = scored.answer, scored.invalid_reason, scored.correct
        tokens1, calls1 = gen.snapshot()
        out.append(StrategyResult(name, item, steps, answer, correct, invalid, tokens1 - tokens0, calls1 - calls0,
                                  seconds, extra))
    return out


# ------------------------------------------------------------------ the strategies
def greedy_trace(gen: LM, item: Item, config: StrategyConfig) -> tuple[list[str], str]:
    """Steps and stop reason of the greedy step-wise trace (backtrack/methods/decoding.py)."""
    [t] = decode_traces(gen, [TraceRequest(item.task, item.input)],
                        DecodeConfig(max_steps=config.max_steps, max_tokens=config.max_step_tokens, batch_size=1,
                                     stop_repeats=config.stop_repeats, step_cap_factor=config.step_cap_factor))
    return list(t.steps), t.stop_reason


def cot(items: Sequence[Item], config: StrategyConfig, generator: LM, locator: Locator | None = None
        ) -> list[StrategyResult]:
    """Chain of thought: greedy step-wise decoding on the task's few-shot prompt."""

    def solve(item: Item, gen: LM):
        steps, stop = greedy_trace(gen, item, config)
        return steps, {"stop_reason": stop}

    return _run_each("cot", items, generator, solve)


def _sampled_traces(item: Item, gen: LM, config: StrategyConfig) -> tuple[list[list[str]], list[int]]:
    """The k sampled traces (step texts) and the tokens each cost."""
    spec = get_task(item.task)
    traces = sample_traces(gen, spec, item.input, item.id, config.sc_samples, temperature=config.sc_temperature,
                           seed=config.seed, max_steps=config.max_steps, max_step_tokens=config.max_step_tokens,
                           stop_repeats=config.stop_repeats, step_cap_factor=config.step_cap_factor,
                           top_k=config.sc_top_k, top_p=config.sc_top_p)
    return [texts for texts, _ in traces], [sum(s.n_tokens for s in steps) for _, steps in traces]


def _vote_extra(spec, traces, vote, sample_tokens) -> tuple[list[str], dict[str, Any]]:
    win = winning_sample(spec, traces, vote)
    # The final trace is the first sample that gave the winning answer (the first sample when none did).
    final = traces[win if win is not None else 0]
    # Sample i does not depend on k (its seed is (question, i)), so the first j samples and their
    # tokens are what self-consistency at k=j would have drawn: the record holds every smaller k too.
    return final, {"vote": vote.to_dict(), "winning_sample": win,
                   "sample_answers": [b.answer for b in extract_ballots(spec, traces)],
                   "sample_tokens": sample_tokens, "samples": traces}


def self_consistency(items: Sequence[Item], config: StrategyConfig, generator: LM,
                     locator: Locator | None = None) -> list[StrategyResult]:
    """k traces at temperature T, majority vote over their answers (invalid answers counted, not voted)."""

    def solve(item: Item, gen: LM):
        spec = get_task(item.task)
        traces, tokens = _sampled_traces(item, gen, config)
        vote = majority_vote(spec, traces)
        final, extra = _vote_extra(spec, traces, vote, tokens)
        return final, extra, vote

    return _run_each("self-consistency", items, generator, solve)


def sc_weighted(items: Sequence[Item], config: StrategyConfig, generator: LM,
                locator: Locator | None = None) -> list[StrategyResult]:
    """Self-consistency where a trace with a located mistake weighs config.located_weight (1.0 without)."""
    if locator is None:
        raise ValueError("sc-weighted needs a locator (e.g. --locator prompt:direct-step)")

    def solve(item: Item, gen: LM):
        spec = get_task(item.task)
        traces, tokens = _sampled_traces(item, gen, config)
        as_traces = [Trace(item.task, f"{item.id}#sample{i}", item.input, tuple(t), None, item.target, None)
                     for i, t in enumerate(traces)]
        located = locate(locator, as_traces, config.threshold)
        vote = weighted_vote(spec, traces, located, config.located_weight)
        final, extra = _vote_extra(spec, traces, vote, tokens)
        extra.update(located=located, locator=locator.name)
        return final, extra, vote

    return _run_each("sc-weighted", items, generator, solve)


def backtrack(items: Sequence[Item], config: StrategyConfig, generator: LM,
              locator: Locator | None = None) -> list[StrategyResult]:
    """Chain of thought, then the paper's backtracking at the first mistake the locator names
    (8 samples at temperature 1, highest log-prob survivor, greedy finish; backtrack/methods/backtracking.py)."""
    from backtrack.methods.backtracking import BacktrackConfig, Verifier, backtrack_batch

    if locator is None:
        raise ValueError("backtrack needs a locator (e.g. --locator trained or prompt:direct-step)")
    bt = BacktrackConfig(max_steps=config.max_steps, max_step_tokens=config.max_step_tokens, seed=config.seed,
                         stop_repeats=config.stop_repeats, step_cap_factor=config.step_cap_factor,
                         selection=config.bt_selection, accept=config.bt_accept, n_samples=config.bt_samples,
                         temperature=config.bt_temperature)
    verifier = Verifier(locator, config.threshold) if bt.needs_verifier else None

    def solve(item: Item, gen: LM):
        steps, stop = greedy_trace(gen, item, config)
        trace = Trace(item.task, item.id, item.input, tuple(steps), None, item.target, None)
        [location] = locate(locator, [trace], config.threshold)
        [outcome] = backtrack_batch([trace], [location], gen, bt, verifier=verifier)
        chosen = next((s["text"] for s in outcome.samples if s.get("chosen")), None)
        return list(outcome.steps), {"stop_reason": stop, "location": location, "original_steps": steps,
                                     "backtrack_stop_reason": outcome.stop_reason, "replacement": chosen,
                                     "locator": locator.name}

    return _run_each("backtrack", items, generator, solve)


def least_to_most(items: Sequence[Item], config: StrategyConfig, generator: LM,
                  locator: Locator | None = None) -> list[StrategyResult]:
    """Decomposition, one solve call per sub-question, final answer (backtrack/methods/least_to_most.py)."""

    def solve(item: Item, gen: LM):
        r = run_least_to_most(gen, get_task(item.task), item.input, max_subquestions=config.ltm_max_subquestions,
                              decompose_tokens=config.ltm_decompose_tokens, max_step_tokens=config.max_step_tokens)
        return r.steps, {"subquestions": r.subquestions, "decomposition": r.decomposition,
                         "dropped_subquestions": r.n_dropped_subquestions}

    return _run_each("least-to-most", items, generator, solve)


Strategy = Callable[[Sequence[Item], StrategyConfig, LM, "Locator | None"], list[StrategyResult]]

STRATEGIES: dict[str, Strategy] = {
    "cot": cot,
    "backtrack": backtrack,
    "self-consistency": self_consistency,
    "sc-weighted": sc_weighted,
    "least-to-most": least_to_most,
}

#: strategies that need a locator
NEEDS_LOCATOR = {"sc-weighted", "backtrack"}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}") from None

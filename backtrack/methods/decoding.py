"""Step-wise trace decoding: write a chain of thought one "Thought N:" step at a time, the way the
BIG-Bench Mistake traces were made (the task's few-shot prompt, temperature 0, newline as the stop).

    decode_traces(generator, requests, config) -> list[DecodedTrace]      (one per request, in order)
    iter_decode_traces(generator, requests, config) -> (index, DecodedTrace) as each trace finishes

A TraceRequest is (task, input, steps so far). With no steps it writes a fresh trace; with the steps
a backtracking strategy accepted it "finishes the trace greedily" from there. Each round asks the
generator for the greedy next step of up to `batch_size` unfinished traces at once (a finished
trace's slot goes to the next request, so the batch stays full). The prompt of a step is
`TaskSpec.prompt(input, steps)`: few-shot prompt + question + accepted steps + "Thought N:".

A trace ends, and its stop reason says why:
- "answer":    a step contains an answer per the task's regex (TaskSpec.extract_answer: "the answer is ...");
- "eos":       the model emitted its end-of-sequence token;
- "token_cap": a step reached `max_tokens` without a newline (the step is kept, cut where it stopped);
- "loop":      the last steps are one block of 1 to LOOP_PERIOD steps written `stop_repeats` times in a
               row (a greedy decoder that writes a step, or a cycle of a few steps, several times goes
               on until a cap: two tracking traces cycled through 2 and 4 swaps to 128 steps). None of
               the dataset's 478 correct traces repeats such a block even 3 times in a row;
- "step_cap":  the trace holds `max_steps` steps (given steps count) without an answer, or, for the
               five tasks, `step_cap_factor` times as many steps as the task's longest trace in the
               dataset (a cycle longer than LOOP_PERIOD steps, or no cycle at all).
A request whose given steps already end it by one of these rules (an answer, a loop, a cap) is
returned as is, with no new step.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Sequence

from bigbench_mistake.options import require_positive
from bigbench_mistake.tasks import get_task

from backtrack.lm.generator import LM, STOP_EOS, STOP_MAX_TOKENS, Step, StepRequest

STOP_ANSWER, STOP_STEP_CAP, STOP_TOKEN_CAP, STOP_TRACE_EOS, STOP_LOOP = "answer", "step_cap", "token_cap", "eos", "loop"

# Caps that never cut a trace like the dataset's (measured with Qwen2.5's tokenizer on all 2,186):
# word sorting's first step runs to 276 tokens (median longest step 199), and dyck traces to 126
# steps. 160 tokens cut 231 of the 300 word-sorting traces. A greedy loop stops at STOP_REPEATS.
MAX_STEPS = 128
MAX_STEP_TOKENS = 320
STOP_REPEATS = 4
LOOP_PERIOD = 4
STEP_CAP_FACTOR = 2.0


@dataclass(frozen=True)
class TraceRequest:
    task: str
    input: str
    steps: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        get_task(self.task)  # raises ValueError naming the known tasks
        object.__setattr__(self, "steps", tuple(self.steps))


@dataclass(frozen=True)
class DecodeConfig:
    max_steps: int = MAX_STEPS             # steps per trace, given steps included
    max_tokens: int = MAX_STEP_TOKENS      # tokens per step
    batch_size: int = 8                    # traces decoded together
    few_shot: str | None = None            # replaces the task's few-shot prompt (None: the paper's)
    stop_repeats: int = STOP_REPEATS       # stop after a block of 1-4 steps repeats this many times (0: never)
    step_cap_factor: float = STEP_CAP_FACTOR  # per-task cap: this times the task's longest dataset trace (0: none)

    def __post_init__(self) -> None:
        require_positive(self, "max_steps", "max_tokens", "batch_size")
        check_stops(self)

    def step_cap(self, task: str) -> int:
        """The most steps a trace of `task` may hold."""
        return task_step_cap(task, self.max_steps, self.step_cap_factor)


@dataclass(frozen=True)
class DecodedTrace:
    request: TraceRequest
    steps: tuple[str, ...]           # given steps + new steps
    new_steps: tuple[Step, ...]      # what the generator wrote (with log-probs and token counts)
    stop_reason: str                 # answer | eos | token_cap | loop | step_cap
    seconds: float                   # wall time from the trace's first step to its last (shared with its batch)

    @property
    def n_tokens(self) -> int:
        return sum(s.n_tokens for s in self.new_steps)

    @property
    def logprob(self) -> float:
        return sum(s.logprob for s in self.new_steps)


def check_stops(config, flags: bool = False) -> None:
    """Refuse a config whose `stop_repeats` is 1 or negative or whose `step_cap_factor` is negative or
    in (0, 1), naming the field (as its flag when asked), as require_positive does for the caps."""
    def label(name: str) -> str:
        return "--" + name.replace("_", "-") if flags else name

    if config.stop_repeats < 0 or config.stop_repeats == 1:
        raise ValueError(f"{label('stop_repeats')} must be 0 (never) or >= 2, got {config.stop_repeats}")
    if config.step_cap_factor < 0 or 0 < config.step_cap_factor < 1:
        raise ValueError(f"{label('step_cap_factor')} must be 0 (none) or >= 1, got {config.step_cap_factor}")


@lru_cache(maxsize=None)
def longest_dataset_trace(task: str) -> int | None:
    """Steps of the task's longest trace in BIG-Bench Mistake (None for a task it does not hold)."""
    from bigbench_mistake.dataset import load_all

    lengths = [len(t.steps) for t in load_all() if t.task == task]
    return max(lengths) if lengths else None


def task_step_cap(task: str, max_steps: int, factor: float) -> int:
    """min(max_steps, ceil(factor x the task's longest dataset trace)); max_steps alone when factor is 0
    or the dataset has no trace of the task."""
    longest = longest_dataset_trace(task) if factor else None
    return max_steps if longest is None else min(max_steps, math.ceil(factor * longest))


def looping(steps: Sequence[str], repeats: int, period: int = LOOP_PERIOD) -> bool:
    """The last steps are one block of 1..`period` steps written `repeats` times in a row (whitespace
    aside); never when `repeats` is 0."""
    if repeats == 0:
        return False
    for p in range(1, period + 1):
        if len(steps) < p * repeats:
            break
        tail = [" ".join(s.split()) for s in steps[-p * repeats:]]
        if all(tail[i] == tail[i % p] for i in range(p, len(tail))):
            return True
    return False


def with_loop_rule(fields: dict) -> dict:
    """`fields` (a config as a dict) with the loop rule's longest block next to a nonzero `stop_repeats`:
    the rule once meant one step repeated, so keys and run configs made under it must differ from today's
    (today's command refuses a run directory made under it: start a new one)."""
    if fields.get("stop_repeats"):
        fields["loop_period"] = LOOP_PERIOD
    return fields


def stop_fields(fields: dict) -> dict:
    """`fields` without the stops that are off (0: the keys and configs of runs made before they existed)
    and with the loop rule (with_loop_rule): how the stops enter outcome keys and run configs."""
    for name in ("stop_repeats", "step_cap_factor"):
        if not fields.get(name, 1):
            del fields[name]
    return with_loop_rule(fields)


def _finished(request: TraceRequest, steps: Sequence[str], last: Step | None, config: DecodeConfig) -> str | None:
    """The stop reason once a trace is done, else None."""
    if get_task(request.task).has_answer(steps):
        return STOP_ANSWER
    if last is not None and last.stop_reason == STOP_EOS:
        return STOP_TRACE_EOS
    if last is not None and last.stop_reason == STOP_MAX_TOKENS:
        return STOP_TOKEN_CAP
    if looping(steps, config.stop_repeats):
        return STOP_LOOP
    if len(steps) >= config.step_cap(request.task):
        return STOP_STEP_CAP
    return None


def iter_decode_traces(generator: LM, requests: Sequence[TraceRequest],
                       config: DecodeConfig) -> Iterator[tuple[int, DecodedTrace]]:
    """Yield (request index, finished trace) as traces finish (not in request order)."""
    pending = iter(range(len(requests)))
    live: dict[int, tuple[list[str], list[Step], float]] = {}  # index -> (steps, new steps, start time)

    def admit() -> Iterator[tuple[int, DecodedTrace]]:
        while len(live) < config.batch_size:
            i = next(pending, None)
            if i is None:
                return
            req = requests[i]
            reason = _finished(req, req.steps, None, config)
            if reason is not None:
                yield i, DecodedTrace(req, req.steps, (), reason, 0.0)
            else:
                live[i] = (list(req.steps), [], time.perf_counter())

    yield from admit()
    while live:
        order = list(live)
        asks = [StepRequest(get_task(requests[i].task).prompt(requests[i].input, live[i][0], config.few_shot),
                            max_tokens=config.max_tokens) for i in order]
        for i, [step] in zip(order, generator.generate_steps(asks)):
            steps, new, start = live[i]
            steps.append(step.text)
            new.append(step)
            reason = _finished(requests[i], steps, step, config)
            if reason is not None:
                del live[i]
                yield i, DecodedTrace(requests[i], tuple(steps), tuple(new), reason, time.perf_counter() - start)
        yield from admit()


def decode_traces(generator: LM, requests: Sequence[TraceRequest], config: DecodeConfig) -> list[DecodedTrace]:
    """Greedy step-wise decoding of every request; one DecodedTrace per request, in order."""
    out: list[DecodedTrace | None] = [None] * len(requests)
    for i, trace in iter_decode_traces(generator, requests, config):
        out[i] = trace
    return out  # type: ignore[return-value]

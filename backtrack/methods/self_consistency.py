"""Self-consistency (Wang et al. 2022): sample k traces at temperature T, extract each answer,
vote.

Sampling: a trace is built step by step, one sample at temperature T per step, with the seed of
each step derived from (run seed, question id, sample index, step index), so every trace is
reproducible on its own and a resumed run draws the same samples. Log-probs are never read, so a
backend that cannot report them at T (Step.logprob NaN) serves as well as any.

Voting is a pipeline of named steps over a list of ballots (one per trace), like lm-eval's filters
(regex -> majority_vote -> take_first), never a chain of branches:

    extract   the paper's answer regex and the task's normalisers (bigbench_mistake/answers.py);
              a trace without a usable answer becomes an invalid ballot with its reason
    weight    uniform (every ballot 1.0), or located (see `located_weights`)
    tally     sum the weights of each valid answer; invalid ballots are counted, never voted
    decide    the answer with the largest total; ties are broken towards the answer whose first
              ballot came earliest (lowest sample index) and reported in `Vote.tied`

Reward-model-weighted vote (`located` weights): a trace in which the locator finds no mistake
(first_mistake(scores, threshold) is None) weighs 1.0; a trace with a located mistake weighs
`located_weight` (default 0.5), whatever the position of the mistake. A located trace still votes
(the locator may be wrong) but two of them are needed to outvote one clean trace.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from bigbench_mistake.answers import Invalid, take_answer
from bigbench_mistake.tasks import TaskSpec

from backtrack.lm.generator import LM, STOP_EOS, STOP_MAX_TOKENS, Step, StepRequest, stable_int
from backtrack.methods.decoding import STEP_CAP_FACTOR, STOP_REPEATS, looping, task_step_cap


# ------------------------------------------------------------------ sampled traces
def step_seed(seed: int, question_id: str, sample: int, step: int) -> int:
    """A distinct, stable seed per (run seed, question, sample index, step index)."""
    return stable_int(f"sc|{seed}|{question_id}|{sample}|{step}")


def trace_finished(step: Step) -> bool:
    """A trace ends when a step states the answer (the paper's regex), the model stops (EOS) or a
    step hits its token cap -- the same rule as greedy decoding in backtrack/methods/decoding.py."""
    return step.stop_reason in (STOP_EOS, STOP_MAX_TOKENS) or not isinstance(take_answer(step.text), Invalid)


def sample_trace(generator: LM, spec: TaskSpec, input_text: str, question_id: str, sample: int, *,
                 temperature: float, seed: int, max_steps: int, max_step_tokens: int,
                 top_k: int | None = None, top_p: float | None = None, stop_repeats: int = STOP_REPEATS,
                 step_cap_factor: float = STEP_CAP_FACTOR) -> tuple[list[str], list[Step]]:
    """One trace sampled at `temperature`, one step per call: the sequential definition that
    sample_traces advances k at a time (tests and bench part d hold the two side by side)."""
    texts: list[str] = []
    steps: list[Step] = []
    cap = task_step_cap(spec.name, max_steps, step_cap_factor)
    while len(texts) < cap:
        ask = StepRequest(spec.prompt(input_text, texts), temperature=temperature,
                          seed=step_seed(seed, question_id, sample, len(texts)), max_tokens=max_step_tokens,
                          top_k=top_k, top_p=top_p)
        [[step]] = generator.generate_steps([ask])
        steps.append(step)
        texts.append(step.text)
        if trace_finished(step) or looping(texts, stop_repeats):
            break
    return texts, steps


def sample_traces(generator: LM, spec: TaskSpec, input_text: str, question_id: str, k: int, *,
                  temperature: float, seed: int, max_steps: int, max_step_tokens: int,
                  top_k: int | None = None, top_p: float | None = None, stop_repeats: int = STOP_REPEATS,
                  step_cap_factor: float = STEP_CAP_FACTOR) -> list[tuple[list[str], list[Step]]]:
    """The k traces sample_trace draws for samples 0..k-1, advanced together: each round asks for the
    next step of every unfinished trace in one generate_steps call (same prompts, same seeds)."""
    texts: list[list[str]] = [[] for _ in range(k)]
    steps: list[list[Step]] = [[] for _ in range(k)]
    cap = task_step_cap(spec.name, max_steps, step_cap_factor)
    live = list(range(k)) if cap > 0 else []
    while live:
        asks = [StepRequest(spec.prompt(input_text, texts[i]), temperature=temperature,
                            seed=step_seed(seed, question_id, i, len(texts[i])), max_tokens=max_step_tokens,
                            top_k=top_k, top_p=top_p) for i in live]
        for i, [step] in zip(live, generator.generate_steps(asks)):
            steps[i].append(step)
            texts[i].append(step.text)
        live = [i for i in live if not trace_finished(steps[i][-1]) and not looping(texts[i], stop_repeats)
                and len(texts[i]) < cap]
    return list(zip(texts, steps))


# ------------------------------------------------------------------ the vote pipeline
@dataclass(frozen=True)
class Ballot:
    sample: int  # index of the trace among the k samples (the tie-break order)
    answer: str | None  # normalised answer; None when invalid
    invalid_reason: str | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class Vote:
    answer: str | None  # None when every ballot was invalid
    totals: dict[str, float]  # answer -> summed weight, in order of first appearance
    counts: dict[str, int]  # answer -> number of ballots
    tied: tuple[str, ...]  # answers sharing the top total (empty when there is no tie)
    n_valid: int
    n_invalid: int
    invalid_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"answer": self.answer, "totals": self.totals, "counts": self.counts, "tied": list(self.tied),
                "n_valid": self.n_valid, "n_invalid": self.n_invalid, "invalid_reasons": self.invalid_reasons}


def extract_ballots(spec: TaskSpec, traces: Sequence[Sequence[str]]) -> list[Ballot]:
    """extract: regex + the task's normalisers on each trace's last step."""
    out = []
    for i, steps in enumerate(traces):
        value = spec.normalised_answer(steps)
        out.append(Ballot(i, None, value.reason) if isinstance(value, Invalid) else Ballot(i, value))
    return out


def uniform_weights(ballots: Sequence[Ballot]) -> list[Ballot]:
    return [replace(b, weight=1.0) for b in ballots]


def located_weights(ballots: Sequence[Ballot], located: Sequence[int | None], located_weight: float) -> list[Ballot]:
    """weight: 1.0 where no mistake was located in the ballot's trace, `located_weight` where one was."""
    if len(located) != len(ballots):
        raise ValueError(f"{len(located)} locations for {len(ballots)} ballots")
    return [replace(b, weight=1.0 if located[b.sample] is None else located_weight) for b in ballots]


def tally(ballots: Sequence[Ballot]) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
    """Sum the weights per valid answer (dicts keep first-appearance order); count invalid reasons."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    invalid: dict[str, int] = {}
    for b in sorted(ballots, key=lambda b: b.sample):
        if b.answer is None:
            invalid[b.invalid_reason or "invalid"] = invalid.get(b.invalid_reason or "invalid", 0) + 1
            continue
        totals[b.answer] = totals.get(b.answer, 0.0) + b.weight
        counts[b.answer] = counts.get(b.answer, 0) + 1
    return totals, counts, invalid


def decide(totals: dict[str, float], counts: dict[str, int], invalid: dict[str, int]) -> Vote:
    """The largest total wins; among tied answers the one seen first (lowest sample index) wins."""
    n_invalid = sum(invalid.values())
    n_valid = sum(counts.values())
    if not totals:
        return Vote(None, {}, {}, (), n_valid, n_invalid, invalid)
    best = max(totals.values())
    # Weights are sums of a few floats: compare with a tolerance so 0.5 + 0.5 ties with 1.0.
    top = tuple(a for a, w in totals.items() if abs(w - best) <= 1e-9)
    return Vote(top[0], {a: round(w, 6) for a, w in totals.items()}, counts, top if len(top) > 1 else (),
                n_valid, n_invalid, invalid)


def majority_vote(spec: TaskSpec, traces: Sequence[Sequence[str]]) -> Vote:
    """extract -> uniform weights -> tally -> decide."""
    return decide(*tally(uniform_weights(extract_ballots(spec, traces))))


def weighted_vote(spec: TaskSpec, traces: Sequence[Sequence[str]], located: Sequence[int | None],
                  located_weight: float) -> Vote:
    """extract -> located weights -> tally -> decide."""
    return decide(*tally(located_weights(extract_ballots(spec, traces), located, located_weight)))


def winning_sample(spec: TaskSpec, traces: Sequence[Sequence[str]], vote: Vote) -> int | None:
    """The first sample whose answer is the winner: its trace is the strategy's final trace."""
    for b in extract_ballots(spec, traces):
        if vote.answer is not None and b.answer == vote.answer:
            return b.sample
    return None

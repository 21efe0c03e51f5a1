"""The paper's three prompt-based mistake finders (Tyen et al. 2023, section 3), as locators.

    direct-trace  one prompt per trace: which Thought holds the first mistake, or none
    direct-step   one yes/no question per step ("Is Thought k correct?"), in order, stopping at the first "No"
    cot-step      per step, a line of reasoning first ("Check of Thought k: ..."), then the yes/no

Modes. "logprob" (default; for base models): the answer is the candidate with the higher
log-probability under the LM's loglikelihood -- " Yes" against " No" for a step (a tie counts as Yes),
" Thought 1\n" ... " Thought n\n" against " none\n" for a trace (each candidate ends in the
newline so " Thought 1" does not also score as the start of " Thought 12"). "generate" (for chat
or instruction models): greedy free text, parsed; an answer that cannot be parsed is counted as
`unparsed` and read as Yes / none (no mistake found), never guessed.

Batching. `find(traces)` checks its traces together: direct-trace asks about every trace in one
model call; the step-level methods go in lockstep, each round one call (two for cot-step: the
reasoning lines, then the answers) holding the next step of every trace not yet decided. A trace's
own calls and tokens are counted in its FinderResult. A server answers the requests of a call
concurrently; on a CPU llama.cpp decodes them as one batch, which helps less here than for traces:
a check evaluates a long prompt and generates a short line, and prompt evaluation does not gain from
batching (cot-step, Qwen2.5-1.5B, 2 cores: 8 traces 1.17x faster together, benchmarks/bench_find.py).

As a Locator, `scores(traces)` is the one-hot of the decided index (all zeros for none), so any
threshold in (0, 1] gives the finder's own decision; the per-step probabilities and every
generated line are in `find(traces)`'s `FinderResult`s.

Exemplars: reward_model/prompts/{task}.jsonl, written here from the questions of the task's
chain-of-thought prompt (not from the dataset), two per task: one trace without a mistake and one
with a mistake written in by hand, each with the steps to check and a line of reasoning per check.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

from backtrack.lm.generator import LM, LoglikelihoodRequest, Step, StepRequest
from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import TASKS, format_step, task_spec

from .locator import one_hot

METHODS = ("direct-trace", "direct-step", "cot-step")
MODES = ("logprob", "generate")
YES, NO = " Yes", " No"
NONE_ANSWER = " none\n"

HEADERS = {
    "direct-trace": "Find the first logical mistake in each step-by-step solution, if there is one. "
                    "Answer with the first Thought that has a mistake, or none.",
    "direct-step": "Check step-by-step solutions one step at a time. A step is correct if it follows "
                   "from the question and the steps before it.",
    "cot-step": "Check step-by-step solutions one step at a time. Reason about the step first, then say "
                "whether it is correct given the question and the steps before it.",
}


@lru_cache(maxsize=None)
def exemplars(task: str) -> tuple[dict[str, Any], ...]:
    """The task's few-shot exemplars; none (zero-shot: the instructions alone) for a task other than the five."""
    if task not in TASKS:
        return ()
    path = resources.files("reward_model") / "prompts" / f"{task}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no mistake-finding exemplars for task {task!r} ({path})")
    return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _question_and_steps(task: str, input_text: str, steps: Sequence[str]) -> str:
    spec = task_spec(task)
    return "\n".join([spec.question(input_text), *(format_step(i, s) for i, s in enumerate(steps))])


def _trace_answer(index: int | None) -> str:
    return NONE_ANSWER if index is None else f" Thought {index + 1}\n"


def trace_prompt(task: str, input_text: str, steps: Sequence[str]) -> str:
    """direct-trace: header, exemplars with their answers, then the trace, ending in 'First mistake:'."""
    parts = [HEADERS["direct-trace"]]
    for ex in exemplars(task):
        parts.append(_question_and_steps(task, ex["input"], ex["steps"]) + "\nFirst mistake:"
                     + _trace_answer(ex["mistake_index"]).rstrip("\n"))
    parts.append(_question_and_steps(task, input_text, steps) + "\nFirst mistake:")
    return "\n\n".join(parts)


def _check_question(k: int) -> str:
    return f"Is Thought {k + 1} correct?"


def _reason_prefix(k: int) -> str:
    return f"Check of Thought {k + 1}:"


def step_prompt(task: str, input_text: str, steps: Sequence[str], k: int, cot: bool, reasoning: str | None = None) -> str:
    """direct-step / cot-step prompt for step k. cot with reasoning=None ends where the reasoning
    begins; otherwise it ends at the yes/no question."""
    method = "cot-step" if cot else "direct-step"
    parts = [HEADERS[method]]
    for ex in exemplars(task):
        for check in ex["checks"]:
            j = check["step"]
            body = _question_and_steps(task, ex["input"], ex["steps"][: j + 1])
            if cot:
                body += f"\n{_reason_prefix(j)} {check['reason']}"
            parts.append(f"{body}\n{_check_question(j)}{YES if check['correct'] else NO}")
    body = _question_and_steps(task, input_text, steps[: k + 1])
    if cot:
        if reasoning is None:
            return "\n\n".join(parts + [f"{body}\n{_reason_prefix(k)}"])
        body += f"\n{_reason_prefix(k)} {reasoning}"
    return "\n\n".join(parts + [f"{body}\n{_check_question(k)}"])


# ------------------------------------------------------------------ parsing generated answers
_THOUGHT_RE = re.compile(r"(\d+)")


def parse_trace_answer(text: str, n_steps: int) -> tuple[int | None, bool]:
    """(index or None, parsed?) from a generated 'First mistake:' line."""
    t = text.strip().lower()
    if t.startswith("none") or t.startswith("no mistake"):
        return None, True
    m = _THOUGHT_RE.search(t)
    if m and 1 <= int(m.group(1)) <= n_steps:
        return int(m.group(1)) - 1, True
    return None, False


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when it is neither."""
    t = text.strip().lower()
    if t.startswith("yes"):
        return True
    if t.startswith("no"):
        return False
    return None


def p_no(lp_yes: float, lp_no: float) -> float:
    """P(No) normalised over the two answers."""
    m = max(lp_yes, lp_no)
    return math.exp(lp_no - m) / (math.exp(lp_yes - m) + math.exp(lp_no - m))


# ------------------------------------------------------------------ the finders
@dataclass
class FinderResult:
    index: int | None  # first mistake (0-based) or None
    method: str
    mode: str
    checks: int  # yes/no questions asked (direct-trace: 1 question)
    unparsed: int = 0  # generate mode: answers that were neither yes/no (or a Thought/none)
    p_no: list[float] = field(default_factory=list)  # logprob mode, step methods: P(No) per checked step
    generated: list[str] = field(default_factory=list)  # generated lines (answers, reasoning)
    tokens: int = 0  # tokens generated for this trace
    calls: int = 0   # model calls for this trace, counted as CountingLM counts them (a Step; a scored prompt)

    def to_dict(self) -> dict[str, Any]:
        return {"predicted_mistake_index": self.index, "method": self.method, "mode": self.mode,
                "checks": self.checks, "unparsed": self.unparsed, "p_no": [round(p, 4) for p in self.p_no],
                "generated": self.generated}

    def took(self, step: Step) -> str:
        """Count one generated line against this trace and keep it; returns its text."""
        self.tokens += step.n_tokens
        self.calls += 1
        self.generated.append(step.text)
        return step.text


@dataclass(frozen=True)
class FinderConfig:
    method: str = "direct-step"
    mode: str = "logprob"
    answer_tokens: int = 8  # generate mode: tokens for a yes/no or a 'Thought k' answer
    reasoning_tokens: int = 96  # cot-step: tokens for the line of reasoning

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.answer_tokens < 1 or self.reasoning_tokens < 1:
            raise ValueError("answer_tokens and reasoning_tokens must be >= 1")


class PromptFinder:
    """A Locator that asks `generator` where the first mistake is, by one of the three methods."""

    def __init__(self, generator: LM, config: FinderConfig = FinderConfig()):
        self.generator = generator
        self.config = config
        self.name = f"prompt:{config.method}:{config.mode}"

    def _greedy(self, prompts: Sequence[str], max_tokens: int) -> list[Step]:
        """One greedy line per prompt, in one model call."""
        out = self.generator.generate_steps([StepRequest(p, max_tokens=max_tokens) for p in prompts])
        return [steps[0] for steps in out]

    # --- direct-trace: one question a trace, every trace in one call
    def _direct_trace(self, traces: Sequence[Trace]) -> list[FinderResult]:
        cfg = self.config
        prompts = [trace_prompt(t.task, t.input, t.steps) for t in traces]
        results = [FinderResult(None, cfg.method, cfg.mode, 1, calls=1 if cfg.mode == "logprob" else 0) for _ in traces]
        if cfg.mode == "logprob":
            candidates = [[_trace_answer(i) for i in range(len(t.steps))] + [NONE_ANSWER] for t in traces]
            lps = iter(self.generator.loglikelihood([LoglikelihoodRequest(p, c) for p, cs in zip(prompts, candidates)
                                                     for c in cs]))
            for t, cs, r in zip(traces, candidates, results):
                lp = [next(lps) for _ in cs]
                best = max(range(len(cs)), key=lambda i: (lp[i], -i))  # ties: the earliest candidate
                r.index = None if best == len(t.steps) else best
            return results
        for t, r, step in zip(traces, results, self._greedy(prompts, cfg.answer_tokens)):
            r.index, ok = parse_trace_answer(r.took(step), len(t.steps))
            r.unparsed = int(not ok)
        return results

    # --- direct-step / cot-step: every trace's steps in order, in lockstep, until its first "No"
    def _verdicts(self, prompts: Sequence[str], results: Sequence[FinderResult]) -> list[bool]:
        """Whether each step is correct (True) by its yes/no prompt; an unparsed answer counts as Yes."""
        if self.config.mode == "logprob":
            lps = self.generator.loglikelihood([LoglikelihoodRequest(p, a) for p in prompts for a in (YES, NO)])
            out = []
            for j, r in enumerate(results):
                lp_yes, lp_no = lps[2 * j], lps[2 * j + 1]
                r.p_no.append(p_no(lp_yes, lp_no))
                r.calls += 1
                out.append(lp_yes >= lp_no)
            return out
        out = []
        for r, step in zip(results, self._greedy(prompts, self.config.answer_tokens)):
            verdict = parse_yes_no(r.took(step))
            r.unparsed += verdict is None
            out.append(verdict is not False)
        return out

    def _step_level(self, traces: Sequence[Trace]) -> list[FinderResult]:
        cfg, cot = self.config, self.config.method == "cot-step"
        results = [FinderResult(None, cfg.method, cfg.mode, 0) for _ in traces]
        step_of = {i: 0 for i, t in enumerate(traces) if t.steps}  # trace -> the step it checks next
        while step_of:
            live = list(step_of)
            reasoning: dict[int, str | None] = dict.fromkeys(live)
            if cot:  # the reasoning lines of this round, then the yes/no questions that follow them
                asked = [step_prompt(traces[i].task, traces[i].input, traces[i].steps, step_of[i], True) for i in live]
                for i, step in zip(live, self._greedy(asked, cfg.reasoning_tokens)):
                    reasoning[i] = results[i].took(step)
            prompts = [step_prompt(traces[i].task, traces[i].input, traces[i].steps, step_of[i], cot, reasoning[i])
                       for i in live]
            for i, correct in zip(live, self._verdicts(prompts, [results[i] for i in live])):
                k = step_of[i]
                results[i].checks += 1
                if not correct:
                    results[i].index = k
                if not correct or k + 1 == len(traces[i].steps):
                    del step_of[i]
                else:
                    step_of[i] = k + 1
        return results

    def find(self, traces: Sequence[Trace]) -> list[FinderResult]:
        """The first mistake of every trace, the traces checked together (see Batching above)."""
        if not traces:
            return []
        return self._direct_trace(traces) if self.config.method == "direct-trace" else self._step_level(traces)

    # --- the Locator protocol
    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        return [one_hot(len(t.steps), r.index) for t, r in zip(traces, self.find(traces))]


def parse_finder_spec(spec: str) -> FinderConfig:
    """'prompt:direct-step' or 'prompt:cot-step:generate' -> FinderConfig."""
    parts = spec.split(":")
    if parts[0] != "prompt" or len(parts) not in (2, 3):
        raise ValueError(f"finder spec must be prompt:METHOD[:MODE] with METHOD in {', '.join(METHODS)}, got {spec!r}")
    return FinderConfig(method=parts[1], mode=parts[2] if len(parts) == 3 else "logprob")


def prompt_locator(arg: str | None, generator: LM | None) -> PromptFinder:
    """make_locator's factory for "prompt:METHOD[:MODE]" (METHOD: direct-trace | direct-step | cot-step)."""
    if generator is None:
        raise ValueError("prompt-based finders need a model: pass LocatorOptions(generator=...)")
    return PromptFinder(generator, parse_finder_spec(f"prompt:{arg or ''}"))

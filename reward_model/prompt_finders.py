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

    def to_dict(self) -> dict[str, Any]:
        return {"predicted_mistake_index": self.index, "method": self.method, "mode": self.mode,
                "checks": self.checks, "unparsed": self.unparsed, "p_no": [round(p, 4) for p in self.p_no],
                "generated": self.generated}


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

    def _greedy(self, prompt: str, max_tokens: int) -> Step:
        [[step]] = self.generator.generate_steps([StepRequest(prompt, max_tokens=max_tokens)])
        return step

    # --- one trace
    def _direct_trace(self, t: Trace) -> FinderResult:
        cfg, prompt = self.config, trace_prompt(t.task, t.input, t.steps)
        if cfg.mode == "logprob":
            candidates = [_trace_answer(i) for i in range(len(t.steps))] + [NONE_ANSWER]
            lps = self.generator.loglikelihood([LoglikelihoodRequest(prompt, c) for c in candidates])
            best = max(range(len(candidates)), key=lambda i: (lps[i], -i))  # ties: the earliest candidate
            return FinderResult(None if best == len(t.steps) else best, cfg.method, cfg.mode, 1)
        text = self._greedy(prompt, cfg.answer_tokens).text
        index, ok = parse_trace_answer(text, len(t.steps))
        return FinderResult(index, cfg.method, cfg.mode, 1, unparsed=int(not ok), generated=[text])

    def _step_is_correct(self, t: Trace, k: int, result: FinderResult) -> bool:
        cfg, cot = self.config, self.config.method == "cot-step"
        reasoning = None
        if cot:
            reasoning = self._greedy(step_prompt(t.task, t.input, t.steps, k, True), cfg.reasoning_tokens).text
            result.generated.append(reasoning)
        prompt = step_prompt(t.task, t.input, t.steps, k, cot, reasoning)
        result.checks += 1
        if cfg.mode == "logprob":
            lp_yes, lp_no = self.generator.loglikelihood([LoglikelihoodRequest(prompt, YES),
                                                          LoglikelihoodRequest(prompt, NO)])
            result.p_no.append(p_no(lp_yes, lp_no))
            return lp_yes >= lp_no
        text = self._greedy(prompt, cfg.answer_tokens).text
        result.generated.append(text)
        verdict = parse_yes_no(text)
        if verdict is None:
            result.unparsed += 1
            return True
        return verdict

    def _step_level(self, t: Trace) -> FinderResult:
        result = FinderResult(None, self.config.method, self.config.mode, 0)
        for k in range(len(t.steps)):
            if not self._step_is_correct(t, k, result):
                result.index = k
                break
        return result

    def find(self, traces: Sequence[Trace]) -> list[FinderResult]:
        one = self._direct_trace if self.config.method == "direct-trace" else self._step_level
        return [one(t) for t in traces]

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

"""Least-to-most prompting (Zhou et al. 2022): decompose, then solve the sub-questions in order.

1. Decomposition: one greedy call on the task's decomposition prompt writes the sub-questions on
   one line after "Sub-questions:", separated by " | " (a separator none of the five tasks uses).
2. Solving: one greedy call per sub-question. The prompt holds the earlier sub-questions and their
   answers, then "Sub-question k: ..." and "Thought k:"; the answer is one Thought.
3. Final answer: one more greedy call on "Thought n+1:" (the exemplars end with "So the answer is").

The trace kept is the Thoughts alone, in the dataset's step format ("Thought k: ..."), each written
to stand on its own (the exemplars restate what each Thought computes), so the reward model and
backtracking work on least-to-most traces as on chain-of-thought ones; the sub-questions go into
the result's extras. Exemplars: backtrack/prompts/least_to_most/{task}_{decompose,solve}.txt,
written from the questions of the task's chain-of-thought prompt.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from bigbench_mistake.tasks import STEP_PREFIX, TaskSpec, format_step

from backtrack.lm.generator import LM, Step, StepRequest

DECOMPOSE_PREFIX = "Sub-questions:"
SUBQUESTION_PREFIX = "Sub-question"
SEPARATOR = " | "


@lru_cache(maxsize=None)
def exemplars(task: str, kind: str) -> str:
    """The shipped decomposition ("decompose") or solving ("solve") exemplars of a task."""
    if kind not in ("decompose", "solve"):
        raise ValueError(f"kind must be 'decompose' or 'solve', got {kind!r}")
    path = resources.files("backtrack") / "prompts" / "least_to_most" / f"{task}_{kind}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no least-to-most {kind} exemplars for task {task!r} ({path})")
    return path.read_text(encoding="utf-8").rstrip()


def decompose_prompt(spec: TaskSpec, input_text: str) -> str:
    return f"{exemplars(spec.name, 'decompose')}\n\n{spec.question(input_text)}\n{DECOMPOSE_PREFIX}"


def parse_subquestions(text: str, max_subquestions: int) -> list[str]:
    """Sub-questions from the decomposition line: split on " | ", drop empty parts, keep at most
    max_subquestions (the caller records how many were dropped)."""
    parts = [p.strip() for p in text.split("|")]
    return [p for p in parts if p][:max_subquestions]


def solve_prompt(spec: TaskSpec, input_text: str, subquestions: list[str], answers: list[str]) -> str:
    """Earlier sub-questions with their answers, then the next sub-question (or, once all are
    answered, the final Thought)."""
    lines = [exemplars(spec.name, "solve"), "", spec.question(input_text)]
    for k, (q, a) in enumerate(zip(subquestions, answers)):
        lines += [f"{SUBQUESTION_PREFIX} {k + 1}: {q}", format_step(k, a)]
    k = len(answers)
    if k < len(subquestions):
        lines.append(f"{SUBQUESTION_PREFIX} {k + 1}: {subquestions[k]}")
    lines.append(f"{STEP_PREFIX} {k + 1}:")
    return "\n".join(lines)


@dataclass(frozen=True)
class LeastToMost:
    steps: list[str]  # the Thoughts: one per sub-question, then the final one
    subquestions: list[str]
    decomposition: str  # the raw decomposition line
    n_dropped_subquestions: int  # sub-questions past max_subquestions
    generated: list[Step]  # every Step the generator returned, in call order


def solve_subquestions(generator: LM, spec: TaskSpec, input_text: str, subquestions: list[str], *,
                       max_step_tokens: int) -> list[Step]:
    """One greedy call per sub-question, in order, each with the earlier answers in context, then
    one call for the final Thought."""
    answers: list[str] = []
    generated: list[Step] = []
    for _ in range(len(subquestions) + 1):
        [[step]] = generator.generate_steps([StepRequest(solve_prompt(spec, input_text, subquestions, answers),
                                                         max_tokens=max_step_tokens)])
        generated.append(step)
        answers.append(step.text)
    return generated


def least_to_most(generator: LM, spec: TaskSpec, input_text: str, *, max_subquestions: int,
                  decompose_tokens: int, max_step_tokens: int) -> LeastToMost:
    """Decomposition call, one solve call per sub-question, one final-answer call."""
    [[decomposition]] = generator.generate_steps([StepRequest(decompose_prompt(spec, input_text),
                                                              max_tokens=decompose_tokens)])
    all_parts = parse_subquestions(decomposition.text, 10**9)
    subquestions = all_parts[:max_subquestions]
    solved = solve_subquestions(generator, spec, input_text, subquestions, max_step_tokens=max_step_tokens)
    return LeastToMost([s.text for s in solved], subquestions, decomposition.text,
                       len(all_parts) - len(subquestions), [decomposition, *solved])

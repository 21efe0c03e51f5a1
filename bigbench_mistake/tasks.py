"""One spec per BIG-Bench Mistake task: how its question is asked, its few-shot prompt, how a
trace is written out, and how its answer is extracted and scored."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Sequence

from .answers import Filter, Invalid, Scored, option_letter, run_filters, score_answer, strip, take_answer, tidy

STEP_PREFIX = "Thought"


def format_step(index: int, step: str) -> str:
    """The one step format shared by generation, training and inference (0-based index)."""
    return f"{STEP_PREFIX} {index + 1}: {step}"


def render_steps(steps: Sequence[str]) -> str:
    return "\n".join(format_step(i, s) for i, s in enumerate(steps))


@dataclass(frozen=True)
class TaskSpec:
    name: str
    question_prefix: str  # put before `input` to ask the question as the paper did
    multiple_choice: bool

    def question(self, input_text: str) -> str:
        return f"{self.question_prefix}{input_text}"

    @cached_property
    def few_shot_prompt(self) -> str:
        """The paper's generation prompt shipped with the data, without trailing whitespace."""
        path = resources.files("bigbench_mistake") / "data" / "generation_prompts" / f"{self.name}_prompt.txt"
        if not path.is_file():
            raise ValueError(f"task {self.name!r} has no few-shot prompt: bbm writes traces for "
                             f"{', '.join(TASKS)} only; it scores and locates mistakes in traces of any task")
        return path.read_text(encoding="utf-8").rstrip()

    def prompt(self, input_text: str, steps: Sequence[str] = (), few_shot: str | None = None) -> str:
        """Few-shot prompt + question + accepted steps, ending where the next step's text begins."""
        head = self.few_shot_prompt if few_shot is None else few_shot
        done = "".join(format_step(i, s) + "\n" for i, s in enumerate(steps))
        return f"{head}\n\n{self.question(input_text)}\n{done}{STEP_PREFIX} {len(steps) + 1}:"

    @property
    def normalisers(self) -> tuple[Filter, ...]:
        return (tidy, strip, option_letter) if self.multiple_choice else (tidy, strip)

    @property
    def strict_normalisers(self) -> tuple[Filter, ...]:
        """The paper's scoring alone: the regex's match, stripped, exact match (no tidy)."""
        return (strip, option_letter) if self.multiple_choice else (strip,)

    def extract_answer(self, steps: Sequence[str]) -> str | Invalid:
        """Raw answer from the last step (the paper's regex), before normalisation."""
        if not steps:
            return Invalid("no steps")
        return take_answer(steps[-1])

    def has_answer(self, steps: Sequence[str]) -> bool:
        """Whether a trace is finished: its last step states an answer (what decoding stops at, and what
        backtracking's --accept answered asks of a new trace)."""
        return isinstance(self.extract_answer(steps), str)

    def normalised_answer(self, steps: Sequence[str]) -> str | Invalid:
        raw = self.extract_answer(steps)
        return raw if isinstance(raw, Invalid) else run_filters(raw, self.normalisers)

    def score(self, steps: Sequence[str], target: str) -> Scored:
        return score_answer(self.extract_answer(steps), target, self.normalisers)

    def score_strict(self, steps: Sequence[str], target: str) -> Scored:
        return score_answer(self.extract_answer(steps), target, self.strict_normalisers)

    def score_stored(self, answer: str | None, target: str) -> Scored:
        """Score a stored `answer` field (already extracted; null = none given) against the target."""
        return score_answer(Invalid("answer is null") if answer is None else answer, target, self.normalisers)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("word_sorting", "Q: Sort the following words alphabetically: List: ", False),
        TaskSpec("tracking_shuffled_objects", "Q: ", True),
        # The input already holds the statements, "Q: Given the above statements ..." and options.
        TaskSpec("logical_deduction", "", True),
        TaskSpec("multistep_arithmetic", "Q: ", False),
        TaskSpec(
            "dyck_languages",
            "Q: Complete the rest of the sequence, making sure that the parentheses are closed properly. Input: ",
            False,
        ),
    )
}


def task_spec(name: str) -> TaskSpec:
    """The spec of any task name: one of the five, or a generic one (the paper's answer regex and
    exact match after tidying, no few-shot prompt) for traces of other tasks, which bbm can score and
    locate mistakes in but not generate."""
    return TASKS.get(name) or TaskSpec(name, "Q: ", False)


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None

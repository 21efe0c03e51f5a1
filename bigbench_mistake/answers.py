"""Answer extraction and scoring as a pipeline of named steps (regex -> strip -> option letter).

Every step either returns the (new) answer or an `Invalid` with a reason; nothing is repaired
silently. Self-consistency votes over the outputs of the same pipeline.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

ANSWER_RE = re.compile(r"(?<=[Tt]he answer is).*$")
OPTION_RE = re.compile(r"\(([A-Z])\)")


@dataclass(frozen=True)
class Invalid:
    reason: str


Filter = Callable[[str], "str | Invalid"]


def take_answer(last_step: str) -> str | Invalid:
    """The paper's regex on the last step; no match means no answer was given."""
    m = ANSWER_RE.search(last_step)
    return m.group(0) if m else Invalid("no 'the answer is' in the last step")


_FENCES = re.compile(r"`+|\*\*")                      # code fences / inline code, markdown bold
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")             # LaTeX \boxed{...}
# A sentence ends after a word or number ("324. Let's verify"); never after a bracket, since a
# Dyck answer ")." is the paper's wrong answer, not ")" with a full stop.
_SENTENCE_END = re.compile(r"(?<=[0-9A-Za-z])[.!?](?=\s)")
_TRAILING = re.compile(r"(?<=[0-9A-Za-z])[.,;:!?\"'$]+$")  # "0." -> "0"; ")." stays
_LEADING = re.compile(r"^[\s:\"'$]+")


def tidy(answer: str) -> str:
    """The answer as other models write it, reduced to what the paper's traces put there:
    `the answer is **324**.`, `the answer is 18 * 18 = 324. Let's verify ...`, `the answer is `324``
    and `the answer is \\boxed{324}` all give `324`. Each rule only removes text no target holds
    (the dataset's 2,186 traces score the same with and without it; a test checks), and bbm counts
    the answers whose score it changed (`strict_status`)."""
    boxed = _BOXED.search(answer)
    if boxed:
        answer = boxed.group(1)
    answer = _FENCES.sub("", answer)
    end = _SENTENCE_END.search(answer)
    if end:
        answer = answer[:end.start()]
    if "=" in answer:  # a calculation ending in its result: the result is the answer
        answer = answer.rsplit("=", 1)[1]
    return _TRAILING.sub("", _LEADING.sub("", answer.rstrip()))


def strip(answer: str) -> str | Invalid:
    answer = answer.strip()
    return answer if answer else Invalid("empty answer")


def option_letter(answer: str) -> str | Invalid:
    """Multiple-choice tasks are scored on the letter: '(C)' from '(C)' or ' (C) pink ball'."""
    letters = sorted(set(OPTION_RE.findall(answer)))
    if len(letters) == 1:
        return f"({letters[0]})"
    if not letters:
        return Invalid(f"no option letter in {answer!r}")
    return Invalid(f"several option letters in {answer!r}")


def run_filters(text: str, filters: Sequence[Filter]) -> str | Invalid:
    value: str | Invalid = text
    for f in filters:
        if isinstance(value, Invalid):
            break
        value = f(value)
    return value


@dataclass(frozen=True)
class Scored:
    answer: str | None  # normalised answer, None when invalid
    invalid_reason: str | None
    correct: bool

    @property
    def status(self) -> str:
        return "invalid" if self.invalid_reason else ("correct" if self.correct else "wrong")


def score_answer(raw: str | Invalid, target: str, normalise: Sequence[Filter]) -> Scored:
    """Exact match of the normalised answer against the normalised target."""
    value = run_filters(raw, normalise) if isinstance(raw, str) else raw
    if isinstance(value, Invalid):
        return Scored(None, value.reason, False)
    gold = run_filters(target, normalise)
    if isinstance(gold, Invalid):
        raise ValueError(f"target {target!r} is itself invalid: {gold.reason}")
    return Scored(value, None, value == gold)

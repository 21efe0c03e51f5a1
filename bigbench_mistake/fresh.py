"""Fresh questions for the tasks whose questions can be generated exactly: dyck_languages, word_sorting
and multistep_arithmetic. A model may have seen BIG-Bench's own questions in training, which can inflate
its accuracy on them; these are new, seeded (the same seed gives the same questions on any machine),
shaped like the dataset's, and never equal to one of the dataset's questions.

Targets are computed, not looked up: `dyck_target` closes the open brackets of a prefix,
`sorted_words` sorts the words, `evaluate` computes an arithmetic expression exactly with the usual
precedence. Each reproduces the dataset's own targets (tests/test_fresh.py checks all of them).
"""
from __future__ import annotations

import random
from pathlib import Path

from .arithmetic import exact_value
from .questions import Question

FRESH_TASKS = ("dyck_languages", "word_sorting", "multistep_arithmetic")
PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


# ---------------------------------------------------------------- targets
def dyck_target(prefix: str) -> str:
    """The closing brackets that complete a Dyck-language prefix ("{ [ ]" -> "}")."""
    stack = []
    for token in prefix.split():
        if token in PAIRS:
            stack.append(token)
        elif not stack or PAIRS[stack.pop()] != token:
            raise ValueError(f"not a Dyck prefix: {prefix!r}")
    return " ".join(PAIRS[t] for t in reversed(stack))


def sorted_words(words: str) -> str:
    return " ".join(sorted(words.split()))


def evaluate(expression: str) -> int:
    """The value of an integer expression of +, -, * and parentheses (a trailing "=" is ignored)."""
    value = exact_value(expression.strip().removesuffix("=")) if "/" not in expression else None
    if value is None or value.denominator != 1:
        raise ValueError(f"not an expression of integers, +, -, * and parentheses: {expression!r}")
    return int(value)


# ---------------------------------------------------------------- questions like the dataset's
def _dyck(rng: random.Random) -> str:
    """A random prefix of a Dyck word with 1-3 brackets left open (as in the dataset), 6-60 tokens."""
    length, open_at_end = rng.randint(6, 60), rng.randint(1, 3)
    tokens: list[str] = []
    stack: list[str] = []
    while len(tokens) < length or len(stack) != open_at_end:
        must_close = len(stack) > open_at_end and len(tokens) + len(stack) - open_at_end >= length
        if stack and (must_close or rng.random() < 0.45):
            tokens.append(PAIRS[stack.pop()])
        else:
            stack.append(rng.choice(list(PAIRS)))
            tokens.append(stack[-1])
    return " ".join(tokens)


def _words(rng: random.Random, vocabulary: list[str]) -> str:
    return " ".join(rng.sample(vocabulary, rng.randint(4, 20)))


def _arithmetic(rng: random.Random) -> str:
    """Nested groups like the dataset's: depth 1-3 (3, 7 or 15 parentheses), leaves of 2-4 numbers in
    -9..9 joined by +, - or *."""
    def group(depth: int) -> str:
        if depth == 0:
            nums = [str(rng.randint(-9, 9)) for _ in range(rng.randint(2, 4))]
            return "(" + "".join(n if i == 0 else f" {rng.choice('+-*')} {n}" for i, n in enumerate(nums)) + ")"
        return f"({group(depth - 1)} {rng.choice('+-*')} {group(depth - 1)})"

    return group(rng.choices([1, 2, 3], weights=[32, 61, 7])[0]) + " ="


def fresh_questions(task: str, n: int, seed: int = 0, data_dir: str | Path | None = None) -> list[Question]:
    """n new questions of `task` with exact targets: distinct, none equal to a dataset question."""
    from .dataset import load_task

    if task not in FRESH_TASKS:
        raise ValueError(f"fresh questions exist for {', '.join(FRESH_TASKS)}; got {task!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    dataset = load_task(task, data_dir)
    seen = {t.input for t in dataset}
    vocabulary = sorted({w for t in dataset for w in t.input.split()}) if task == "word_sorting" else []
    rng = random.Random(f"bbm-fresh|{task}|{seed}")
    out: list[Question] = []
    for _ in range(1000 * n):
        if len(out) == n:
            break
        if task == "dyck_languages":
            text = _dyck(rng)
            target = dyck_target(text)
        elif task == "word_sorting":
            text = _words(rng, vocabulary)
            target = sorted_words(text)
        else:
            text = _arithmetic(rng)
            target = str(evaluate(text))
        if text not in seen:
            seen.add(text)
            out.append(Question(task, f"fresh-{task}-s{seed}-{len(out):04d}", text, target))
    if len(out) < n:
        raise ValueError(f"could only make {len(out)} distinct new {task} questions")
    return out

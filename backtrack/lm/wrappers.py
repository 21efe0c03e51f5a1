"""Wrappers that serve every backend: counting tokens and calls, and answering a repeated call from memory."""
from __future__ import annotations

from typing import Any, Sequence

from backtrack.lm.generator import Generator, Step, sample_steps_batch


class CountingGenerator:
    """The Generator protocol, forwarding to another generator and counting tokens and calls."""

    def __init__(self, inner: Generator):
        self.inner = inner
        self.name = inner.name
        self.tokens = 0
        self.calls = 0

    def _count(self, steps: list[Step]) -> list[Step]:
        self.tokens += sum(s.n_tokens for s in steps)
        self.calls += len(steps)
        return steps

    def greedy_steps(self, prompts: Sequence[str], max_tokens: int) -> list[Step]:
        return self._count(self.inner.greedy_steps(prompts, max_tokens))

    def sample_steps(self, prompt: str, n: int, temperature: float, seed: int, max_tokens: int,
                     top_k: int | None = None, top_p: float | None = None) -> list[Step]:
        return self._count(self.inner.sample_steps(prompt, n, temperature, seed, max_tokens, top_k=top_k, top_p=top_p))

    def sample_each(self, prompts: Sequence[str], temperature: float, seeds: Sequence[int], max_tokens: int,
                    top_k: int | None = None, top_p: float | None = None) -> list[Step]:
        return self._count(self.inner.sample_each(prompts, temperature, seeds, max_tokens, top_k=top_k, top_p=top_p))

    def sample_steps_batch(self, prompts: Sequence[str], n: int, temperature: float, seeds: Sequence[int],
                           max_tokens: int, top_k: int | None = None, top_p: float | None = None) -> list[list[Step]]:
        out = sample_steps_batch(self.inner, prompts, n, temperature, seeds, max_tokens, top_k, top_p)
        self._count([s for steps in out for s in steps])
        return out

    def logprob(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        self.calls += 1
        return self.inner.logprob(prompt, continuations)

    def snapshot(self) -> tuple[int, int]:
        return self.tokens, self.calls


class MemoGenerator:
    """The Generator protocol, answering a call it has answered before from memory.

    In bbm compare, self-consistency and sc-weighted draw the same k samples (same prompts, seeds
    and sample indexes) and backtrack starts from cot's greedy trace: with this each is generated
    once. A key holds every argument of the call (prompt, token cap, temperature, seed, top-k, top-p),
    so two different draws never share an entry. `hits` counts the calls answered from memory."""

    def __init__(self, inner: Generator):
        self.inner = inner
        self.name = inner.name
        self.memo: dict[tuple, Any] = {}
        self.hits = 0

    def clear(self) -> None:
        self.memo.clear()

    def greedy_steps(self, prompts: Sequence[str], max_tokens: int) -> list[Step]:
        keys = [("greedy", p, max_tokens) for p in prompts]
        todo = list(dict.fromkeys(p for p, k in zip(prompts, keys) if k not in self.memo))
        self.hits += len(prompts) - len(todo)
        for p, step in zip(todo, self.inner.greedy_steps(todo, max_tokens) if todo else []):
            self.memo[("greedy", p, max_tokens)] = step
        return [self.memo[k] for k in keys]

    def sample_steps(self, prompt: str, n: int, temperature: float, seed: int, max_tokens: int,
                     top_k: int | None = None, top_p: float | None = None) -> list[Step]:
        key = ("sample", prompt, n, temperature, seed, max_tokens, top_k, top_p)
        if key in self.memo:
            self.hits += 1
        else:
            self.memo[key] = self.inner.sample_steps(prompt, n, temperature, seed, max_tokens, top_k=top_k, top_p=top_p)
        return list(self.memo[key])

    def sample_each(self, prompts: Sequence[str], temperature: float, seeds: Sequence[int], max_tokens: int,
                    top_k: int | None = None, top_p: float | None = None) -> list[Step]:
        # the key of sample_steps(prompt, 1, ...): the same draw, whichever call made it
        keys = [("sample", p, 1, temperature, s, max_tokens, top_k, top_p) for p, s in zip(prompts, seeds)]
        todo = [i for i, k in enumerate(keys) if k not in self.memo]
        self.hits += len(keys) - len(todo)
        if todo:
            steps = self.inner.sample_each([prompts[i] for i in todo], temperature, [seeds[i] for i in todo],
                                           max_tokens, top_k=top_k, top_p=top_p)
            for i, step in zip(todo, steps):
                self.memo[keys[i]] = [step]
        return [self.memo[k][0] for k in keys]

    def logprob(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        key = ("logprob", prompt, tuple(continuations))
        if key in self.memo:
            self.hits += 1
        else:
            self.memo[key] = self.inner.logprob(prompt, continuations)
        return list(self.memo[key])

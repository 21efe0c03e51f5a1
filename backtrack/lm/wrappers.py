"""Wrappers that serve every LM backend: counting what a caller costs, and answering a request seen
before from memory. Each is an LM itself, named as the LM it wraps (cache keys see the model, not
the wrapper), and passes any other attribute through (a backend's chat_prefix, tokenizer, ...)."""
from __future__ import annotations

from typing import Any, Sequence

from backtrack.lm.generator import LM, LoglikelihoodRequest, Step, StepRequest


def scored_prompts(requests: Sequence[LoglikelihoodRequest]) -> int:
    """The model calls of a loglikelihood call: one per distinct prompt (its continuations are scored
    after one pass over it), as when one call scored one prompt's list of continuations."""
    return len({r.prompt for r in requests})


class Wrapper:
    """Forwards the LM calls and every other attribute to `inner`."""

    def __init__(self, inner: LM):
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, item: str) -> Any:
        if item == "inner":  # not set yet (e.g. while unpickling): no endless recursion
            raise AttributeError(item)
        return getattr(self.inner, item)

    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        return self.inner.generate_steps(requests)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        return self.inner.loglikelihood(requests)


class CountingLM(Wrapper):
    """Counts tokens generated (sum of Step.n_tokens) and model calls: one per Step returned (a
    request for n samples is n calls) plus one per prompt a loglikelihood call scores."""

    def __init__(self, inner: LM):
        super().__init__(inner)
        self.tokens = 0
        self.calls = 0

    def _count(self, steps: list[Step]) -> None:
        self.tokens += sum(s.n_tokens for s in steps)
        self.calls += len(steps)

    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        out = self.inner.generate_steps(requests)
        self._count([s for steps in out for s in steps])
        return out

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        self.calls += scored_prompts(requests)
        return self.inner.loglikelihood(requests)

    def snapshot(self) -> tuple[int, int]:
        return self.tokens, self.calls


class CachingLM(Wrapper):
    """Answers a request it has answered before from memory; only the others reach the wrapped LM.

    In bbm compare, self-consistency and sc-weighted draw the same k samples (same prompts, seeds
    and sample indexes) and backtrack starts from cot's greedy trace: with this each is generated
    once. The key is the whole frozen request (prompt, n, temperature, seed, token cap, top-k,
    top-p), so two different draws never share an entry. `hits` counts what came from memory: one
    per step request, and one per prompt whose loglikelihood requests all did."""

    def __init__(self, inner: LM):
        super().__init__(inner)
        self.memo: dict[StepRequest | LoglikelihoodRequest, Any] = {}
        self.hits = 0

    def clear(self) -> None:
        self.memo.clear()

    def _fill(self, requests: Sequence, call) -> list:
        """The requests not in memory yet (each once), answered by one call of the wrapped LM."""
        todo = list(dict.fromkeys(r for r in requests if r not in self.memo))
        for r, answer in zip(todo, call(todo) if todo else []):
            self.memo[r] = answer
        return todo

    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        todo = self._fill(requests, lambda rs: [tuple(steps) for steps in self.inner.generate_steps(rs)])
        self.hits += len(requests) - len(todo)
        return [list(self.memo[r]) for r in requests]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        todo = self._fill(requests, self.inner.loglikelihood)
        self.hits += scored_prompts(requests) - scored_prompts(todo)
        return [self.memo[r] for r in requests]

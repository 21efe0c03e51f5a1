"""The generator interface: a few list-in/list-out calls every backend implements, nothing else.

Prompts are plain strings (few-shot prompt + question + accepted steps, ending in "Thought N:"),
so the same interface fits a local transformers model and an OpenAI-compatible server. A backend
may cache internally (e.g. reuse the KV cache of the longest shared token prefix); callers never see it.

Conventions shared by every backend:
- A step ends at the first newline (the newline is consumed and counted, not returned), at EOS, or at
  `max_tokens`. `Step.text` is the generated text with the newline removed and surrounding spaces
  stripped (the model writes " Let's ..." after "Thought N:").
- `Step.logprob` is the sum of the log-probabilities of every generated token (stop token
  included) under the distribution actually sampled from (temperature, and top-k/top-p only
  when asked for explicitly); `Step.n_tokens` counts those tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, Sequence, runtime_checkable

STOP_NEWLINE, STOP_EOS, STOP_MAX_TOKENS = "newline", "eos", "max_tokens"


@dataclass(frozen=True)
class Step:
    text: str
    logprob: float
    n_tokens: int
    stop_reason: str  # STOP_NEWLINE | STOP_EOS | STOP_MAX_TOKENS

    def __post_init__(self) -> None:
        if self.stop_reason not in (STOP_NEWLINE, STOP_EOS, STOP_MAX_TOKENS):
            raise ValueError(f"unknown stop_reason {self.stop_reason!r}")
        if self.n_tokens < 0:
            raise ValueError("n_tokens must be >= 0")


@dataclass(frozen=True)
class RawStep:
    """One decoded step with its token ids (what Step hides), as the local backends produce it."""
    token_ids: tuple[int, ...]
    token_logprobs: tuple[float, ...]
    text: str
    stop_reason: str

    def to_step(self) -> Step:
        return Step(self.text, float(sum(self.token_logprobs)), len(self.token_ids), self.stop_reason)


def generator_identity(generator: Any) -> dict[str, Any]:
    """What decides a generator's outputs besides the arguments of a call, for cache keys: its full
    name (wrappers such as +chat included), the device it computes on and the versions of the
    libraries that compute (a backend lists them in `libraries`; wrappers are seen through `inner`).
    A server's hardware and software are not known here: its name is all there is."""
    inner = generator
    while hasattr(inner, "inner"):
        inner = inner.inner
    device = getattr(inner, "device", None)
    return {"name": generator.name, "device": "" if device is None else str(device),
            "libraries": {lib: _installed(lib) for lib in getattr(inner, "libraries", ())}}


@lru_cache(maxsize=None)
def _installed(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def check_context(n_prompt: int, max_tokens: int, context: int | None, source: str) -> None:
    """Refuse a prompt whose tokens plus the new ones do not fit the model's context, before any
    model call (a too-long prompt otherwise ends in a huge allocation or a traceback deep inside
    the model). `source` says where the context comes from (e.g. n_ctx, max_position_embeddings)."""
    if context is not None and n_prompt + max_tokens > context:
        raise ValueError(f"a prompt of {n_prompt} tokens plus {max_tokens} new ones exceeds the context of "
                         f"{context} tokens ({source})")


@runtime_checkable
class Generator(Protocol):
    #: identifies the model and everything that changes its outputs (used in cache keys)
    name: str

    def greedy_steps(self, prompts: Sequence[str], max_tokens: int) -> list[Step]:
        """The temperature-0 next step for each prompt (one Step per prompt, in order)."""
        ...

    def sample_steps(self, prompt: str, n: int, temperature: float, seed: int, max_tokens: int,
                     top_k: int | None = None, top_p: float | None = None) -> list[Step]:
        """n independent samples of the next step; the same arguments give the same samples."""
        ...

    def sample_each(self, prompts: Sequence[str], temperature: float, seeds: Sequence[int], max_tokens: int,
                    top_k: int | None = None, top_p: float | None = None) -> list[Step]:
        """One sample of the next step per prompt, prompt i drawn with seeds[i]: the Step that
        sample_steps(prompts[i], 1, temperature, seeds[i], ...) returns (a backend may decode the
        prompts together; batching may move log-probs in the last digits). Self-consistency uses it
        to advance its k traces together."""
        ...

    def logprob(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """log P(continuation | prompt) for each continuation (sum over its tokens, temperature 1)."""
        ...


def sample_steps_batch(generator: Generator, prompts: Sequence[str], n: int, temperature: float,
                       seeds: Sequence[int], max_tokens: int, top_k: int | None = None,
                       top_p: float | None = None) -> list[list[Step]]:
    """`sample_steps(prompts[i], n, temperature, seeds[i], ...)` for every i: through the backend's own
    `sample_steps_batch` when it has one (llama.cpp decodes all n x len(prompts) streams together),
    else one call per prompt. Either way the same samples (each drawn from its (seed, index) stream)."""
    own = getattr(generator, "sample_steps_batch", None)
    if own is not None:
        return own(prompts, n, temperature, seeds, max_tokens, top_k=top_k, top_p=top_p)
    return [generator.sample_steps(p, n, temperature, s, max_tokens, top_k=top_k, top_p=top_p)
            for p, s in zip(prompts, seeds)]

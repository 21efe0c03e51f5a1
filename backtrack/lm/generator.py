"""The LM interface: two list-in/list-out calls every backend implements, nothing else (in the style
of lm-evaluation-harness's `LM`).

    generate_steps([StepRequest, ...])         -> one list of `n` Steps per request, in order
    loglikelihood([LoglikelihoodRequest, ...]) -> log P(continuation | prompt) per request, in order

Prompts are plain strings (few-shot prompt + question + accepted steps, ending in "Thought N:"),
so the same interface fits a local transformers model and an OpenAI-compatible server. A backend
may batch all the requests of one call together and may cache internally (e.g. reuse the KV cache
of the longest shared token prefix); callers never see it.

Conventions shared by every backend:
- A step ends at the first newline (the newline is consumed and counted, not returned), at EOS, or at
  `max_tokens`. `Step.text` is the generated text with the newline removed and surrounding spaces
  stripped (the model writes " Let's ..." after "Thought N:").
- Temperature 0 is greedy decoding; its `Step.logprob` is at temperature 1 (greedy has no other
  distribution). A sampled step's `Step.logprob` is under the distribution actually sampled from
  (temperature, and top-k/top-p only when asked for explicitly); a backend that cannot give that
  number returns NaN (unknown) rather than another one. `Step.n_tokens` counts the generated
  tokens, stop token included, and the log-prob sums over the same tokens.
- Seeds: sample k (0-based) of a request with seed s is drawn from the random stream (s, k), so a
  sample depends neither on n nor on what else is in the call: sample 0 of (seed s, n=3) is the one
  sample of (seed s, n=1). Each backend derives its stream from (s, k) in its own way (see
  hf_backend.sample_generator, openai_backend.sample_seed, llama.cpp's PCG64((s, k))).
- loglikelihood is at temperature 1, the sum over the continuation's tokens; "" scores 0.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import KW_ONLY, dataclass
from functools import lru_cache
from typing import Any, Protocol, Sequence, runtime_checkable

STOP_NEWLINE, STOP_EOS, STOP_MAX_TOKENS = "newline", "eos", "max_tokens"


@dataclass(frozen=True)
class Step:
    """One generated step. `logprob` is NaN when the backend cannot know it (e.g. a server that only
    returns temperature-1 log-probs, asked to sample at another temperature); callers that rank by
    log-prob must check (math.isnan) and refuse."""
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


@dataclass(frozen=True)
class StepRequest:
    """`n` next steps of `prompt`: greedy at temperature 0 (the default), else samples drawn from
    the streams (seed, 0), ..., (seed, n - 1). Everything but the prompt is passed by keyword; there
    is no default token cap because callers use different ones (steps, answers, decompositions).
    Frozen and hashable: the whole request is the key of a cached answer (wrappers.CachingLM)."""
    prompt: str
    _: KW_ONLY
    n: int = 1
    temperature: float = 0.0
    seed: int = 0
    max_tokens: int
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise ValueError(f"prompt must be a string, got {type(self.prompt).__name__}")
        if not 0 <= self.temperature < math.inf:  # also refuses NaN
            raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {self.temperature}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be >= 1 (or None for no top-k), got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (or None for no top-p), got {self.top_p}")
        if self.temperature == 0:
            if self.n != 1:
                raise ValueError(f"temperature 0 is greedy decoding, which has one answer: n must be 1, got {self.n} "
                                 "(sample at a temperature > 0 for several)")
            if self.top_k is not None or self.top_p is not None:
                raise ValueError("top_k/top_p only apply when sampling: leave them unset at temperature 0 (greedy)")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | prompt): the tokens the model would have to emit after the prompt to write
    `continuation`, scored at temperature 1."""
    prompt: str
    continuation: str


def stable_int(text: str, n_bytes: int = 4, byteorder: str = "little") -> int:
    """The integer of the first n_bytes of sha256(text): how every seed in bbm is derived from its
    parts (run seed, question or trace, sample index, ...), stable across runs and machines."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:n_bytes], byteorder)  # type: ignore[arg-type]


@runtime_checkable
class LM(Protocol):
    #: identifies the model and everything that changes its outputs (used in cache keys)
    name: str

    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        """For each request, its `n` Steps (sample k from stream (seed, k)), in request order. The
        same request always gives the same Steps (batching may move log-probs in the last digits)."""
        ...

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        """log P(continuation | prompt) for each request (sum over its tokens, temperature 1)."""
        ...

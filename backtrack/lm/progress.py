"""Progress a person can watch: items done, and tokens/s that move with every model call.

A command's bar counts finished items (traces, questions). One item can take minutes (a batch of
traces decoded step by step), so the LM is wrapped to count the tokens of every call and refresh
the bar's tokens/s after each one; a backend that can report inside a call (llama.cpp: 64 samples
decoded together can take minutes) also refreshes it every ~10 s mid-call.
"""
from __future__ import annotations

import sys
import time
from typing import Any

from backtrack.lm.generator import Step
from backtrack.lm.wrappers import CountingLM


def reporting_backend(lm: Any) -> Any | None:
    """The object under any wrappers (each holding the next as `inner`) that reports inside its calls,
    i.e. has its own `on_progress` attribute; None when there is none. Assigning the callback on a
    wrapper would not reach the backend, hence the walk."""
    while lm is not None:
        if "on_progress" in vars(lm):
            return lm
        lm = vars(lm).get("inner")
    return None


class ProgressLM(CountingLM):
    """CountingLM that reports tokens and tokens/s on a tqdm bar after every call; other attributes
    (e.g. a backend's chat_prefix) pass through to the wrapped LM."""

    def __init__(self, inner: Any, bar: Any):
        super().__init__(inner)
        self.bar = bar
        self.start = time.perf_counter()
        backend = reporting_backend(inner)
        if backend is not None:  # a backend that reports inside its calls (llama.cpp): every ~10 s
            backend.on_progress = self._mid_call

    def _mid_call(self, prompt_tokens: int, generated: int) -> None:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix(tokens=self.tokens, in_call=generated, prompt_tokens=prompt_tokens,
                             tok_s=f"{generated / elapsed:.1f}", refresh=True)

    def _count(self, steps: list[Step]) -> None:
        super()._count(steps)
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix(tokens=self.tokens, tok_s=f"{self.tokens / elapsed:.1f}", refresh=True)


def progress_bar(total: int, label: str):
    """A tqdm bar on stderr counting items."""
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="item", file=sys.stderr, disable=total == 0, mininterval=0)

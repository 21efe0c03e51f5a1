"""The paper's few-shot prompts sent through an instruct model's chat template (`--prompt-format chat`).

A raw prompt (TaskSpec.prompt) is the few-shot examples, the question, then the trace so far from
"Thought 1:". In chat form the few-shot examples and the question become the user's message,
rendered with the model's own chat template (the GGUF's `tokenizer.chat_template`, through jinja2,
as transformers would), and the trace so far is the start of the assistant's reply. The step format
and answer extraction stay exactly those of the raw prompt, so locators, scores and reports mean
the same thing with either format; only the generator's name (and so every cache key) changes.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from backtrack.lm.generator import Step

FIRST_STEP = "\nThought 1:"


def split_prompt(prompt: str) -> tuple[str, str]:
    """(user message, start of the assistant's reply) of a raw step prompt: the reply starts at the
    last "Thought 1:" (the current question's; steps never hold a newline). A prompt without one
    (a finder's or least-to-most's) is all user message."""
    i = prompt.rfind(FIRST_STEP)
    if i < 0:
        return prompt, ""
    return prompt[:i].rstrip(), prompt[i + 1:]


def render_chat_template(template: str, user: str, bos: str = "", eos: str = "") -> str:
    """The template applied to one user message, with the generation prompt (assistant turn) open."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=[{"role": "user", "content": user}],
                                            add_generation_prompt=True, bos_token=bos, eos_token=eos)


class ChatFormatGenerator:
    """Any generator, prompted through a chat template (`chat_prefix(user) -> str`)."""

    def __init__(self, inner, chat_prefix):
        self.inner = inner
        self.name = f"{inner.name}+chat"
        self._prefix = lru_cache(maxsize=256)(chat_prefix)

    def wrap(self, prompt: str) -> str:
        user, reply = split_prompt(prompt)
        return self._prefix(user) + reply

    def greedy_steps(self, prompts: Sequence[str], max_tokens: int) -> list[Step]:
        return self.inner.greedy_steps([self.wrap(p) for p in prompts], max_tokens)

    def sample_steps(self, prompt: str, n: int, temperature: float, seed: int, max_tokens: int,
                     top_k: int | None = None, top_p: float | None = None) -> list[Step]:
        return self.inner.sample_steps(self.wrap(prompt), n, temperature, seed, max_tokens, top_k=top_k, top_p=top_p)

    def sample_each(self, prompts: Sequence[str], temperature: float, seeds: Sequence[int], max_tokens: int,
                    top_k: int | None = None, top_p: float | None = None) -> list[Step]:
        return self.inner.sample_each([self.wrap(p) for p in prompts], temperature, seeds, max_tokens,
                                      top_k=top_k, top_p=top_p)

    def logprob(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        return self.inner.logprob(self.wrap(prompt), continuations)

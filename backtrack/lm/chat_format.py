"""The paper's few-shot prompts sent through an instruct model's chat template (`--prompt-format chat`).

A raw prompt (TaskSpec.prompt) is the few-shot examples, the question, then the trace so far from
"Thought 1:". In chat form the few-shot examples and the question become the user's message,
rendered with the model's own chat template (the GGUF's `tokenizer.chat_template`, through jinja2,
as transformers would), and the trace so far is the start of the assistant's reply. The step format
and answer extraction stay exactly those of the raw prompt, so locators, scores and reports mean
the same thing with either format; only the LM's name (and so every cache key) changes.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Sequence

from backtrack.lm.generator import LoglikelihoodRequest, Step, StepRequest
from backtrack.lm.wrappers import Wrapper

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


class ChatFormatGenerator(Wrapper):
    """Any LM, prompted through a chat template (`chat_prefix(user) -> str`): every request's prompt
    is rewritten, everything else passes through unchanged (so seeds and batching are the inner LM's)."""

    def __init__(self, inner, chat_prefix):
        super().__init__(inner)
        self.name = f"{inner.name}+chat"
        self._prefix = lru_cache(maxsize=256)(chat_prefix)

    def wrap(self, prompt: str) -> str:
        user, reply = split_prompt(prompt)
        return self._prefix(user) + reply

    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        return self.inner.generate_steps([replace(r, prompt=self.wrap(r.prompt)) for r in requests])

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        return self.inner.loglikelihood([replace(r, prompt=self.wrap(r.prompt)) for r in requests])

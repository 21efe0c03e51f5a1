"""A prompt that does not fit the model's context is refused before any forward pass, with the
lengths named (the tiny model's context: max_position_embeddings = 8192), as llama.cpp does."""
from __future__ import annotations

import pytest

from backtrack.lm.generator import LoglikelihoodRequest, StepRequest

from tests.tiny_model import TINY_FEW_SHOT

LINE = "Thought 1: Let's add 2 and 3.\n"


def long_prompt(gen, n_tokens: int) -> str:
    per_line = len(gen.tokenizer(LINE, add_special_tokens=False)["input_ids"])
    text = TINY_FEW_SHOT + "\n" + LINE * (n_tokens // per_line + 1)
    assert len(gen.encode(text)) > n_tokens
    return text


def test_the_context_is_the_models_position_limit(tiny_generator):
    from backtrack.lm.hf_backend import model_context

    assert model_context(tiny_generator.model, tiny_generator.tokenizer) == (8192, "max_position_embeddings")


@pytest.mark.parametrize("call", ["greedy", "sample", "sample_each", "logprob"])
def test_a_prompt_past_the_context_is_refused_before_any_forward_pass(tiny_generator, call):
    g = tiny_generator
    p = long_prompt(g, 8192)
    n = len(g.encode(p))
    calls = g.stats["forward_calls"]
    expected = rf"a prompt of {n} tokens plus \d+ new ones exceeds the context of 8192 tokens \(max_position_embeddings\)"
    with pytest.raises(ValueError, match=expected):
        if call == "greedy":
            g.generate_steps([StepRequest("Q: 1 + 1 =\nThought 1:", max_tokens=8), StepRequest(p, max_tokens=8)])
        elif call == "sample":
            g.generate_steps([StepRequest(p, n=2, temperature=1.0, seed=0, max_tokens=8)])
        elif call == "sample_each":
            g.generate_steps([StepRequest(p, temperature=1.0, seed=0, max_tokens=8)])
        else:
            g.loglikelihood([LoglikelihoodRequest(p, " 5")])
    assert g.stats["forward_calls"] == calls


def test_max_tokens_count_against_the_context(tiny_generator):
    g = tiny_generator
    p = long_prompt(g, 8000)
    n = len(g.encode(p))
    assert n < 8192
    with pytest.raises(ValueError, match=f"a prompt of {n} tokens plus 300 new ones exceeds the context of 8192"):
        g.generate_steps([StepRequest(p, max_tokens=300)])


# ------------------------------------------------------------------ the server backend
VLLM_TOO_LONG = ("This model's maximum context length is 2048 tokens. However, you requested 2100 tokens "
                 "(2036 in the messages, 64 in the completion).")


def server_generator(url, **kw):
    from backtrack.lm.openai_backend import OpenAIConfig, OpenAIGenerator

    return OpenAIGenerator(OpenAIConfig(base_url=url, model="m", max_retries=3, **kw), sleep=lambda s: None)


@pytest.mark.parametrize("status", [400, 500])
def test_the_servers_own_context_error_becomes_a_clear_message_not_a_retry(status):
    from backtrack.lm.openai_backend import ContextTooLong
    from tests.test_openai_backend import Scripted

    with Scripted([(status, {"error": {"message": VLLM_TOO_LONG}})]) as s:
        s.model_fields = {"max_model_len": 2048}  # vLLM reports its context in GET /models
        with server_generator(s.base_url) as g:
            with pytest.raises(ContextTooLong) as e:
                g.generate_steps([StepRequest("p", max_tokens=64)])
    msg = str(e.value)
    assert "plus 64 new ones" in msg and "context of 2048 tokens" in msg and "maximum context length" in msg
    assert len(s.requests) == 1  # not retried: the same prompt would not fit the next time either


def test_max_tokens_past_the_reported_context_are_refused_before_sending():
    from backtrack.lm.openai_backend import ContextTooLong
    from tests.test_openai_backend import Scripted

    with Scripted([]) as s:
        s.model_fields = {"max_model_len": 2048}
        with server_generator(s.base_url) as g:
            with pytest.raises(ContextTooLong, match="plus 4096 new ones exceeds the context of 2048 tokens"):
                g.generate_steps([StepRequest("p", max_tokens=4096)])
    assert s.requests == []

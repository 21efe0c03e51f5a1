"""The LM interface (backtrack/lm/generator.py) and the wrappers every backend shares: request
validation, the seed convention on real models (the tiny transformers model; Gemma 3 270M on
llama.cpp), and the caching and counting wrappers around the real tiny model."""
import math
from dataclasses import replace

import pytest

from backtrack.lm.chat_format import ChatFormatGenerator
from backtrack.lm.generator import LM, LoglikelihoodRequest, StepRequest
from backtrack.lm.progress import ProgressLM
from backtrack.lm.wrappers import CachingLM, CountingLM
from bigbench_mistake.tasks import get_task
from tests.tiny_model import TINY_FEW_SHOT

TASK = get_task("multistep_arithmetic")


def prompt(question, steps=()):
    return TASK.prompt(question, steps, few_shot=TINY_FEW_SHOT)


# ------------------------------------------------------------------ requests
@pytest.mark.parametrize("kw,message", [
    (dict(max_tokens=0), r"max_tokens must be >= 1, got 0"),
    (dict(temperature=1.0, n=0, max_tokens=4), r"n must be >= 1, got 0"),
    (dict(temperature=-0.5, max_tokens=4), r"temperature must be a number >= 0 \(0 = greedy\), got -0.5"),
    (dict(temperature=math.nan, max_tokens=4), r"temperature must be a number >= 0"),
    (dict(temperature=math.inf, max_tokens=4), r"temperature must be a number >= 0"),
    (dict(n=3, max_tokens=4), r"temperature 0 is greedy decoding, which has one answer: n must be 1, got 3"),
    (dict(top_k=5, max_tokens=4), r"top_k/top_p only apply when sampling"),
    (dict(top_p=0.9, max_tokens=4), r"top_k/top_p only apply when sampling"),
    (dict(temperature=1.0, top_k=0, max_tokens=4), r"top_k must be >= 1 \(or None for no top-k\), got 0"),
    (dict(temperature=1.0, top_p=0.0, max_tokens=4), r"top_p must be in \(0, 1\] \(or None for no top-p\), got 0.0"),
    (dict(temperature=1.0, top_p=1.5, max_tokens=4), r"top_p must be in \(0, 1\]"),
])
def test_step_request_validation_says_what_is_wrong(kw, message):
    with pytest.raises(ValueError, match=message):
        StepRequest("Q:", **kw)


def test_step_request_defaults_and_keywords():
    r = StepRequest("Q:", max_tokens=8)
    assert (r.n, r.temperature, r.seed, r.top_k, r.top_p, r.greedy) == (1, 0.0, 0, None, None, True)
    assert not StepRequest("Q:", n=4, temperature=0.7, seed=3, max_tokens=8, top_k=40, top_p=0.9).greedy
    with pytest.raises(TypeError):
        StepRequest("Q:")  # no default token cap: callers use different ones
    with pytest.raises(TypeError):
        StepRequest("Q:", 4, max_tokens=8)  # all but the prompt by keyword: no silently swapped n and seed
    assert StepRequest("Q:", max_tokens=8) == r and hash(StepRequest("Q:", max_tokens=8)) == hash(r)
    assert LoglikelihoodRequest("Q:", " Yes") != LoglikelihoodRequest("Q:", " No")


# ------------------------------------------------------------------ the seed convention
def assert_sample_k_is_its_own_stream(lm, text, logprob_tol):
    """Sample 0 of (seed s, n=3) is the one sample of (seed s, n=1), also when decoded in one call
    with other requests; another seed draws from other streams."""
    three = StepRequest(text, n=3, temperature=1.0, seed=7, max_tokens=12)
    [[one]] = lm.generate_steps([replace(three, n=1)])
    [[greedy], many, [one_again]] = lm.generate_steps([StepRequest(text, max_tokens=12), three, replace(three, n=1)])
    assert len(many) == 3
    for got in (many[0], one_again):
        assert (got.text, got.n_tokens, got.stop_reason) == (one.text, one.n_tokens, one.stop_reason)
        assert got.logprob == pytest.approx(one.logprob, abs=logprob_tol * one.n_tokens)
    [[alone]] = lm.generate_steps([StepRequest(text, max_tokens=12)])
    assert greedy.text == alone.text
    [others] = lm.generate_steps([replace(three, seed=8, temperature=1.5)])
    hot = lm.generate_steps([replace(three, temperature=1.5)])[0]
    assert [s.text for s in others] != [s.text for s in hot]


def test_seed_convention_on_the_tiny_transformers_model(tiny_generator):
    assert isinstance(tiny_generator, LM)
    assert_sample_k_is_its_own_stream(tiny_generator, prompt("9 + 8 - 5 ="), 1e-5)
    # sample k of a request is the stream (seed, k): sample_raw draws sample 2 alone with first_index=2
    [three] = tiny_generator.generate_steps([StepRequest(prompt("1 + 1 ="), n=3, temperature=1.3, seed=4,
                                                         max_tokens=12)])
    [third] = tiny_generator.sample_raw(prompt("1 + 1 ="), 1, 1.3, seed=4, max_tokens=12, first_index=2)
    assert three[2].text == third.text


@pytest.fixture(scope="module")
def llama(gemma_gguf):
    from backtrack.lm.llama_cpp_backend import LlamaCppConfig, LlamaCppGenerator

    g = LlamaCppGenerator(LlamaCppConfig(str(gemma_gguf), n_threads=2, n_ctx=8192))
    yield g
    g.close()


def test_seed_convention_on_gemma_in_llama_cpp(llama):
    # log-probs move between batch shapes in llama.cpp (~0.02 a token for Gemma; its module docstring)
    assert_sample_k_is_its_own_stream(llama, get_task("multistep_arithmetic").prompt("((5 * 2) - (7 + 1)) ="), 0.05)


def test_progress_reaches_the_backend_through_wrappers(llama):
    """ProgressLM hands its mid-call callback to the backend under any wrappers, not to a wrapper."""
    from tqdm import tqdm

    bar = tqdm(total=1, disable=True)
    chat = ChatFormatGenerator(CachingLM(llama), lambda user: user)
    progress = ProgressLM(chat, bar)
    try:
        assert llama.on_progress == progress._mid_call and "on_progress" not in vars(chat)
        assert progress.chat_prefix == llama.chat_prefix  # attributes pass through every layer
    finally:
        llama.on_progress = None
        bar.close()


# ------------------------------------------------------------------ wrappers
class Spy:
    """The real LM, keeping every request that reaches it (a spy, not a stand-in)."""

    def __init__(self, inner):
        self.inner, self.name, self.seen = inner, inner.name, []

    def generate_steps(self, requests):
        self.seen += list(requests)
        return self.inner.generate_steps(requests)

    def loglikelihood(self, requests):
        self.seen += list(requests)
        return self.inner.loglikelihood(requests)


def test_caching_answers_an_identical_request_from_memory_and_any_other_from_the_model(tiny_generator):
    spy = Spy(tiny_generator)
    cache = CachingLM(spy)
    base = StepRequest(prompt("1 + 1 ="), n=2, temperature=1.0, seed=3, max_tokens=8)
    first = cache.generate_steps([base])
    assert cache.generate_steps([base]) == first and cache.hits == 1 and spy.seen == [base]
    variants = [replace(base, prompt=prompt("0 + 6 =")), replace(base, n=3), replace(base, temperature=0.7),
                replace(base, seed=4), replace(base, max_tokens=9), replace(base, top_k=50), replace(base, top_p=0.9)]
    for v in variants:  # differing in one field: a new draw, asked of the model
        cache.generate_steps([v])
        assert spy.seen[-1] == v
    assert cache.hits == 1 and len(spy.seen) == 1 + len(variants)
    # in one call, only what is not in memory reaches the model (each once); answers keep request order
    greedy = StepRequest(prompt("1 + 1 ="), max_tokens=8)
    before = len(spy.seen)
    got = cache.generate_steps([base, greedy, variants[1], greedy])
    assert spy.seen[before:] == [greedy] and cache.hits == 1 + 3
    assert got[0] == first[0] and got[1] == got[3] and len(got[2]) == 3
    # log-likelihoods: memory per (prompt, continuation); a hit per prompt answered wholly from memory
    yes, no = LoglikelihoodRequest(prompt("1 + 1 ="), " Yes"), LoglikelihoodRequest(prompt("1 + 1 ="), " No")
    scores = cache.loglikelihood([yes, no])
    hits = cache.hits
    assert cache.loglikelihood([no, yes]) == scores[::-1] and cache.hits == hits + 1
    maybe = LoglikelihoodRequest(prompt("1 + 1 ="), " Maybe")
    before = len(spy.seen)
    cache.loglikelihood([yes, maybe])
    assert spy.seen[before:] == [maybe] and cache.hits == hits + 1
    cache.clear()
    cache.generate_steps([base])
    assert spy.seen[-1] == base


def test_counting_counts_tokens_and_calls(tiny_generator):
    counter = CountingLM(tiny_generator)
    asks = [StepRequest(prompt("1 + 1 ="), max_tokens=8), StepRequest(prompt("0 + 6 ="), n=3, temperature=1.0,
                                                                           max_tokens=8)]
    out = counter.generate_steps(asks)
    assert counter.snapshot() == (sum(s.n_tokens for steps in out for s in steps), 4)  # 1 greedy step + 3 samples
    p = prompt("1 + 1 =")
    counter.loglikelihood([LoglikelihoodRequest(p, " Yes"), LoglikelihoodRequest(p, " No"),
                           LoglikelihoodRequest(prompt("0 + 6 ="), " Yes")])
    assert counter.calls == 4 + 2  # one per prompt scored, whatever its number of continuations
    assert counter.name == tiny_generator.name and counter.tokenizer is tiny_generator.tokenizer

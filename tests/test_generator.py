"""The transformers backend and step-wise decoding, checked against plain full forward passes of a
tiny model built in the test session (fp32)."""
import pytest
import torch

from backtrack.methods.decoding import DecodeConfig, TraceRequest, decode_traces
from backtrack.lm.generator import LM, STOP_MAX_TOKENS, STOP_NEWLINE, LoglikelihoodRequest, StepRequest
from backtrack.lm.hf_backend import HFGenerator, ModelConfig, filtered_logprobs, load_generator
from bigbench_mistake.tasks import get_task
from tests.tiny_model import TINY_FEW_SHOT

TASK = get_task("multistep_arithmetic")
QUESTIONS = ["4 + 1 =", "7 + 2 - 3 =", "1 + 1 =", "9 + 8 - 5 =", "0 + 6 ="]


def prompt(question, steps=()):
    return TASK.prompt(question, steps, few_shot=TINY_FEW_SHOT)


def fresh(model_dir, **kw) -> HFGenerator:
    return load_generator(ModelConfig(model=str(model_dir), dtype="float32", **kw))


def greedy(gen, text, max_tokens):
    [[step]] = gen.generate_steps([StepRequest(text, max_tokens=max_tokens)])
    return step


def samples(gen, text, n, temperature, seed, max_tokens, **kw):
    [steps] = gen.generate_steps([StepRequest(text, n=n, temperature=temperature, seed=seed, max_tokens=max_tokens, **kw)])
    return steps


def reference_greedy(gen: HFGenerator, text: str, max_tokens: int):
    """Unbatched, uncached: one full forward pass over the whole sequence per generated token."""
    ids = gen.encode(text)
    out, lp = [], 0.0
    with torch.inference_mode():
        for _ in range(max_tokens):
            logits = gen.model(input_ids=torch.tensor([ids + out]), use_cache=False).logits[0, -1].float()
            nxt = int(logits.argmax())
            lp += float(torch.log_softmax(logits, -1)[nxt])
            out.append(nxt)
            if gen.newline[nxt] or nxt in gen.eos:
                break
    return out, lp


def full_forward_logprob(gen: HFGenerator, prompt_ids, cont_ids, temperature=1.0, top_k=None, top_p=None):
    with torch.inference_mode():
        logits = gen.model(input_ids=torch.tensor([prompt_ids + cont_ids]), use_cache=False).logits[0].float()
    logp = filtered_logprobs(logits[len(prompt_ids) - 1:-1], temperature, top_k, top_p)
    return float(logp.gather(1, torch.tensor(cont_ids)[:, None]).sum())


def test_is_a_generator_and_names_model_and_dtype(tiny_generator, tiny_model_dir):
    assert isinstance(tiny_generator, LM)
    assert tiny_generator.name == f"{tiny_model_dir}@float32"


def test_step_stops_at_newline_and_text_is_stripped(tiny_generator):
    step = greedy(tiny_generator, prompt("4 + 1 ="), 40)
    assert step.stop_reason == STOP_NEWLINE
    assert "\n" not in step.text and step.text == step.text.strip() and step.text
    raw = tiny_generator.greedy_raw([prompt("4 + 1 =")], 40)[0]
    assert tiny_generator.newline[raw.token_ids[-1]] and not any(tiny_generator.newline[t] for t in raw.token_ids[:-1])
    assert step.n_tokens == len(raw.token_ids)  # the newline token is counted


def test_token_cap(tiny_generator):
    step = greedy(tiny_generator, prompt("4 + 1 ="), 2)
    assert step.stop_reason == STOP_MAX_TOKENS and step.n_tokens == 2


@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_greedy_equals_unbatched_uncached_reference(arch, tiny_model_dir, tmp_path_factory):
    if arch == "gemma3":
        gen = fresh(tiny_model_dir)
    else:
        from tests.tiny_model import build_tiny_model

        gen = fresh(build_tiny_model(tmp_path_factory.mktemp("llama"), arch="llama", train_steps=60))
    # prompts of different lengths (left padding; the gemma3 sliding window is 16 tokens), and a
    # second round whose prompts extend the first (the prefix cache is reused)
    prompts = [prompt(q) for q in QUESTIONS]
    for _ in range(2):
        raws = gen.greedy_raw(prompts, 24)
        for p, raw in zip(prompts, raws):
            ids, lp = reference_greedy(gen, p, 24)
            assert list(raw.token_ids) == ids
            assert raw.to_step().logprob == pytest.approx(lp, abs=1e-4)
        prompts = [p + " " + r.text + "\nThought 2:" for p, r in zip(prompts, raws)]
    assert gen.stats["reused_tokens"] > 0
    # one prompt at a time, with an empty prefix store, gives the same steps
    alone = fresh(gen_dir(gen), prefix_cache_tokens=0)
    one_by_one = [alone.greedy_raw([p], 24)[0] for p in prompts]
    batched = gen.greedy_raw(prompts, 24)
    assert [r.token_ids for r in one_by_one] == [r.token_ids for r in batched]
    assert [r.to_step().logprob for r in one_by_one] == pytest.approx([r.to_step().logprob for r in batched], abs=1e-4)


def gen_dir(gen):
    return gen.name.rsplit("@", 1)[0]


def test_sample_logprob_equals_full_forward(tiny_generator):
    p = prompt("7 + 2 - 3 =")
    ids = tiny_generator.encode(p)
    for temperature, top_k, top_p in [(1.0, None, None), (0.7, None, None), (1.3, 5, None), (1.0, None, 0.8)]:
        raws = tiny_generator.sample_raw(p, 4, temperature, seed=3, max_tokens=20, top_k=top_k, top_p=top_p)
        for raw in raws:
            expect = full_forward_logprob(tiny_generator, ids, list(raw.token_ids), temperature, top_k, top_p)
            assert raw.to_step().logprob == pytest.approx(expect, abs=1e-4)


def test_logprob_equals_full_forward(tiny_generator):
    p = prompt("1 + 1 =")
    conts = [" Let's add 1 and 1.\n", " 1 + 1 = 2. So the answer is 2\n", "x"]
    got = tiny_generator.loglikelihood([LoglikelihoodRequest(p, c) for c in conts])
    for c, g in zip(conts, got):
        cont_ids = tiny_generator.tokenizer(c, add_special_tokens=False)["input_ids"]
        assert g == pytest.approx(full_forward_logprob(tiny_generator, tiny_generator.encode(p), cont_ids), abs=1e-4)
    assert tiny_generator.loglikelihood([LoglikelihoodRequest(p, "")]) == [0.0]
    # requests of one prompt need not be adjacent: each gets its own score, in request order
    mixed = tiny_generator.loglikelihood([LoglikelihoodRequest(p, conts[0]), LoglikelihoodRequest(prompt("4 + 1 ="), "x"),
                                          LoglikelihoodRequest(p, conts[2])])
    assert [mixed[0], mixed[2]] == pytest.approx([got[0], got[2]], abs=1e-5)


def test_seeds_reproduce_samples_and_samples_do_not_depend_on_n(tiny_generator, tiny_model_dir):
    p = prompt("9 + 8 - 5 =")
    a = samples(tiny_generator, p, 6, 1.0, seed=11, max_tokens=20)
    b = samples(fresh(tiny_model_dir), p, 6, 1.0, seed=11, max_tokens=20)
    # Same samples; log-probs agree to float rounding (the session's generator may reuse a cached
    # prefix computed in another order than a fresh model's single prefill).
    assert [(s.text, s.n_tokens, s.stop_reason) for s in a] == [(s.text, s.n_tokens, s.stop_reason) for s in b]
    assert [s.logprob for s in a] == pytest.approx([s.logprob for s in b], abs=1e-5)
    # they are samples, not six copies, and another seed draws others (at T=1.5: the tiny model is too
    # sure of its first step at T=1 for six draws to differ on every CPU it is trained on)
    hot = samples(tiny_generator, p, 6, 1.5, seed=11, max_tokens=20)
    assert len({s.text for s in hot}) > 1
    c = samples(tiny_generator, p, 6, 1.5, seed=12, max_tokens=20)
    assert [s.text for s in hot] != [s.text for s in c]
    first, rest = (samples(tiny_generator, p, 2, 1.0, seed=11, max_tokens=20),
                   tiny_generator.sample_raw(p, 4, 1.0, seed=11, max_tokens=20, first_index=2))
    assert [s.text for s in first + rest] == [s.text for s in a]


def test_one_sample_requests_decoded_together_are_each_request_alone(tiny_generator):
    prompts = [prompt("9 + 8 - 5 ="), prompt("1 + 1 ="), prompt("(3 * 4) - (2 + 7) * 5 =")]  # different lengths
    seeds = [5, 6, 5]
    asks = [StepRequest(p, temperature=0.8, seed=s, max_tokens=20) for p, s in zip(prompts, seeds)]
    together = [steps for [steps] in tiny_generator.generate_steps(asks)]
    for p, s, got in zip(prompts, seeds, together):
        [alone] = tiny_generator.sample_raw(p, 1, 0.8, seed=s, max_tokens=20)  # its prompt's cache, not left-padded
        alone = alone.to_step()
        assert (got.text, got.n_tokens, got.stop_reason) == (alone.text, alone.n_tokens, alone.stop_reason)
        assert got.logprob == pytest.approx(alone.logprob, abs=1e-4)
    # a call mixing greedy, one-sample and n-sample requests answers each as if it came alone
    mixed = tiny_generator.generate_steps([StepRequest(prompts[0], max_tokens=20), asks[1],
                                           StepRequest(prompts[2], n=2, temperature=0.8, seed=5, max_tokens=20)])
    assert [len(steps) for steps in mixed] == [1, 1, 2]
    assert mixed[0][0].text == greedy(tiny_generator, prompts[0], 20).text
    assert mixed[1][0].text == together[1].text
    assert [s.text for s in mixed[2]] == [s.text for s in samples(tiny_generator, prompts[2], 2, 0.8, 5, 20)]


def test_top_k_one_is_greedy(tiny_generator):
    p = prompt("0 + 6 =")
    greedy = tiny_generator.greedy_raw([p], 20)[0]
    sampled = tiny_generator.sample_raw(p, 3, 1.0, seed=0, max_tokens=20, top_k=1)
    assert all(s.token_ids == greedy.token_ids and s.to_step().logprob == 0.0 for s in sampled)


def test_bad_arguments(tiny_generator):
    with pytest.raises(ValueError, match="temperature"):
        samples(tiny_generator, prompt("1 + 1 ="), 2, 0.0, 0, 10)
    with pytest.raises(ValueError, match="temperature"):
        tiny_generator.sample_raw(prompt("1 + 1 ="), 2, 0.0, 0, 10)
    with pytest.raises(ValueError, match="top_p"):
        samples(tiny_generator, prompt("1 + 1 ="), 2, 1.0, 0, 10, top_p=0.0)
    with pytest.raises(ValueError, match="dtype"):
        ModelConfig(model="x", dtype="float8")
    with pytest.raises(ValueError, match="cache_dir"):
        ModelConfig()
    with pytest.raises(FileNotFoundError):
        load_generator(ModelConfig(model="/no/such/folder"))


def test_decode_traces_stop_reasons_and_batching(tiny_model_dir):
    gen = fresh(tiny_model_dir)
    reqs = [TraceRequest("multistep_arithmetic", q) for q in QUESTIONS]
    reqs.append(TraceRequest("multistep_arithmetic", "4 + 1 =", ("Let's add 4 and 1.",)))
    reqs.append(TraceRequest("multistep_arithmetic", "4 + 1 =", ("4 + 1 = 5. So the answer is 5",)))
    cfg = DecodeConfig(max_steps=5, max_tokens=30, batch_size=3, few_shot=TINY_FEW_SHOT)
    out = decode_traces(gen, reqs, cfg)
    assert [t.request for t in out] == reqs
    for t in out[:-1]:
        assert t.steps[:len(t.request.steps)] == t.request.steps
        assert len(t.steps) == len(t.request.steps) + len(t.new_steps) <= 5
        if t.stop_reason == "answer":
            assert isinstance(TASK.extract_answer(t.steps), str)
        assert t.stop_reason in ("answer", "step_cap", "token_cap", "eos")
    assert sum(t.stop_reason == "answer" for t in out) >= 3  # the tiny model learned the format
    assert out[-1].stop_reason == "answer" and out[-1].new_steps == ()
    # batching changes nothing: batch 1 with no prefix store gives the same traces
    alone = decode_traces(fresh(tiny_model_dir, prefix_cache_tokens=0), reqs, DecodeConfig(
        max_steps=5, max_tokens=30, batch_size=1, few_shot=TINY_FEW_SHOT))
    assert [t.steps for t in alone] == [t.steps for t in out]
    assert [t.stop_reason for t in alone] == [t.stop_reason for t in out]
    capped = decode_traces(gen, reqs[:2], DecodeConfig(max_steps=1, max_tokens=30, few_shot=TINY_FEW_SHOT))
    assert all(t.stop_reason in ("step_cap", "answer") and len(t.steps) == 1 for t in capped)
    tok = decode_traces(gen, reqs[:2], DecodeConfig(max_steps=5, max_tokens=2, few_shot=TINY_FEW_SHOT))
    assert all(t.stop_reason == "token_cap" and len(t.steps) == 1 for t in tok)


def test_decode_config_validation():
    with pytest.raises(ValueError, match="batch_size"):
        DecodeConfig(batch_size=0)
    with pytest.raises(ValueError, match="unknown task"):
        TraceRequest("nope", "x")

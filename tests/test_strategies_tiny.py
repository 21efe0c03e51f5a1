"""Strategies, compare and the prompt-based finders end to end on the tiny offline model."""
import json

import pytest

from backtrack.runs.compare import run_compare
from backtrack.methods.least_to_most import decompose_prompt, least_to_most as ltm, solve_subquestions
from backtrack.methods.self_consistency import majority_vote
from backtrack.lm.generator import LoglikelihoodRequest, StepRequest
from backtrack.lm.wrappers import CountingLM
from backtrack.methods.strategies import Item, StrategyConfig, get_strategy
from bigbench_mistake.dataset import load_task
from bigbench_mistake.tasks import get_task
from reward_model.locator import Locator
from backtrack.runs.find import run_find
from reward_model.prompt_finders import FinderConfig, PromptFinder, step_prompt


@pytest.fixture(scope="module")
def gen(tiny_generator):
    return tiny_generator


class Recorder:
    """The real LM, with every request's prompt kept in order (a spy, not a stand-in): one entry per
    step request (a request for n samples is one), one per prompt a loglikelihood call scores; and
    the number of calls made."""

    def __init__(self, inner):
        self.inner, self.name, self.prompts, self.calls = inner, inner.name, [], 0

    def generate_steps(self, requests):
        self.prompts += [("greedy" if r.greedy else "sample", r.prompt) for r in requests]
        self.calls += 1
        return self.inner.generate_steps(requests)

    def loglikelihood(self, requests):
        self.prompts += [("logprob", p) for p in dict.fromkeys(r.prompt for r in requests)]
        self.calls += 1
        return self.inner.loglikelihood(requests)


ITEMS = [Item("multistep_arithmetic", "q1", "(1 + 2) =", "3"), Item("multistep_arithmetic", "q2", "(4 + 3) =", "7")]
CFG = StrategyConfig(max_steps=3, max_step_tokens=20, sc_samples=4, sc_temperature=0.7, ltm_decompose_tokens=24)


def test_cot_counts_tokens_and_calls(gen):
    [r] = get_strategy("cot")([ITEMS[0]], CFG, gen, None)
    assert 1 <= len(r.steps) <= CFG.max_steps and r.calls == len(r.steps) and r.tokens >= r.calls
    assert (r.answer is None) == (r.invalid_reason is not None) and r.extra["stop_reason"]


def test_self_consistency_vote_matches_its_samples(gen):
    rs = get_strategy("self-consistency")(ITEMS[:1], CFG, gen, None)
    for r in rs:
        vote = r.extra["vote"]
        samples = r.extra["samples"]
        assert len(samples) == CFG.sc_samples
        assert vote["n_valid"] + vote["n_invalid"] == CFG.sc_samples
        assert sum(vote["counts"].values()) == vote["n_valid"]
        again = majority_vote(get_task(r.item.task), samples)
        assert again.answer == vote["answer"] == r.answer
        if vote["answer"] is not None:  # the winner has the largest count; a tie is reported as such
            top = max(vote["counts"].values())
            assert vote["counts"][vote["answer"]] == top
            assert bool(vote["tied"]) == (sum(c == top for c in vote["counts"].values()) > 1)
        assert r.calls == sum(len(s) for s in samples)  # one sampled step per call
    # same seed, same samples (seed per question, sample and step); another seed, other samples
    again = get_strategy("self-consistency")(ITEMS[:1], CFG, gen, None)[0]
    assert again.extra["samples"] == rs[0].extra["samples"]


def test_least_to_most_decomposes_then_one_call_per_subquestion(gen):
    spec = get_task("multistep_arithmetic")
    rec = Recorder(gen)
    subs = ["What is A = (1 + 2)?", "What is B = (3 + 4)?", "What is A + B?"]
    steps = solve_subquestions(rec, spec, "(1 + 2) + (3 + 4) =", subs, max_step_tokens=16)
    assert len(steps) == len(subs) + 1 and len(rec.prompts) == len(subs) + 1
    for k, (kind, prompt) in enumerate(rec.prompts[:-1]):
        assert kind == "greedy" and prompt.endswith(f"Sub-question {k + 1}: {subs[k]}\nThought {k + 1}:")
        for j in range(k):  # earlier answers are in context
            assert f"Thought {j + 1}: {steps[j].text}\nSub-question {j + 2}:" in prompt
    assert rec.prompts[-1][1].endswith(f"Thought {len(subs)}: {steps[-2].text}\nThought {len(subs) + 1}:")

    rec = Recorder(gen)
    r = ltm(rec, spec, "(1 + 2) =", max_subquestions=3, decompose_tokens=32, max_step_tokens=16)
    assert rec.prompts[0] == ("greedy", decompose_prompt(spec, "(1 + 2) ="))
    assert len(rec.prompts) == 1 + len(r.subquestions) + 1 == len(r.generated)
    assert len(r.steps) == len(r.subquestions) + 1
    [res] = get_strategy("least-to-most")([ITEMS[0]], CFG, gen, None)
    assert res.calls == 2 + len(res.extra["subquestions"]) == 1 + len(res.steps) and res.tokens >= res.calls


def traces_for_finders():
    return [t.replace(steps=t.steps[:3], mistake_index=t.mistake_index if (t.mistake_index or 0) < 3 else None)
            for t in load_task("multistep_arithmetic")[:2]]


@pytest.mark.parametrize("method", ["direct-trace", "direct-step", "cot-step"])
@pytest.mark.parametrize("mode", ["logprob", "generate"])
def test_finders_return_an_index_or_none(gen, method, mode):
    traces = traces_for_finders()
    finder = PromptFinder(gen, FinderConfig(method, mode, answer_tokens=4, reasoning_tokens=12))
    assert isinstance(finder, Locator) and finder.name == f"prompt:{method}:{mode}"
    results = finder.find(traces)
    for t, r in zip(traces, results):
        assert r.index is None or 0 <= r.index < len(t.steps)
        assert r.mode == mode and 0 <= r.unparsed <= r.checks
        if method != "direct-trace":  # stops at the first "No"
            assert r.checks == (len(t.steps) if r.index is None else r.index + 1)
    scores = finder.scores(traces)
    assert [len(s) for s in scores] == [len(t.steps) for t in traces]
    assert all(sum(s) == (r.index is not None) for s, r in zip(scores, results))


class CallSpy:
    """The real LM, counting how many times each method is called (not how many requests)."""

    def __init__(self, inner):
        self.inner, self.name, self.invocations = inner, inner.name, []

    def generate_steps(self, requests):
        self.invocations.append(("generate", len(requests)))
        return self.inner.generate_steps(requests)

    def loglikelihood(self, requests):
        self.invocations.append(("logprob", len(requests)))
        return self.inner.loglikelihood(requests)


@pytest.mark.parametrize("method,mode", [("direct-trace", "generate"), ("direct-trace", "logprob"),
                                         ("direct-step", "logprob"), ("cot-step", "generate")])
def test_finders_check_traces_together_as_they_would_one_by_one(gen, method, mode):
    """Batched in lockstep: the same verdicts as trace by trace, each trace's tokens and calls as
    CountingLM counts them, and one model call per round (cot-step: two) instead of one per check."""
    traces = [t.replace(steps=t.steps[:4], mistake_index=None) for t in load_task("word_sorting")[:3]]
    config = FinderConfig(method, mode, answer_tokens=4, reasoning_tokens=10)
    counter = CountingLM(gen)
    spy = CallSpy(counter)
    together = PromptFinder(spy, config).find(traces)
    alone = [PromptFinder(gen, config).find([t])[0] for t in traces]

    def seen(r):
        return r.index, r.checks, r.unparsed, r.generated, [round(p, 4) for p in r.p_no], r.tokens, r.calls

    assert [seen(r) for r in together] == [seen(r) for r in alone]
    assert sum(r.tokens for r in together) == counter.tokens and sum(r.calls for r in together) == counter.calls
    rounds = 1 if method == "direct-trace" else max(r.checks for r in together)
    assert len(spy.invocations) == rounds * (2 if method == "cot-step" else 1)
    first = (sum(len(t.steps) + 1 for t in traces) if (method, mode) == ("direct-trace", "logprob")  # every candidate
             else len(traces) * (2 if mode == "logprob" else 1))  # a request (" Yes" and " No") per trace
    assert spy.invocations[0][1] == first
    assert PromptFinder(gen, config).find([]) == []


def test_yes_no_scoring_picks_the_higher_probability_answer(gen):
    traces = traces_for_finders()
    finder = PromptFinder(gen, FinderConfig("direct-step", "logprob"))
    for t, r in zip(traces, finder.find(traces)):
        for k in range(r.checks):
            p = step_prompt(t.task, t.input, t.steps, k, cot=False)
            lp_yes, lp_no = gen.loglikelihood([LoglikelihoodRequest(p, " Yes"), LoglikelihoodRequest(p, " No")])
            said_no = r.index == k
            assert said_no == (lp_no > lp_yes)
            assert (r.p_no[k] > 0.5) == (lp_no > lp_yes)


def test_sc_weighted_with_a_prompt_finder(gen):
    counter = CountingLM(gen)
    finder = PromptFinder(counter, FinderConfig("direct-step", "logprob"))
    cfg = StrategyConfig(max_steps=3, max_step_tokens=16, sc_samples=3, located_weight=0.25)
    [r] = get_strategy("sc-weighted")([ITEMS[0]], cfg, counter, finder)
    located, vote = r.extra["located"], r.extra["vote"]
    assert len(located) == 3 and r.extra["locator"] == "prompt:direct-step:logprob"
    expect: dict = {}
    for a, loc in zip(r.extra["sample_answers"], located):
        if a is not None:
            expect[a] = expect.get(a, 0) + (1.0 if loc is None else 0.25)
    assert vote["totals"] == pytest.approx(expect)
    assert r.calls > sum(len(s) for s in r.extra["samples"])  # the finder's logprob calls are charged too
    with pytest.raises(ValueError):
        get_strategy("sc-weighted")([ITEMS[0]], cfg, gen, None)


def test_compare_run_dir_resumes(gen, tmp_path):
    cfg = StrategyConfig(max_steps=3, max_step_tokens=16, sc_samples=2, ltm_decompose_tokens=24)
    strategies = ["cot", "self-consistency", "least-to-most"]
    out = run_compare(ITEMS, strategies, cfg, gen, tmp_path / "run")
    assert out["questions_complete"] == 2
    block = out["tasks"]["multistep_arithmetic"]
    assert set(block) == set(strategies) and all(b["n"] == 2 and b["calls"] > 0 for b in block.values())
    assert (tmp_path / "run" / "accuracy_vs_tokens.png").stat().st_size > 0
    lines = (tmp_path / "run" / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6
    counter = CountingLM(gen)
    again = run_compare(ITEMS, strategies, cfg, counter, tmp_path / "run")
    assert counter.calls == 0 and again["all"] == out["all"]  # resumed: nothing recomputed
    assert json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))["all"] == out["all"]
    from backtrack.runs.compare import summarise_run_dir

    assert summarise_run_dir(tmp_path / "run")["all"] == out["all"]  # --summary-only: reads, runs nothing
    with pytest.raises(ValueError):
        run_compare(ITEMS, ["sc-weighted"], cfg, gen, tmp_path / "other")


def test_sample_traces_advances_k_traces_together_as_sample_trace_draws_them(gen):
    from backtrack.methods.self_consistency import sample_trace, sample_traces

    spec = get_task("multistep_arithmetic")
    kw = dict(temperature=1.0, seed=4, max_steps=3, max_step_tokens=10)
    spy = Recorder(gen)
    together = sample_traces(spy, spec, "(2 + 5) =", "q", 3, **kw)
    alone = [sample_trace(gen, spec, "(2 + 5) =", "q", i, **kw) for i in range(3)]
    assert [t for t, _ in together] == [t for t, _ in alone]
    assert len({tuple(t) for t, _ in together}) > 1  # three different samples
    assert sum(kind == "sample" for kind, _ in spy.prompts) == sum(len(t) for t, _ in together)


def test_compare_generates_shared_calls_once(gen, tmp_path):
    """sc-weighted votes over the samples self-consistency drew, backtrack starts from cot's trace:
    those calls come from the memo (counted in tokens and calls, listed as reused)."""
    from dataclasses import replace

    from backtrack.lm.wrappers import CachingLM
    from reward_model.simple import RandomLocator

    cfg = StrategyConfig(max_steps=3, max_step_tokens=12, sc_samples=2)
    spy = Recorder(gen)
    run_compare(ITEMS[:1], ["cot", "backtrack", "self-consistency", "sc-weighted"], cfg, spy, tmp_path / "run",
                locator_spec="random", make_locator=lambda g: RandomLocator(seed=0))
    lines = (tmp_path / "run" / "samples.jsonl").read_text(encoding="utf-8").splitlines()
    rows = {r["strategy"]: r for r in map(json.loads, lines)}
    assert rows["cot"]["reused_calls"] == 0 and rows["self-consistency"]["reused_calls"] == 0
    assert rows["backtrack"]["reused_calls"] >= 1 and rows["backtrack"]["original_steps"] == rows["cot"]["steps"]
    assert rows["sc-weighted"]["samples"] == rows["self-consistency"]["samples"]
    assert rows["sc-weighted"]["reused_calls"] == rows["self-consistency"]["calls"]
    assert rows["sc-weighted"]["tokens"] == rows["self-consistency"]["tokens"]  # the cost it needs on its own
    sampled = [p for kind, p in spy.prompts if kind == "sample"]
    assert len(sampled) == rows["self-consistency"]["calls"] + 1  # + backtrack's one call for its 8 samples
    # a key holds every sampling argument: another seed or temperature is a new call
    memo = CachingLM(gen)
    ask = StepRequest("Q: 1 + 1 =", temperature=1.0, seed=0, max_tokens=6)
    a = memo.generate_steps([ask])
    assert memo.generate_steps([ask]) == a and memo.hits == 1
    memo.generate_steps([replace(ask, seed=1)])
    memo.generate_steps([replace(ask, temperature=0.7)])
    assert memo.hits == 1


def test_find_scores_with_foundation_metrics(gen, tmp_path):
    traces = traces_for_finders()
    out = run_find(traces, FinderConfig("direct-trace", "logprob"), gen, tmp_path / "find")
    assert out["scores"]["overall"]["n"] == len(traces) and out["scores"]["overall"]["missing"] == 0
    assert "always_null" in out["baselines"] and out["calls"] == len(traces)
    rows = [json.loads(x) for x in (tmp_path / "find" / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["id"] for r in rows} == {t.id for t in traces}
    assert all(r["mode"] == "logprob" and r["calls"] == 1 for r in rows)
    # one trace a batch: the same predictions
    again = run_find(traces, FinderConfig("direct-trace", "logprob"), gen, tmp_path / "find1", batch_size=1)
    assert again["scores"] == out["scores"] and again["calls"] == out["calls"]
    with pytest.raises(ValueError, match="batch_size"):
        run_find(traces, FinderConfig("direct-trace", "logprob"), gen, tmp_path / "find0", batch_size=0)


def test_registered_with_make_locator(gen):
    from reward_model.registry import LocatorOptions, make_locator

    loc = make_locator("prompt:cot-step:generate", LocatorOptions(generator=gen))
    assert isinstance(loc, PromptFinder) and loc.name == "prompt:cot-step:generate"
    assert make_locator("prompt:direct-trace", LocatorOptions(generator=gen)).config.mode == "logprob"
    with pytest.raises(ValueError):
        make_locator("prompt:direct-step")  # no model given


def test_cli_compare_and_find(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"task": "multistep_arithmetic", "id": "a", "input": "(1 + 2) =", "target": "3"}) + "\n",
                 encoding="utf-8")
    common = ["--model", str(tiny_model_dir), "--dtype", "float32"]
    res = runner.invoke(app, ["compare", "--strategies", "cot", "--questions", str(q), "--max-steps", "2",
                              "--max-step-tokens", "12", "--out", str(tmp_path / "c"), *common])
    assert res.exit_code == 0, res.output
    assert "multistep_arithmetic" in res.stdout and "tokens/q" in res.stdout
    res = runner.invoke(app, ["find", "--method", "direct-trace", "--task", "word_sorting", "--limit", "1",
                              "--out", str(tmp_path / "f"), "--json", *common])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["mode"] == "logprob" and out["scores"]["overall"]["n"] == 1
    res = runner.invoke(app, ["compare", "--strategies", "nope", "--questions", str(q), "--out", str(tmp_path / "x"), *common])
    assert res.exit_code == 1 and "unknown strategy" in res.output


def test_compare_runs_questions_together_as_it_would_one_by_one(gen, tmp_path):
    """--batch-size 3: the three questions' calls go together (fewer, larger model calls), and every
    record is what the run one question at a time wrote; seconds still add up to about the run's time."""
    import time

    from reward_model.simple import RandomLocator

    items = ITEMS + [Item("multistep_arithmetic", "q3", "(2 * 3) =", "6")]
    cfg = StrategyConfig(max_steps=3, max_step_tokens=12, sc_samples=2, ltm_decompose_tokens=24, bt_samples=2)
    strategies = ["cot", "self-consistency", "sc-weighted", "least-to-most", "backtrack"]
    runs = {}
    for batch in (1, 3):
        spy = Recorder(gen)
        began = time.perf_counter()
        run_compare(items, strategies, cfg, spy, tmp_path / f"b{batch}", locator_spec="random",
                    make_locator=lambda g: RandomLocator(seed=0), batch_size=batch)
        wall = time.perf_counter() - began
        lines = (tmp_path / f"b{batch}" / "samples.jsonl").read_text(encoding="utf-8").splitlines()
        records = {r["key"]: r for r in map(json.loads, lines)}
        assert len(records) == 15 and {r["batch_size"] for r in records.values()} == {batch}
        assert sum(r["seconds"] for r in records.values()) <= wall
        runs[batch] = records, spy
    one, three = runs[1][0], runs[3][0]
    same = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "batch_size")}  # noqa: E731
    assert {k: same(r) for k, r in one.items()} == {k: same(r) for k, r in three.items()}
    # the same requests (in another order), in fewer calls
    assert runs[3][1].calls < runs[1][1].calls and sorted(runs[3][1].prompts) == sorted(runs[1][1].prompts)

"""Backtracking end to end with a tiny real model and the gold locator on a handmade trace."""
from backtrack.lm.generator import StepRequest
from backtrack.methods.backtracking import BacktrackConfig, choose_replacement, sample_seed
from backtrack.runs.cache import OutcomeCache
from backtrack.runs.experiment import BacktrackRunConfig, backtrack_traces
from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import get_task
from reward_model.locator import GoldLocator

STEPS = ("Let's add 2 and 3.", "2 + 3 = 6.", "So the answer is 6")
WRONG = Trace("multistep_arithmetic", "hand-1", "2 + 3 =", STEPS, "6", "5", 1)
CLEAN = Trace("multistep_arithmetic", "hand-2", "2 + 3 =", ("2 + 3 = 5. So the answer is 5",), "5", "5", None)


def run(gen, traces, cache=None, **kw):
    cfg = BacktrackRunConfig(locator="gold", model=gen.name,
                             backtrack=BacktrackConfig(max_step_tokens=24, max_steps=6, **kw))
    return backtrack_traces(traces, GoldLocator(), gen, cfg, cache or OutcomeCache(None))


def test_replaces_located_step_with_best_surviving_sample(tiny_generator):
    rec, clean = run(tiny_generator, [WRONG, CLEAN])
    r0 = rec["rounds"][0]
    assert r0["location"] == 1
    assert rec["steps"][:1] == list(STEPS[:1])                     # earlier steps untouched
    assert rec["steps"][1] != STEPS[1] and r0["replacement"] == rec["steps"][1]
    survivors = [s for s in r0["samples"] if not s["same_as_mistake"]]
    assert len(r0["samples"]) == 8 and survivors
    assert max(survivors, key=lambda s: s["logprob"])["text"] == r0["replacement"]
    # the samples are exactly what the generator draws for that prompt and seed
    prompt = get_task("multistep_arithmetic").prompt(WRONG.input, STEPS[:1])
    [again] = tiny_generator.generate_steps([StepRequest(prompt, n=8, temperature=1.0,
                                                         seed=sample_seed(0, "hand-1", 1, 0), max_tokens=24)])
    assert [s.text for s in again] == [s["text"] for s in r0["samples"]]
    assert choose_replacement(again, STEPS[1], "logprob")[0] == [s.get("chosen") for s in r0["samples"]].index(True)
    # no mistake -> unchanged, nothing generated
    assert clean["steps"] == list(CLEAN.steps) and clean["rounds"][0]["location"] is None and clean["tokens"] == 0
    assert clean["status"] == clean["original_status"] == "correct"


def test_cache_reuses_outcomes(tiny_generator):
    cache = OutcomeCache(None)
    first = run(tiny_generator, [WRONG], cache)[0]
    second = run(tiny_generator, [WRONG], cache)[0]
    assert second["rounds"][0]["cached"] and second["tokens"] == 0
    assert second["steps"] == first["steps"] and cache.hits == 1


def test_backtrack_strategy_for_compare(tiny_generator):
    from backtrack.methods.strategies import Item, StrategyConfig, cot, get_strategy
    from reward_model.simple import RandomLocator

    items = [Item("multistep_arithmetic", "q1", "4 + 1 =", "5")]
    cfg = StrategyConfig(max_steps=4, max_step_tokens=20)
    [base] = cot(items, cfg, tiny_generator)
    [res] = get_strategy("backtrack")(items, cfg, tiny_generator, RandomLocator(seed=1))
    loc = res.extra["location"]
    assert res.extra["original_steps"] == base.steps
    assert res.steps[:loc] == base.steps[:loc]
    if res.extra["backtrack_stop_reason"] != "uncorrectable":
        assert res.steps[loc] == res.extra["replacement"] != base.steps[loc]
    assert res.tokens > base.tokens and res.calls >= base.calls + 8

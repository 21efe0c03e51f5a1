"""The guards beyond the paper (--selection verifier, --accept answered|verified) and the fitted
threshold, with the tiny real model and a real trained locator (a logistic step classifier fitted
here on the dataset's multistep-arithmetic traces)."""
import dataclasses

import pytest

from backtrack.lm.generator import StepRequest
from backtrack.lm.wrappers import CountingLM
from backtrack.methods.backtracking import NOT_FINISHED, BacktrackConfig, Verifier, backtrack_batch, sample_seed
from backtrack.runs.cache import OutcomeCache
from backtrack.runs.experiment import BacktrackRunConfig, backtrack_traces
from backtrack.runs.pipeline import PipelineConfig
from backtrack.methods.strategies import StrategyConfig
from bigbench_mistake.dataset import load_all
from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import get_task
from reward_model.classifier import TrainConfig, train
from reward_model.locator import GoldLocator, first_mistake, locate
from reward_model.trained import TrainedLocator

STEPS = ("Let's add 2 and 3.", "2 + 3 = 6.", "So the answer is 6")
WRONG = Trace("multistep_arithmetic", "hand-1", "2 + 3 =", STEPS, "6", "5", 1)


@pytest.fixture(scope="module")
def trained_locator():
    traces = [t for t in load_all() if t.task == "multistep_arithmetic"][:120]
    return TrainedLocator(train(traces, TrainConfig(inner_folds=2)))


def with_threshold(locator: TrainedLocator, threshold: float) -> TrainedLocator:
    model = dataclasses.replace(locator.model, threshold=threshold)
    return TrainedLocator(model)


def test_fitted_threshold_is_the_default_everywhere(trained_locator):
    traces = [t for t in load_all() if t.task == "multistep_arithmetic"][120:160]
    scores = trained_locator.scores(traces)
    # a threshold at which the fitted decision and 0.5 disagree on some trace
    peaks = sorted(max(s) for s in scores if max(s) < 0.5)
    assert peaks, "the classifier gives every trace a step above 0.5"
    loc = with_threshold(trained_locator, peaks[-1])
    fitted = [first_mistake(s, peaks[-1]) for s in scores]
    assert fitted != [first_mistake(s, 0.5) for s in scores]
    assert locate(loc, traces) == fitted
    assert locate(loc, traces, 0.5) == [first_mistake(s, 0.5) for s in scores]  # --threshold still overrides
    # the run configs default to "the locator's own"
    for cfg in (BacktrackRunConfig(locator="trained", model="m"), PipelineConfig(model="m", locator="trained"),
                StrategyConfig()):
        assert cfg.threshold is None


def test_located_steps_follow_the_fitted_threshold_in_backtrack_traces(trained_locator, tiny_generator):
    traces = [t for t in load_all() if t.task == "multistep_arithmetic"][120:140]
    scores = trained_locator.scores(traces)
    th = sorted(max(s) for s in scores)[len(scores) // 2]  # half the traces get a location
    loc = with_threshold(trained_locator, th)
    cfg = BacktrackRunConfig(locator="trained", model=tiny_generator.name,
                             backtrack=BacktrackConfig(n_samples=2, max_step_tokens=4, max_steps=1))
    recs = backtrack_traces(traces[:4], loc, tiny_generator, cfg, OutcomeCache(None))
    assert [r["rounds"][0]["location"] for r in recs] == [first_mistake(s, th) for s in scores[:4]]


def test_answered_keeps_the_original_when_no_sample_gives_an_answer(tiny_generator):
    # one step of at most 3 tokens after the replaced step 0: no candidate can write "the answer is"
    kw = dict(n_samples=4, max_step_tokens=3, max_steps=1)
    [always] = backtrack_batch([WRONG], [0], tiny_generator, BacktrackConfig(**kw))
    [guarded] = backtrack_batch([WRONG], [0], tiny_generator, BacktrackConfig(accept="answered", **kw))
    spec = get_task(WRONG.task)
    assert always.stop_reason != "rejected" and not isinstance(spec.extract_answer(always.steps), str)
    assert guarded.stop_reason == "rejected" and guarded.steps == WRONG.steps  # the original, with its answer
    survivors = [i for i, s in enumerate(guarded.samples) if not s["same_as_mistake"]]
    assert len(guarded.attempts) == len(survivors) >= 1  # every survivor was tried, best first
    assert all(not a["accepted"] and a["why"] == "no answer" for a in guarded.attempts)
    by_logprob = sorted(survivors, key=lambda i: -guarded.samples[i]["logprob"])
    assert [a["sample"] for a in guarded.attempts] == by_logprob
    assert not any(s.get("chosen") for s in guarded.samples)


def test_answered_takes_the_next_best_sample_with_an_answer(tiny_generator):
    """Room for an answer: the first ranked candidate whose trace ends with one is kept."""
    cfg = BacktrackConfig(n_samples=6, max_step_tokens=24, max_steps=3, accept="answered")
    [o] = backtrack_batch([WRONG], [1], tiny_generator, cfg)
    spec = get_task(WRONG.task)
    answered = [a for a in o.attempts if a["answer"] is not None]
    if answered:
        assert o.attempts[-1] is answered[0] and o.attempts[-1]["accepted"]
        assert isinstance(spec.extract_answer(o.steps), str)
        assert [s.get("chosen") for s in o.samples].index(True) == o.attempts[-1]["sample"]
    else:
        assert o.stop_reason == "rejected" and o.steps == WRONG.steps


def test_verifier_keeps_the_sample_the_locator_scores_lowest(tiny_generator, trained_locator):
    cfg = BacktrackConfig(n_samples=8, max_step_tokens=16, max_steps=3, selection="verifier")
    verifier = Verifier(trained_locator)
    [o] = backtrack_batch([WRONG], [1], tiny_generator, cfg, verifier=verifier)
    prompt = get_task(WRONG.task).prompt(WRONG.input, STEPS[:1])
    [samples] = tiny_generator.generate_steps([StepRequest(prompt, n=8, temperature=1.0,
                                                           seed=sample_seed(0, WRONG.id, 1, 0), max_tokens=16)])
    # the verifier's score of each sample in place: the trained locator's score of step 1 of prefix + sample
    expected = [trained_locator.scores([WRONG.replace(steps=(STEPS[0], s.text), mistake_index=None)])[0][1]
                for s in samples]
    assert [s["verifier_score"] for s in o.samples] == pytest.approx(expected, abs=1e-6)
    survivors = [i for i, s in enumerate(o.samples) if not s["same_as_mistake"]]
    best = min(survivors, key=lambda i: (expected[i], -samples[i].logprob))
    assert [s.get("chosen") for s in o.samples].index(True) == best
    assert o.steps[1] == samples[best].text
    assert len({round(expected[i], 6) for i in survivors}) > 1, "the locator told the samples apart"


class WholeTraceReader:
    """The trained locator's scores, declared not causal (as a finder that reads the whole trace is)."""

    def __init__(self, locator):
        self.locator, self.name, self.threshold = locator, f"whole:{locator.name}", locator.threshold

    def scores(self, traces):
        return self.locator.scores(traces)


def test_verified_rejects_a_trace_with_a_mistake_at_or_before_the_step(tiny_generator, trained_locator):
    # a verifier that flags every step (threshold 0) rejects every candidate; the original is kept.
    # Not causal: each candidate's trace is finished, then judged.
    cfg = BacktrackConfig(n_samples=3, max_step_tokens=12, max_steps=3, accept="verified")
    whole = Verifier(WholeTraceReader(trained_locator), 0.0)
    assert not whole.causal
    [o] = backtrack_batch([WRONG], [1], tiny_generator, cfg, verifier=whole)
    assert o.stop_reason == "rejected" and o.steps == WRONG.steps
    assert o.attempts and all(a["stop_reason"] != NOT_FINISHED for a in o.attempts)
    assert all(a["why"] in ("no answer", "verifier finds a mistake at step 0") for a in o.attempts)
    assert any(a["why"].startswith("verifier") for a in o.attempts) or all(a["answer"] is None for a in o.attempts)


def test_a_causal_verifier_rejects_a_sample_in_place_without_finishing_its_trace(tiny_generator, trained_locator):
    cfg = BacktrackConfig(n_samples=3, max_step_tokens=12, max_steps=3, accept="verified")
    causal = Verifier(trained_locator, 0.0)  # flags step 0 of any trace, whatever follows
    assert causal.causal
    counted = CountingLM(tiny_generator)
    [o] = backtrack_batch([WRONG], [1], counted, cfg, verifier=causal)
    survivors = [i for i, s in enumerate(o.samples) if not s["same_as_mistake"]]
    assert o.stop_reason == "rejected" and o.steps == WRONG.steps
    assert [a["sample"] for a in o.attempts] == sorted(survivors, key=lambda i: -o.samples[i]["logprob"])
    assert all(a["stop_reason"] == NOT_FINISHED and a["tokens"] == 0 and a["verifier_first_mistake"] == 0
               and a["why"] == "verifier finds a mistake at step 0" for a in o.attempts)
    assert counted.calls == 3 and o.tokens == sum(s["n_tokens"] for s in o.samples)  # the 3 samples, nothing more
    # the verdict in place is the finished trace's: a candidate the causal verifier passes in place is
    # finished and judged again, and one it fails in place fails once finished too
    in_place = [trained_locator.scores([WRONG.replace(steps=(STEPS[0], a["steps"][0]), mistake_index=None)])[0]
                for a in o.attempts]
    th = max(in_place[0][0], min(s[1] for s in in_place)) + 1e-9  # step 0 passes, and at least one sample
    [mixed] = backtrack_batch([WRONG], [1], tiny_generator, cfg, verifier=Verifier(trained_locator, th))
    finished = [a for a in mixed.attempts if a["stop_reason"] != NOT_FINISHED]
    assert finished
    for a in mixed.attempts:
        if a["stop_reason"] == NOT_FINISHED:
            assert a["verifier_first_mistake"] == 1
        elif a["verifier_first_mistake"] is not None:
            assert a["verifier_first_mistake"] > 1  # finished ones failed, if at all, after the replaced step


def test_guards_need_a_verifier_and_change_the_cache_key(tiny_generator):
    with pytest.raises(ValueError, match="verifier"):
        backtrack_batch([WRONG], [1], tiny_generator, BacktrackConfig(selection="verifier"))
    with pytest.raises(ValueError, match="accept"):
        BacktrackConfig(accept="sometimes")
    paper = BacktrackConfig().sampling_key()
    assert "accept" not in paper  # keys of runs made before the guards existed stay valid
    assert BacktrackConfig(accept="answered").sampling_key() != paper
    # a guarded run with a label-reading locator is verified by the trained locator
    assert BacktrackRunConfig(locator="gold", model="m", backtrack=BacktrackConfig(accept="verified")).verifier == "trained"
    with pytest.raises(ValueError, match="cannot judge"):
        BacktrackRunConfig(locator="gold", model="m", backtrack=BacktrackConfig(accept="verified"), verifier="gold")
    # the checks alone read text: they verify their own run, and any run that names them
    guarded = BacktrackConfig(accept="verified")
    assert BacktrackRunConfig(locator="checks", model="m", backtrack=guarded).verifier == "checks"
    assert BacktrackRunConfig(locator="gold", model="m", backtrack=guarded, verifier="checks:generic").verifier \
        == "checks:generic"


def test_paper_algorithm_records_are_unchanged_by_the_guards(tiny_generator):
    cfg = BacktrackRunConfig(locator="gold", model=tiny_generator.name,
                             backtrack=BacktrackConfig(max_step_tokens=24, max_steps=6))
    [rec] = backtrack_traces([WRONG], GoldLocator(), tiny_generator, cfg, OutcomeCache(None))
    assert "attempts" not in rec["rounds"][0]
    assert "accept" not in cfg.to_json()["backtrack"] and "verifier" not in cfg.to_json()

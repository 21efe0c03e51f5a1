"""The step caps never cut a trace like the dataset's, and a greedy loop (one step, or a cycle of a few
steps, written again and again) ends the trace with stop reason "loop" instead of running to the step cap."""
import pytest

from backtrack.methods.backtracking import BacktrackConfig
from backtrack.methods.decoding import (LOOP_PERIOD, MAX_STEP_TOKENS, MAX_STEPS, STOP_REPEATS, DecodeConfig,
                                        TraceRequest, decode_traces, looping)
from backtrack.methods.self_consistency import sample_traces
from bigbench_mistake.dataset import load_all
from bigbench_mistake.tasks import get_task
from tests.tiny_model import TINY_FEW_SHOT


def test_looping_counts_identical_steps_in_a_row():
    assert looping(["a", "b", "b", "b "], 3)          # whitespace aside
    assert not looping(["b", "b", "a", "b"], 3)
    assert not looping(["b", "b"], 3)
    assert not looping(["b"] * 50, 0)                 # 0: never


def test_looping_finds_a_cycle_of_up_to_four_steps():
    swaps = ["A and B swap.", "B and C swap.", "C and A swap."]
    assert looping(["start"] + swaps * 3, 3)
    assert not looping(["start"] + swaps * 3, 4)      # three times is not four
    assert not looping(swaps * 2 + swaps[:2], 3)      # broken off mid-cycle
    five = [f"step {i}" for i in range(5)]
    assert not looping(five * 4, 4) and looping(five * 4, 4, period=5)
    assert LOOP_PERIOD == 4


def test_no_correct_dataset_trace_would_be_stopped_and_none_is_longer_than_the_cap():
    traces = load_all()
    assert max(len(t.steps) for t in traces) <= MAX_STEPS
    correct = [t for t in traces if t.mistake_index is None]
    # not even 3 times in a row (18 mistaken dyck traces repeat one step 3 times or more)
    assert not any(looping(t.steps[:i], 3) for t in correct for i in range(3, len(t.steps) + 1))
    assert STOP_REPEATS >= 3 and MAX_STEP_TOKENS >= 300


def test_a_trace_that_already_loops_is_returned_with_stop_reason_loop(tiny_generator):
    loop = ("Let's add 4 and 1.",) * 3
    req = TraceRequest("multistep_arithmetic", "4 + 1 =", loop)
    cfg = dict(max_steps=6, max_tokens=12, few_shot=TINY_FEW_SHOT)
    [stopped] = decode_traces(tiny_generator, [req], DecodeConfig(stop_repeats=3, **cfg))
    assert stopped.stop_reason == "loop" and stopped.steps == loop and stopped.new_steps == ()
    [off] = decode_traces(tiny_generator, [req], DecodeConfig(stop_repeats=0, **cfg))
    assert off.new_steps and off.stop_reason != "loop"


def test_decoding_stops_a_loop_the_model_writes(tiny_generator):
    # whatever the tiny model writes, no finished trace holds stop_repeats identical steps in a row
    # unless it stopped for that reason, and a trace stopped as a loop ends with exactly such a run
    reqs = [TraceRequest("multistep_arithmetic", f"{a} + {b} =") for a in range(4) for b in range(3)]
    out = decode_traces(tiny_generator, reqs, DecodeConfig(max_steps=12, max_tokens=12, stop_repeats=2,
                                                           few_shot=TINY_FEW_SHOT))
    for t in out:
        assert (t.stop_reason == "loop") == looping(t.steps, 2)
        assert not any(looping(t.steps[:i], 2) for i in range(len(t.steps)))


def test_validation_and_the_paper_keys():
    for bad in (-1, 1):
        with pytest.raises(ValueError, match="stop_repeats"):
            DecodeConfig(stop_repeats=bad)
    # without the loop stop, the cache key is the one of runs made before it existed
    assert "stop_repeats" not in BacktrackConfig(stop_repeats=0).sampling_key()
    assert BacktrackConfig().sampling_key()["stop_repeats"] == STOP_REPEATS
    # the rule once meant one step only: today's keys name the longest block, so they differ from then
    assert BacktrackConfig().sampling_key()["loop_period"] == LOOP_PERIOD
    assert "loop_period" not in BacktrackConfig(stop_repeats=0).sampling_key()


def test_sampled_traces_stop_on_a_loop_too(tiny_generator):
    spec = get_task("multistep_arithmetic")
    for texts, _ in sample_traces(tiny_generator, spec, "2 + 2 =", "q", 4, temperature=0.7, seed=0,
                                  max_steps=10, max_step_tokens=8, stop_repeats=2):
        assert not any(looping(texts[:i], 2) for i in range(len(texts)))


def test_a_trace_stops_at_twice_its_tasks_longest_dataset_trace(tiny_generator):
    from backtrack.methods.decoding import longest_dataset_trace, task_step_cap

    longest = {t: longest_dataset_trace(t) for t in ("tracking_shuffled_objects", "dyck_languages")}
    assert longest == {"tracking_shuffled_objects": 8, "dyck_languages": 126}
    assert task_step_cap("tracking_shuffled_objects", 128, 2.0) == 16
    assert task_step_cap("dyck_languages", 128, 2.0) == 128        # --max-steps still bounds it
    assert task_step_cap("tracking_shuffled_objects", 128, 0) == 128
    assert task_step_cap("gsm8k", 40, 2.0) == 40                   # no dataset trace: --max-steps alone
    given = tuple(f"Step {i}: A and B swap." for i in range(16))
    req = TraceRequest("tracking_shuffled_objects", "Alice, Bob", given)
    cfg = dict(max_tokens=8, few_shot=TINY_FEW_SHOT)
    [capped] = decode_traces(tiny_generator, [req], DecodeConfig(**cfg))
    assert capped.stop_reason == "step_cap" and capped.new_steps == ()
    [free] = decode_traces(tiny_generator, [req], DecodeConfig(max_steps=17, step_cap_factor=0, **cfg))
    assert len(free.new_steps) == 1
    with pytest.raises(ValueError, match="step_cap_factor"):
        DecodeConfig(step_cap_factor=0.5)
    assert "step_cap_factor" not in BacktrackConfig(step_cap_factor=0).sampling_key()


def test_run_configs_without_the_stops_are_those_written_before_they_existed():
    from backtrack.runs.experiment import BacktrackRunConfig, config_json

    off = config_json(BacktrackRunConfig(locator="gold", model="m",
                                         backtrack=BacktrackConfig(stop_repeats=0, step_cap_factor=0)))
    assert not {"stop_repeats", "step_cap_factor"} & set(off["backtrack"])
    on = config_json(BacktrackRunConfig(locator="gold", model="m"))
    assert (on["backtrack"]["stop_repeats"], on["backtrack"]["step_cap_factor"]) == (STOP_REPEATS, 2.0)
    assert on["backtrack"]["loop_period"] == LOOP_PERIOD and "loop_period" not in off["backtrack"]

"""Backtracking's pure parts: sample selection, Table 6 / Figure 2 arithmetic, cache keys."""
import pytest

from backtrack.methods.backtracking import BacktrackConfig, choose_replacement, sample_seed
from backtrack.runs.cache import OutcomeCache, outcome_key
from backtrack.runs.experiment import BacktrackRunConfig, summarise_backtrack
from backtrack.lm.generator import Step
from backtrack.runs.simulate import break_even, level_location
from bigbench_mistake.records import Trace


def S(text, lp, n=4):
    return Step(text, lp, n, "newline")


def test_drops_copies_of_the_mistake_and_keeps_most_probable():
    samples = [S("a  wrong step", -0.1), S("right", -2.0), S("also right", -1.0), S("a wrong step", -0.5)]
    best, considered = choose_replacement(samples, "a wrong  step", "logprob")
    assert best == 2
    assert [c["same_as_mistake"] for c in considered] == [True, False, False, True]
    assert [c.get("chosen") for c in considered] == [False, False, True, False]


def test_length_normalised_selection_and_all_duplicates():
    samples = [S("long", -3.0, 30), S("short", -1.0, 2)]
    assert choose_replacement(samples, "x", "logprob")[0] == 1
    assert choose_replacement(samples, "x", "mean_logprob")[0] == 0
    assert choose_replacement([S("x", -1.0)], " x ", "logprob")[0] is None


def test_configs_validate():
    with pytest.raises(ValueError):
        BacktrackConfig(selection="best")
    with pytest.raises(ValueError):
        BacktrackConfig(temperature=0)
    with pytest.raises(ValueError, match="rounds"):
        BacktrackRunConfig(locator="gold", model="m", backtrack=BacktrackConfig(rounds=2))


def test_seed_and_cache_key_change_with_every_argument():
    t = Trace("word_sorting", "w1", "b a", ("s1", "s2"), "a b", "a b", 1)
    gen, gen2 = {"name": "gen"}, {"name": "gen2"}
    base = outcome_key(t, 1, 0, gen, BacktrackConfig().sampling_key())
    assert base == outcome_key(t, 1, 0, gen, BacktrackConfig().sampling_key())
    others = [outcome_key(t, 0, 0, gen, BacktrackConfig().sampling_key()),
              outcome_key(t, 1, 1, gen, BacktrackConfig().sampling_key()),
              outcome_key(t, 1, 0, gen2, BacktrackConfig().sampling_key()),
              outcome_key(t, 1, 0, gen, BacktrackConfig(seed=1).sampling_key()),
              outcome_key(t, 1, 0, gen, BacktrackConfig(temperature=0.7).sampling_key()),
              outcome_key(t.replace(steps=("s1", "s3")), 1, 0, gen, BacktrackConfig().sampling_key())]
    assert base not in others and len(set(others)) == len(others)
    assert sample_seed(0, "w1", 1, 0) != sample_seed(0, "w1", 2, 0)


def test_cache_persists_and_survives_a_cut_line(tmp_path):
    path = tmp_path / "c.jsonl"
    c = OutcomeCache(path)
    c.put("k", {"v": 1})
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "k2", "val')
    c2 = OutcomeCache(path)
    assert c2.get("k") == {"v": 1} and c2.get("k2") is None and (c2.hits, c2.misses) == (1, 1)


def rec(task, before, after, loc=1):
    return {"task": task, "original_status": before, "status": after, "answer": after, "original_answer": before,
            "rounds": [{"location": loc, "stop_reason": "newline"}], "tokens": 5, "seconds": 0.1}


def test_table6_deltas():
    rs = [rec("t", "correct", "correct"), rec("t", "correct", "wrong"), rec("t", "wrong", "correct"),
          rec("t", "invalid", "wrong"), rec("t", "wrong", "wrong", loc=None)]
    s = summarise_backtrack(rs)["tasks"]["t"]
    assert s["delta_acc_correct"] == -50.0 and s["delta_acc_wrong"] == round(100 / 3, 2)
    assert (s["accuracy_before"], s["accuracy_after"]) == (40.0, 40.0)
    assert s["backtracked"] == 4 and s["invalid_before"] == 1
    assert (s["net_change"], s["fixed"], s["broken"]) == (0.0, 1, 1)
    assert s["backtracked_ended"] == {"newline": 4}  # the 5th trace was not backtracked


def test_coupled_levels_and_break_even():
    assert level_location((0.3, 5), 2, 0.5) == 2 and level_location((0.7, 5), 2, 0.5) == 5
    rows = [{"accuracy_rm": 0.5, "delta_acc_net": -4.0}, {"accuracy_rm": 0.6, "delta_acc_net": -1.0},
            {"accuracy_rm": 0.7, "delta_acc_net": 2.0}]
    assert break_even(rows) == pytest.approx(0.6333, abs=1e-4)
    assert break_even([{"accuracy_rm": 0.5, "delta_acc_net": -1.0}]) is None
    # no harm at low accuracy but harm at high accuracy: it never pays
    assert break_even([{"accuracy_rm": 0.5, "delta_acc_net": 0.0}, {"accuracy_rm": 0.9, "delta_acc_net": -5.0}]) is None
    # dips below zero, recovers: the last crossing counts
    assert break_even([{"accuracy_rm": 0.5, "delta_acc_net": 1.0}, {"accuracy_rm": 0.6, "delta_acc_net": -1.0},
                       {"accuracy_rm": 0.7, "delta_acc_net": 1.0}]) == pytest.approx(0.65)


def test_sweep_levels_are_exactly_the_simulated_locator():
    from backtrack.runs.simulate import simulated_draws
    from bigbench_mistake.dataset import load_all
    from reward_model.simple import SimulatedLocator, label_distribution

    traces = load_all()
    draws = simulated_draws(traces, traces, seed=3)
    for acc in (0.5, 0.8):
        loc = SimulatedLocator(acc, label_distribution(traces), seed=3)
        assert all(level_location(draws[t.id], t.mistake_index, acc) == loc.choose(t)[0] for t in traces)
    # nested: a trace that gets the gold label at 0.5 gets it at 0.8 too, and never gold when meant wrong
    for t in traces:
        g = t.mistake_index
        assert level_location(draws[t.id], g, 0.5) != g or level_location(draws[t.id], g, 0.8) == g
        assert draws[t.id][1] != g

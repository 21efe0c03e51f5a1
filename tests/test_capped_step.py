"""A generated trace broken off at the token cap is wrong at that step at the latest: when a locator that
reads the text finds nothing before it, the capped step is the one backtracked."""
from bigbench_mistake.records import Trace
from backtrack.runs.experiment import BacktrackRunConfig, broken_off, config_json, located
from reward_model.registry import make_locator

RUNAWAY = "Let's calculate A = (5 + 2 - 6) = " + " = ".join(["(5 + 2 - 6)"] * 30)


def trace(steps, stop=None, mistake=None, id_="t"):
    extra = {"generation": {"stop_reason": stop, "tokens": 320}} if stop else {}
    return Trace("multistep_arithmetic", id_, "((5 + 2 - 6)) =", tuple(steps), None, "1", mistake, extra=extra)


def test_the_capped_step_is_located_when_the_locator_finds_nothing():
    cfg = BacktrackRunConfig(locator="checks", model="m")
    capped = trace(["This equation can be written as A.", RUNAWAY], stop="token_cap", id_="capped")
    answered = trace(["This equation can be written as A.", "So the answer is 1."], stop="answer", id_="ok")
    wrong_first = trace(["A = (5 + 2 - 6) = 2.", RUNAWAY], stop="token_cap", id_="early")
    locations, rule = located(make_locator("checks"), [capped, answered, wrong_first], cfg)
    assert broken_off(capped) and not broken_off(answered)
    assert locations == [1, None, 0] and rule == [True, False, False]   # an earlier located step comes first


def test_label_reading_locators_keep_their_label_and_configs_say_which_rule_located():
    capped = trace(["This equation can be written as A.", RUNAWAY], stop="token_cap")
    gold = BacktrackRunConfig(locator="gold", model="m")
    assert located(make_locator("gold"), [capped], gold) == ([None], [False])
    assert "capped_step_is_mistake" not in config_json(gold)
    assert config_json(BacktrackRunConfig(locator="trained", model="m"))["capped_step_is_mistake"] is True


def test_the_main_jobs_account_says_why_a_capped_step_was_located():
    from backtrack.runs.pipeline import before_after

    record = {"task": "multistep_arithmetic", "id": "q", "target": "1", "original_steps": ["A.", RUNAWAY],
              "rounds": [{"location": 1, "stop_reason": "answer", "replacement": "A = 1.", "located_by": "token_cap"}],
              "original_answer": None, "original_status": "invalid", "answer": "1", "status": "correct"}
    assert "Thought 2 (the step ran to the token cap)" in before_after(record)


def test_tables_count_the_traces_located_at_their_capped_step():
    from backtrack.runs.experiment import summarise_backtrack
    from backtrack.runs.render import render_backtrack

    def rec(task, located_by=None):
        r0 = {"location": 1, "stop_reason": "answer", **({"located_by": located_by} if located_by else {})}
        return {"task": task, "original_status": "invalid", "status": "correct", "answer": "1", "original_answer": None,
                "rounds": [r0], "tokens": 10, "seconds": 1.0}
    results = summarise_backtrack([rec("a", "token_cap"), rec("a"), rec("b", "token_cap")])
    assert results["overall"]["located_at_token_cap"] == 2 and results["tasks"]["a"]["located_at_token_cap"] == 1
    text = render_backtrack({"run_dir": "d", "locator": "trained", "model": "m", "results": results})
    assert "located at a step cut at the token cap (the locator found nothing before it): 2" in text

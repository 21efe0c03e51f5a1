"""Prompt-based mistake finders: exemplars, prompts and answer parsing (pure, no model)."""
import math

import pytest

from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import TASKS, get_task
from reward_model.prompt_finders import (NONE_ANSWER, FinderConfig, exemplars, p_no, parse_finder_spec,
                                         parse_trace_answer, parse_yes_no, step_prompt, trace_prompt)


@pytest.mark.parametrize("task", list(TASKS))
def test_exemplars_are_consistent(task):
    exs = exemplars(task)
    assert {e["mistake_index"] is None for e in exs} == {True, False}  # one clean, one with a mistake
    spec = get_task(task)
    for e in exs:
        Trace(task, "x", e["input"], tuple(e["steps"]), None, "", e["mistake_index"])  # valid index
        assert isinstance(spec.normalised_answer(e["steps"]), str)
        for c in e["checks"]:
            assert c["correct"] == (c["step"] != e["mistake_index"]) and c["reason"]
            if e["mistake_index"] is not None:
                assert c["step"] <= e["mistake_index"]


def test_prompts_end_where_the_answer_goes():
    steps = ("Let's calculate A = 2.", "So the answer is 2")
    t = trace_prompt("multistep_arithmetic", "1 + 1 =", steps)
    assert t.endswith("Q: 1 + 1 =\nThought 1: Let's calculate A = 2.\nThought 2: So the answer is 2\nFirst mistake:")
    assert "First mistake: Thought 2\n" in t and "First mistake: none\n" in t  # both kinds of exemplar
    d = step_prompt("multistep_arithmetic", "1 + 1 =", steps, 0, cot=False)
    assert d.endswith("Q: 1 + 1 =\nThought 1: Let's calculate A = 2.\nIs Thought 1 correct?")
    assert "Is Thought 2 correct? No" in d and "correct? Yes" in d
    c = step_prompt("multistep_arithmetic", "1 + 1 =", steps, 1, cot=True)
    assert c.endswith("Thought 2: So the answer is 2\nCheck of Thought 2:")
    c2 = step_prompt("multistep_arithmetic", "1 + 1 =", steps, 1, cot=True, reasoning="2 is right.")
    assert c2.endswith("Check of Thought 2: 2 is right.\nIs Thought 2 correct?")


def test_parsing_generated_answers():
    assert parse_trace_answer(" Thought 3", 5) == (2, True)
    assert parse_trace_answer("none", 5) == (None, True)
    assert parse_trace_answer("Thought 9", 5) == (None, False)
    assert parse_trace_answer("maybe", 5) == (None, False)
    assert parse_yes_no(" Yes, it is") is True and parse_yes_no("No.") is False and parse_yes_no("?") is None
    assert NONE_ANSWER.endswith("\n")


def test_p_no_and_config():
    assert p_no(-1.0, -1.0) == pytest.approx(0.5)
    assert p_no(math.log(0.2), math.log(0.6)) == pytest.approx(0.75)
    assert p_no(-1000.0, -1.0) == pytest.approx(1.0)
    assert parse_finder_spec("prompt:cot-step:generate") == FinderConfig("cot-step", "generate")
    for bad in ("prompt:nope", "rm:direct-step", "prompt:direct-step:sample"):
        with pytest.raises(ValueError):
            parse_finder_spec(bad)

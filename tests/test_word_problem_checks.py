"""The arithmetic check reads sums as word problems write them (units, rates, percents, dashes), does not
read prose or algebra as sums, and the unsourced-operand check flags a number copied wrong. Neither
changes what the checks say on BIG-Bench Mistake."""
import json
import random
from pathlib import Path

import pytest

from bigbench_mistake.dataset import load_all
from bigbench_mistake.gsm8k import correct_steps, plant
from reward_model.features import StepContext
from reward_model.features import arithmetic
from reward_model.features.arithmetic import check_chains, normalise, unsourced_operands

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"


@pytest.mark.parametrize("text, sum_", [
    ("4 rows * 4 students/row = 16 students", "4 * 4 = 16"),
    ("they spent 420 minutes ÷ 60 minutes/hour = 7 hours", "420 / 60 = 7"),
    ("$50/person + $10/person = $60/person", "50 + 10 = 60"),
    ("$30 in total tickets / $3 per ticket = 10 tickets", "30 / 3 = 10"),
    ("5 vans x 28 students = 140 students", "5 * 28 = 140"),
    ("$40 – $4 = $36", "40 - 4 = 36"),
])
def test_units_rates_and_dashes_are_read_as_arithmetic(text, sum_):
    assert sum_ in normalise(text)
    assert check_chains(text, {}) == (1, 0)
    wrong = text.replace(sum_.rsplit("= ", 1)[1], "999", 1) if sum_.rsplit("= ", 1)[1] in text else None
    if wrong:
        assert check_chains(wrong, {})[1] == 1


@pytest.mark.parametrize("text", [
    "From 8:00 to 11:00 she spends 11:00-8:00 = 3 hours at work",      # clock times
    "The length is 2 x the width of 3 feet = 6 feet.",                   # a lone number after prose
    "8 pounds of fruit = 128 ounces of fruit",                           # a conversion, not a sum
    "5x + 10x + 40 = 70",                                                # algebra
])
def test_prose_and_algebra_are_not_checked_as_sums(text):
    assert check_chains(text, {})[1] == 0


def test_the_multistep_arithmetic_chains_are_read_as_before():
    assert check_chains("A = (-4 + -5 * -7 + 4) = (-4 + 35 + 4) = 35.", {}) == (2, 0)
    assert check_chains("A / B = 6 / 2 = 3", {"A": 6, "B": 2}) == (2, 0)
    assert check_chains("(1/2) x 2 x 2 = 2", {}) == (1, 0)


def test_an_operand_no_earlier_text_states_is_unsourced():
    q = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
    assert unsourced_operands(q, (), "Natalia sold 48/2 = 24 clips in May.") == []          # 2 from "half"
    assert unsourced_operands(q, (), "Natalia sold 49/2 = 24.5 clips in May.") == ["49"]
    assert unsourced_operands(q, ("Natalia sold 48/2 = 24 clips in May.",), "48+24 = 72 clips") == []
    assert unsourced_operands("A 20% tip on $35.", (), "35*.20 = $7.00") == []              # a percent as a decimal
    assert unsourced_operands("q", (), "A = (13 - 14) = -1") == ["13", "14"]                # after a variable's name


def test_the_new_checks_fire_on_planted_gsm8k_mistakes_and_not_on_the_solutions():
    rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines()[:300]]
    fired = {"arithmetic": [], "copied_number": []}
    false_alarms = steps = 0
    for i, r in enumerate(rows):
        correct = correct_steps(r["answer"])
        for j, step in enumerate(correct):
            f = arithmetic.features(StepContext("gsm8k", r["question"], tuple(correct[:j]), step))
            false_alarms += f["check_wrong_equation"] > 0 or f["check_unsourced_operand"] > 0
            steps += 1
        for kind, name in (("arithmetic", "check_wrong_equation"), ("copied_number", "check_unsourced_operand")):
            planted = plant(r["question"], r["answer"], kind, random.Random(i))
            if planted:
                s, index, _ = planted
                f = arithmetic.features(StepContext("gsm8k", r["question"], tuple(s[:index]), s[index]))
                fired[kind].append(f[name] > 0)
    assert sum(fired["arithmetic"]) / len(fired["arithmetic"]) > 0.85
    assert sum(fired["copied_number"]) / len(fired["copied_number"]) > 0.75
    assert false_alarms / steps < 0.03


def test_the_unsourced_check_never_fires_on_big_bench_mistake():
    for t in load_all():
        for j, step in enumerate(t.steps):
            assert not unsourced_operands(t.input, t.steps[:j], step), (t.task, t.id, j)


def test_the_checks_alone_are_a_locator_for_any_task():
    from bigbench_mistake.records import Trace
    from reward_model.classifier import checks_predictions, extract
    from reward_model.features import ALL_GROUPS
    from reward_model.locator import locate
    from reward_model.registry import check_locator_spec, make_locator

    q = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
    steps = ["Natalia sold 48/2 = 24 clips in May.", "She sold 48 + 24 = 73 clips in all.", "So the answer is 73."]
    trace = Trace(task="gsm8k", id="n", input=q, steps=tuple(steps), answer="73", target=None, mistake_index=1)
    assert locate(make_locator("checks:generic"), [trace]) == [1]
    right = Trace(task="gsm8k", id="r", input=q, steps=(steps[0], "She sold 48 + 24 = 72 clips in all."),
                  answer=None, target=None, mistake_index=None)
    assert locate(make_locator("checks"), [right]) == [None]
    with pytest.raises(ValueError, match="feature set"):
        check_locator_spec("checks:bogus")
    sample = [t for t in load_all() if t.task == "multistep_arithmetic"][:40]
    feats = extract(sample, ALL_GROUPS)
    assert locate(make_locator("checks:all"), sample) == list(checks_predictions(sample, feats).values())

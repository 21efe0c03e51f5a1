"""Fresh questions: targets computed exactly (each rule reproduces every dataset target), seeds
reproduce the questions, and no generated question equals one of the dataset's."""
import json

import pytest
from typer.testing import CliRunner

from bigbench_mistake.dataset import load_task
from bigbench_mistake.fresh import FRESH_TASKS, dyck_target, evaluate, fresh_questions, sorted_words

RULES = {"dyck_languages": dyck_target, "word_sorting": sorted_words,
         "multistep_arithmetic": lambda text: str(evaluate(text))}


@pytest.mark.parametrize("task", FRESH_TASKS)
def test_target_rules_reproduce_every_dataset_target(task):
    traces = load_task(task)
    assert [RULES[task](t.input) for t in traces] == [t.target for t in traces]


@pytest.mark.parametrize("task", FRESH_TASKS)
def test_fresh_questions_are_exact_reproducible_and_new(task):
    qs = fresh_questions(task, 60, seed=3)
    assert fresh_questions(task, 60, seed=3) == qs
    assert fresh_questions(task, 60, seed=4) != qs
    dataset = {t.input for t in load_task(task)}
    assert len({q.input for q in qs}) == 60 and not dataset & {q.input for q in qs}
    for q in qs:
        assert q.task == task and q.target == RULES[task](q.input)


def test_exactness_checked_independently():
    # closing a Dyck prefix with its target leaves every bracket matched; arithmetic agrees with Python
    for q in fresh_questions("dyck_languages", 30, seed=1):
        assert dyck_target(q.input + " " + q.target) == ""
    for q in fresh_questions("multistep_arithmetic", 30, seed=1):
        assert int(q.target) == eval(q.input.removesuffix("="))  # noqa: S307 - test-only cross-check
    assert evaluate("(7 - -7 * 4) =") == 35
    with pytest.raises(ValueError):
        evaluate("__import__('os')")
    with pytest.raises(ValueError):
        dyck_target("( ]")


def test_cli_writes_questions_that_generate_reads(tmp_path):
    from bigbench_mistake.questions import read_questions
    from cli import app

    out = tmp_path / "fresh.jsonl"
    r = CliRunner().invoke(app, ["data", "fresh", "--task", "word_sorting", "--n", "5", "--seed", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert read_questions(out) == fresh_questions("word_sorting", 5, seed=2)
    assert all(json.loads(line)["target"] for line in out.read_text(encoding="utf-8").splitlines())
    bad = CliRunner().invoke(app, ["data", "fresh", "--task", "logical_deduction", "--out", str(out)])
    assert bad.exit_code == 1 and "fresh questions exist for" in bad.output


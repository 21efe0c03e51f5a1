"""Traces of any task, with or without a target: bbm reads, scores what it can and locates mistakes in
them; task-specific checks apply to the five tasks and generic features elsewhere, and the output says
which applied."""
import json

from typer.testing import CliRunner

from bigbench_mistake.dataset import load_file, load_task
from bigbench_mistake.stats import dataset_stats
from cli import app

MATH = [
    {"task": "gsm8k", "input": "Tom has 3 apples and buys 4 more. How many apples does he have?",
     "steps": ["Tom starts with 3 apples.", "He buys 4 more, so 3 + 4 = 8.", "So the answer is 8."],
     "answer": "8", "target": "7", "mistake_index": 1},
    {"task": "gsm8k", "input": "A pen costs 2 dollars. How much do 5 pens cost?",
     "steps": ["Each pen costs 2 dollars.", "5 pens cost 5 * 2 = 10 dollars.", "So the answer is 10."],
     "mistake_index": None},
]


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_a_file_of_another_task_without_targets_loads_and_gets_stats(tmp_path):
    traces = load_file(write(tmp_path / "math.jsonl", MATH))
    assert [t.task for t in traces] == ["gsm8k", "gsm8k"] and traces[1].target is None and traces[1].answer is None
    stats = dataset_stats(traces)["tasks"]["gsm8k"]
    assert stats["correct_answers"] == 0 and stats["wrong_answers"] == 1 and stats["no_target"] == 1
    assert stats["label_noise_no_mistake_but_wrong"] == 0


def test_rm_locate_on_any_task_with_and_without_target(tmp_path):
    f = write(tmp_path / "math.jsonl", MATH + [{**load_task("multistep_arithmetic")[0].to_record()}])
    out = tmp_path / "located.jsonl"
    r = CliRunner().invoke(app, ["rm", "locate", str(f), "--locator", "gold", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["checks_applied"] == {"gsm8k": "generic", "multistep_arithmetic": "task-specific and generic"}
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["predicted_mistake_index"] for row in rows[:2]] == [1, None] and rows[1]["target"] is None


def test_rm_locate_with_the_default_trained_locator(tmp_path):
    """Bare --locator trained is the default classifier, trained on first use and cached, as in every
    other command (here on a small copy of the data, so it trains in seconds)."""
    from test_cache_race import tiny_data_dir

    data = tiny_data_dir(tmp_path / "data")
    f = write(tmp_path / "math.jsonl", MATH)
    args = ["rm", "locate", str(f), "--locator", "trained", "--cache-dir", str(tmp_path / "cache"),
            "--data-dir", str(data), "--json"]
    r = CliRunner().invoke(app, args + ["--out", str(tmp_path / "a.jsonl")])
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["n_traces"] == 2 and first["locator"].startswith("trained:")

    def models():
        return [p for p in (tmp_path / "cache" / "reward_model").iterdir() if not p.name.startswith(".")]

    (folder,) = models()  # beside it only its lock file
    assert (folder / "config.json").is_file()
    r = CliRunner().invoke(app, args + ["--out", str(tmp_path / "b.jsonl")])  # reuses the cached model
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["locator"] == first["locator"] == f"trained:{folder}"
    assert models() == [folder]


def test_the_datasets_own_files_still_refuse_another_task(tmp_path):
    import pytest

    from bigbench_mistake.records import DataError

    d = tmp_path / "data"
    d.mkdir()
    write(d / "word_sorting.jsonl", [{**MATH[0], "task": "gsm8k"}])
    with pytest.raises(DataError, match="unknown task 'gsm8k'"):
        load_task("word_sorting", d)


def test_generation_for_another_task_says_why_not():
    import pytest

    from bigbench_mistake.tasks import task_spec

    spec = task_spec("gsm8k")
    assert spec.score(["So the answer is 7."], "7").status == "correct"
    with pytest.raises(ValueError, match="has no few-shot prompt"):
        spec.prompt("1 + 1 =")


def test_backtracking_refuses_what_it_cannot_correct_before_loading_a_model(tmp_path):
    f = write(tmp_path / "math.jsonl", MATH)
    r = CliRunner().invoke(app, ["backtrack", "--traces", str(f), "--locator", "gold", "--out", str(tmp_path / "bt")])
    assert r.exit_code == 1 and "unknown task 'gsm8k'" in r.output and not (tmp_path / "bt").exists()
    no_target = write(tmp_path / "ws.jsonl", [{**load_task("word_sorting")[0].to_record(), "target": None}])
    r = CliRunner().invoke(app, ["backtrack", "--traces", str(no_target), "--locator", "gold", "--out", str(tmp_path / "bt")])
    assert r.exit_code == 1 and "has no target" in r.output and not (tmp_path / "bt").exists()


def test_the_transformer_pairs_the_export_and_the_prompt_finders_take_any_task(tmp_path):
    from bigbench_mistake.export import stepwise_example
    from reward_model.prompt_finders import exemplars, step_prompt, trace_prompt
    from reward_model.transformer import step_pairs

    trace = load_file(write(tmp_path / "math.jsonl", MATH))[0]
    ex = stepwise_example(trace)
    assert MATH[0]["input"] in ex["prompt"] and ex["labels"] == [True, False]
    assert [y for _, _, y in step_pairs(trace, training=True)] == [0, 1]
    assert len(step_pairs(trace, training=False)) == 3
    # no exemplars for a task other than the five: the finders ask zero-shot, with the trace itself
    assert exemplars("gsm8k") == () and len(exemplars("multistep_arithmetic")) > 0
    prompt = trace_prompt("gsm8k", trace.input, trace.steps)
    assert MATH[0]["input"] in prompt and "3 + 4 = 8" in prompt
    assert "3 + 4 = 8" in step_prompt("gsm8k", trace.input, trace.steps, 1, cot=False)

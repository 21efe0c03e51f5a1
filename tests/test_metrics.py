import json

from typer.testing import CliRunner

from bigbench_mistake.dataset import load_all
from bigbench_mistake.export import split_by_group, stepwise_example
from bigbench_mistake.metrics import always_null_predictions, baselines, majority_predictions, mistake_finding_scores
from bigbench_mistake.records import Trace
from cli import app


def T(i, n, mi):
    return Trace("multistep_arithmetic", f"t{i}", "q", tuple("s" * n), "1", "1", mi)


def test_scores_on_handmade_traces():
    traces = [T(0, 3, 1), T(1, 3, 2), T(2, 3, None), T(3, 3, None)]
    s = mistake_finding_scores(traces, {"t0": 1, "t1": 0, "t2": None, "t3": 2})["overall"]
    assert (s["accuracy_mistake"], s["accuracy_no_mistake"], s["accuracy_overall"]) == (50.0, 50.0, 50.0)
    perfect = mistake_finding_scores(traces, {t.id: t.mistake_index for t in traces})["overall"]
    assert perfect["accuracy_overall"] == 100.0 and perfect["weighted_f1"] == 100.0
    partial = mistake_finding_scores(traces, {"t0": 1})["overall"]
    assert partial["n"] == 1 and partial["missing"] == 3


def test_baselines_on_dataset():
    traces = load_all()
    null = mistake_finding_scores(traces, always_null_predictions(traces))["overall"]
    assert null["accuracy_no_mistake"] == 100.0 and null["accuracy_mistake"] == 0.0
    assert null["accuracy_overall"] == round(100 * 478 / 2186, 2)
    maj = majority_predictions(traces)
    assert maj["tracking_shuffled_objects-0000"] == 3  # index 3 is that task's most common label
    assert set(baselines(traces)) == {"always_null", "majority_index", "random_uniform_expected"}


def test_stepwise_export_and_group_split():
    traces = load_all(tasks=["logical_deduction", "multistep_arithmetic"])
    t = next(t for t in traces if t.mistake_index)
    ex = stepwise_example(t)
    assert ex["labels"] == [True] * t.mistake_index + [False]
    assert ex["completions"][0].startswith("Thought 1: ")
    train, test = split_by_group(traces, 0.2, seed=3)
    from bigbench_mistake.dataset import group_key

    assert not {group_key(x) for x in train} & {group_key(x) for x in test}
    assert split_by_group(traces, 0.2, seed=3) == (train, test)


runner = CliRunner()


def test_cli_stats_json():
    r = runner.invoke(app, ["data", "stats", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["total"]["traces"] == 2186


def test_cli_score_gold_and_null(tmp_path):
    traces = load_all()
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"id": t.id, "mistake_index": t.mistake_index}) + "\n" for t in traces),
                    encoding="utf-8")
    r = runner.invoke(app, ["data", "score", str(gold), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["scores"]["overall"]["accuracy_overall"] == 100.0
    null = tmp_path / "null.jsonl"
    null.write_text("".join(json.dumps({"id": t.id, "predicted_mistake_index": None}) + "\n" for t in traces),
                    encoding="utf-8")
    out = json.loads(runner.invoke(app, ["data", "score", str(null), "--json"]).output)
    assert out["scores"]["overall"] == out["baselines"]["always_null"]["overall"]


def test_cli_validate_three_errors(tmp_path):
    good = {"task": "word_sorting", "input": "b a", "steps": ["x", "The answer is a b"], "answer": "a b",
            "target": "a b", "mistake_index": None}
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join([json.dumps(good), "{broken", json.dumps({k: v for k, v in good.items() if k != "steps"}),
                            json.dumps({**good, "mistake_index": 7})]) + "\n", encoding="utf-8")
    r = runner.invoke(app, ["data", "validate", str(p)])
    assert r.exit_code == 1
    assert f"{p}:2:" in r.output and f"{p}:3: field 'steps'" in r.output and f"{p}:4: field 'mistake_index'" in r.output
    assert "1 valid record(s), 3 error(s)" in r.output
    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps(good) + "\n", encoding="utf-8")
    assert runner.invoke(app, ["data", "validate", str(ok)]).exit_code == 0


def test_cli_bad_prediction_file_is_a_clear_error(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text(json.dumps({"id": "word_sorting-0000", "predicted_mistake_index": 99}) + "\n", encoding="utf-8")
    r = runner.invoke(app, ["data", "score", str(p)])
    assert r.exit_code == 1 and f"{p}:1: field 'predicted_mistake_index'" in r.output


def test_cli_export_trl(tmp_path):
    out = tmp_path / "trl.jsonl"
    r = runner.invoke(app, ["data", "export", "--format", "trl", "--out", str(out), "-t", "word_sorting"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 300 and set(rows[0]) >= {"prompt", "completions", "labels"}

"""bbm report's Table 6: runs of one locator on different tasks fill one column group; overall adds counts."""
from pathlib import Path

from backtrack.runs.report import combine_blocks, render_backtrack


def block(n_right, n_wrong, kept_right, fixed_wrong, tokens=10, seconds=1.0):
    n = n_right + n_wrong
    return {"n": n, "n_originally_correct": n_right, "n_originally_wrong": n_wrong,
            "delta_acc_correct": round(100 * (kept_right - n_right) / n_right, 2) if n_right else None,
            "delta_acc_wrong": round(100 * fixed_wrong / n_wrong, 2) if n_wrong else None,
            "accuracy_before": round(100 * n_right / n, 2), "accuracy_after": round(100 * (kept_right + fixed_wrong) / n, 2),
            "tokens": tokens, "seconds": seconds}


def run(name, locator, task, b):
    return {"path": Path(name), "config": {"kind": "backtrack", "locator": locator, "model": "m", "tasks": [task]},
            "results": {"tasks": {task: b}, "overall": b}}


def test_overall_adds_counts_over_tasks():
    out = combine_blocks([block(3, 6, 2, 1), block(0, 7, 0, 3), block(1, 2, 1, 0)])
    assert (out["n"], out["n_originally_correct"], out["n_originally_wrong"]) == (19, 4, 15)
    assert out["delta_acc_correct"] == -25.0 and out["delta_acc_wrong"] == round(100 * 4 / 15, 2)
    assert out["accuracy_after"] == round(100 * 7 / 19, 2) and out["tokens"] == 30


def test_one_column_group_per_locator():
    runs = [run("g-a", "gold", "a", block(2, 2, 1, 1)), run("g-b", "gold", "b", block(1, 3, 1, 0)),
            run("r-a", "random", "a", block(2, 2, 0, 0)), run("g-a2", "gold", "a", block(2, 2, 2, 2))]
    text = render_backtrack(runs)
    assert "[1] locator `gold`" in text and "[2] locator `random`" in text and "[3] locator `gold`" in text
    overall = next(line for line in text.splitlines() if line.startswith("| overall |"))
    assert overall.startswith("| overall | 8 (3/5) | -33.33 | 20.00 | 0.00 | 37.5 → 37.5 |")


def test_guarded_variants_get_their_own_label_and_rows_say_how_traces_ended():
    guarded = run("v-a", "trained", "a", {**block(2, 2, 2, 1), "backtracked_ended": {"answer": 2, "rejected": 1}})
    guarded["config"]["backtrack"] = {"selection": "verifier", "accept": "verified"}
    paper = run("p-a", "trained", "a", {**block(2, 2, 1, 1), "backtracked_ended": {"answer": 3}})
    paper["config"]["backtrack"] = {"selection": "logprob"}
    text = render_backtrack([paper, guarded])
    assert "[1] locator `trained`," in text and "[2] locator `trained (selection verifier, accept verified)`" in text
    assert "- [2] a: {'answer': 2, 'rejected': 1}" in text
    out = combine_blocks([guarded["results"]["tasks"]["a"], paper["results"]["tasks"]["a"]])
    assert out["backtracked_ended"] == {"answer": 5, "rejected": 1} and out["net_change"] == 12.5


def test_compare_section_per_task_with_intervals_and_only_real_differences(tiny_generator, tmp_path):
    """A real compare run (tiny model): a table per task and over all tasks, accuracy with its interval,
    differences listed only where their paired interval leaves out 0, self-consistency at backtracking's cost."""
    from backtrack.methods.strategies import Item, StrategyConfig
    from backtrack.runs.compare import run_compare
    from backtrack.runs.kinds import render_report
    from reward_model.simple import RandomLocator

    items = [Item("multistep_arithmetic", "q0", "(1 + 2) =", "3"), Item("word_sorting", "w0", "Sort: b a", "a b")]
    out = run_compare(items, ["cot", "self-consistency", "backtrack"],
                      StrategyConfig(sc_samples=2, max_steps=3, max_step_tokens=8), tiny_generator, tmp_path / "cmp",
                      locator_spec="random", make_locator=lambda g: RandomLocator(seed=0))
    text = render_report([tmp_path / "cmp"])
    assert "## Strategies on the same questions" in text and "2 question(s) finished by every strategy" in text
    for head in ("### multistep_arithmetic", "### word_sorting", "### all tasks"):
        assert head in text
    sc = out["all"]["self-consistency"]
    lo, hi = sc["accuracy_interval"]
    assert f"| self-consistency | 2 | {sc['accuracy']:.1f} [{lo:.1f}, {hi:.1f}] | {sc['invalid']} |" in text
    real = [pair for pair, d in out["differences"]["all"].items() if d["real"]]
    line = next(ln for ln in text.splitlines() if ln.startswith("Differences whose") and "(of 3 pairs)" in ln)
    assert all(pair in line for pair in real) and (real or "none" in line)
    assert "At backtracking's cost" in text and "Against cot: self-consistency" in text


def test_generate_section_adds_one_models_runs_over_tasks():
    def gen_run(name, model, task, correct, wrong, invalid, stops, steps, tokens):
        b = {"traces": correct + wrong + invalid, "correct": correct, "wrong": wrong, "invalid": invalid,
             "accuracy": round(100 * correct / (correct + wrong + invalid), 2), "stop_reasons": stops,
             "mean_steps": steps, "tokens": tokens}
        return {"path": Path(name), "config": {"kind": "generate"},
                "results": {"model": model, "tasks": {task: b}, "overall": b}}

    from backtrack.runs.report import render_generate

    runs = [gen_run("raw-a", "m", "a", 1, 2, 1, {"answer": 3, "loop": 1}, 4.0, 100),
            gen_run("raw-b", "m", "b", 2, 0, 0, {"answer": 2}, 10.0, 50),
            gen_run("chat-a", "m+chat", "a", 3, 1, 0, {"answer": 4}, 5.0, 80)]
    text = render_generate(runs)
    assert "| all runs | m | overall | 6 | 50.00 | 3 | 2 | 1 | answer 5, loop 1 | 6.00 | 150 |" in text
    assert "| chat-a | m+chat | a | 4 | 75.00 |" in text and "m+chat | overall" not in text

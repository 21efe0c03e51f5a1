"""bbm report: Table 6 (runs of one locator on different tasks fill one column group; overall adds counts),
compare runs (a table per task, intervals) and generate runs (per model; two models paired)."""
import json
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


def test_compare_section_per_task_with_intervals_and_every_difference(tiny_generator, tmp_path):
    """A real compare run (tiny model): a table per task and over all tasks, accuracy with its interval,
    every paired difference with its interval (a matrix), the ones that leave out 0 named in a line,
    self-consistency at backtracking's cost."""
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
    # every difference, with its interval, in the matrix under each table
    d = out["differences"]["all"]["cot - backtrack"]
    cell = f"{d['difference']:+.1f} [{d['interval'][0]:+.1f}, {d['interval'][1]:+.1f}]"
    assert "| row − column, points [95% paired interval] | self-consistency | backtrack |" in text
    assert any(ln.startswith("| cot | ") and cell in ln for ln in text.splitlines())
    assert "At backtracking's cost" in text and "Against cot: self-consistency" in text


def test_an_unfinished_run_is_reported_from_its_finished_records_and_left_untouched(tiny_generator, tmp_path):
    """A run still going (no results.json, a last line being written): bbm report and compare
    --summary-only count its finished records and write no results.json (that file marks a finished run)."""
    import pytest

    from backtrack.methods.strategies import Item, StrategyConfig
    from backtrack.runs.compare import run_compare, summarise_run_dir
    from backtrack.runs.kinds import render_report

    items = [Item("multistep_arithmetic", "q0", "(1 + 2) =", "3"), Item("multistep_arithmetic", "q1", "(2 + 2) =", "4")]
    run_dir = tmp_path / "cmp"
    finished = run_compare(items[:1], ["cot", "self-consistency"], StrategyConfig(sc_samples=2, max_steps=3,
                           max_step_tokens=8), tiny_generator, run_dir)
    (run_dir / "results.json").unlink()
    with open(run_dir / "samples.jsonl", "a", encoding="utf-8") as f:
        f.write('{"key": "cot::q1", "strat')  # a record being written
    before = (run_dir / "samples.jsonl").read_bytes()
    text = render_report([run_dir])
    assert f"`{run_dir}`: not finished, 2 records so far" in text and "1 question(s) finished by every strategy" in text
    assert summarise_run_dir(run_dir)["all"] == finished["all"]
    assert not (run_dir / "results.json").exists() and (run_dir / "samples.jsonl").read_bytes() == before
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((run_dir / "config.json").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ValueError, match="no finished record yet"):
        render_report([empty])


def test_generate_section_adds_one_models_runs_over_tasks_and_pairs_two_models(tmp_path):
    """Rows per run, one added-up row per model over its runs, and two models (here raw and chat
    formats) compared on the questions both answered, with a paired interval."""
    from backtrack.runs.generate import results_from_records
    from backtrack.runs.kinds import render_report

    def gen_run(name, model, task, statuses, stops):
        records = [{"task": task, "id": f"{task}-{i}", "answer_status": st, "steps": ["x"] * (i + 1),
                    "generation": {"stop_reason": stop, "tokens": 10}} for i, (st, stop) in enumerate(zip(statuses, stops))]
        path = tmp_path / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps({"kind": "generate", "model": model, "seed": 0}), encoding="utf-8")
        (path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        (path / "results.json").write_text(json.dumps(results_from_records({"model": model, "seed": 0}, records)),
                                           encoding="utf-8")
        return path

    ok, bad, none = "correct", "wrong", "invalid"
    runs = [gen_run("raw-a", "m", "a", [ok, bad, bad, none], ["answer", "answer", "answer", "loop"]),
            gen_run("raw-b", "m", "b", [ok, ok], ["answer", "answer"]),
            gen_run("chat-a", "m+chat", "a", [ok, ok, ok, bad], ["answer"] * 4)]
    text = render_report(runs)
    assert "| all runs | m | overall | 6 | 50.00 | 3 | 2 | 1 | answer 5, loop 1 | 2.17 | 60 |" in text
    assert "| chat-a | m+chat | a | 4 | 75.00 |" in text and "m+chat | overall" not in text
    # paired over the 4 questions of task a: m 1 right, m+chat 3 right
    assert "On the 4 questions of both: accuracy `m` − `m+chat` = -50.0 points" in text
    assert "no answer 1 against 0." in text


def test_find_section_puts_finders_side_by_side_with_the_baselines(tiny_generator, tmp_path):
    """Two real finder runs (tiny model) on the same traces: one column each, per task and overall, with
    the cells computed from each run's own scores, and the baselines of those traces."""
    from backtrack.runs.find import run_find
    from backtrack.runs.kinds import render_report
    from bigbench_mistake.dataset import load_task
    from reward_model.prompt_finders import FinderConfig

    traces = [t.replace(steps=t.steps[:3], mistake_index=t.mistake_index if (t.mistake_index or 0) < 3 else None)
              for t in load_task("word_sorting")[:2] + load_task("dyck_languages")[:2]]  # 3 steps: a few calls
    a = run_find(traces, FinderConfig("direct-trace", "logprob"), tiny_generator, tmp_path / "trace")
    run_find(traces, FinderConfig("direct-step", "logprob"), tiny_generator, tmp_path / "step")
    text = render_report([tmp_path / "trace", tmp_path / "step"])
    assert "| task | n | [1] direct-trace | [2] direct-step | majority index | random (expected) |" in text
    o = a["scores"]["overall"]
    mis = "–" if o["accuracy_mistake"] is None else f"{o['accuracy_mistake']:.1f}"
    clean = "–" if o["accuracy_no_mistake"] is None else f"{o['accuracy_no_mistake']:.1f}"
    assert f"| overall | 4 | {o['accuracy_overall']:.1f} ({mis} / {clean}) |" in text
    assert "| word_sorting | 2 |" in text and "| dyck_languages | 2 |" in text and "52.87" in text

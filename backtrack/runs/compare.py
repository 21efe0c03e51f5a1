"""`bbm compare`: the same questions through several strategies, one run directory, one table per task.

Records (samples.jsonl) are keyed "<strategy>::<item id>" and written one by one; the loop goes
question by question (every strategy on a question before the next question), taking the tasks in
turn, so an interrupted run compares the strategies on the same questions of every task so far,
and rerunning resumes it. With --shard i/n, a machine takes every n-th (question, strategy) pair.

Cost columns. tokens and calls count what a strategy needs on its own. The strategies of one
question share a memory of model calls (backtrack.lm.wrappers.CachingLM): sc-weighted votes over the very
samples self-consistency drew, and backtrack starts from cot's greedy trace, so those calls are
answered from memory -- counted in tokens and calls, listed as reused_calls, and not paid again in
seconds. seconds is therefore the wall time each strategy took in this run, after the reuse; with
--batch-size N, N questions run together and a strategy's seconds are its share of the model calls it
shared with the other questions (backtrack/lm/lockstep.py), so they add up to the run's wall time.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from reward_model.locator import Locator

from backtrack.lm.generator import LM
from backtrack.lm.lockstep import Lockstep, Seat
from backtrack.runs.compute import sc_curve, tokens_per_corrected
from backtrack.runs.executor import Work, execute
from bigbench_mistake.bootstrap import accuracy_interval, difference_interval
from backtrack.runs.rundir import CONFIG, finished_records, read_run_file
from backtrack.lm.wrappers import CachingLM, CountingLM
from backtrack.methods.strategies import NEEDS_LOCATOR, Item, StrategyConfig, get_strategy

PLOT = "accuracy_vs_tokens.png"


def questions_digest(items: Sequence[Item]) -> str:
    """Identifies the question set in config.json (a different set is a different run; order aside)."""
    blob = json.dumps(sorted([i.task, i.id, i.input, i.target] for i in items), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def round_robin(items: Sequence[Item]) -> list[Item]:
    """First question of every task, then the second of every task, ...: a run stopped early still
    covers every task."""
    by_task: dict[str, list[Item]] = {}
    for i in items:
        by_task.setdefault(i.task, []).append(i)
    rounds = max((len(v) for v in by_task.values()), default=0)
    return [v[r] for r in range(rounds) for v in by_task.values() if r < len(v)]


def same_task_batches(questions: list[tuple[Item, Any]], size: int) -> list[tuple[Item, Any]]:
    """The questions (in round-robin order) regrouped so that `size` in a row share a task, the tasks
    still in turn: a batch then shares one few-shot prompt. Why: llama.cpp's unified KV cache attends
    over every cell in use, so four questions of four tasks make each token attend over four
    ~2,000-token prompts (benchmarks/bench_compare.py: slower than one question at a time on 2 cores)."""
    queues: dict[str, list[tuple[Item, Any]]] = {}
    for q in questions:
        queues.setdefault(q[0].task, []).append(q)
    out: list[tuple[Item, Any]] = []
    while any(queues.values()):
        for queue in queues.values():
            out += queue[:size]
            del queue[:size]
    return out


def compare_config(items: Sequence[Item], strategies: Sequence[str], config: StrategyConfig, model: str,
                   locator_spec: str | None) -> dict[str, Any]:
    return {"kind": "compare", "command": "compare", "strategies": list(strategies), "strategy_config": config.to_json(),
            "model": model, "locator": locator_spec, "n_questions": len(items), "questions": questions_digest(items)}


def run_compare(items: Sequence[Item], strategies: Sequence[str], config: StrategyConfig, lm: LM,
                out: str | Path, locator_spec: str | None = None,
                make_locator: Callable[[LM], Locator] | None = None, shard: str | None = None,
                batch_size: int = 1) -> dict[str, Any]:
    """Run every strategy on every item (resuming), write results.json and the plot, return the summary.

    make_locator gets the counting model, so a locator that asks the model is charged to the
    strategy that used it. The run's items are (question, strategy) pairs, question by question;
    shard "i/n" runs only that slice of them (join the slices with bbm merge). batch_size questions
    run at once, each through its strategies in turn, their model calls made together
    (backtrack/lm/lockstep.py); a question's records are written when its last strategy ends."""
    for name in strategies:
        get_strategy(name)
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    needs = [s for s in strategies if s in NEEDS_LOCATOR]
    if needs and make_locator is None:
        raise ValueError(f"{', '.join(needs)} need(s) a locator (--locator)")
    pairs = [(item, name) for item in round_robin(items) for name in strategies]

    def work(w: Work) -> None:
        questions: dict[str, tuple[Item, list[str]]] = {}  # this shard's undone pairs, by question, in order
        for item, name in w.todo:
            questions.setdefault(item.id, (item, []))[1].append(name)
        order = same_task_batches(list(questions.values()), batch_size)
        lockstep = Lockstep(w.lm, batch_size)
        seats = {}  # per seat, kept from question to question: its memo, its counter, a locator charging it
        for seat in lockstep.seats:
            memo = CachingLM(seat)
            counter = CountingLM(memo)
            seats[seat.index] = memo, counter, make_locator(counter) if needs and make_locator else None

        def job(item: Item, names: list[str]) -> Callable[[Seat], list[dict[str, Any]]]:
            def run(seat: Seat) -> list[dict[str, Any]]:
                memo, counter, locator = seats[seat.index]
                memo.clear()  # one question's calls, shared by its strategies (see CachingLM)
                records = []
                for name in names:
                    hits, began = memo.hits, seat.seconds
                    [result] = get_strategy(name)([item], config, counter, locator)
                    result.seconds = seat.seconds - began  # its share of calls made with other questions
                    records.append({**result.to_record(), "reused_calls": memo.hits - hits, "batch_size": batch_size})
                return records
            return run

        def finished(_: int, records: list[dict[str, Any]]) -> None:
            for record in records:
                w.write(record)
            w.step(len(records))

        lockstep.run([job(item, names) for item, names in order], on_done=finished)

    config_json = compare_config(items, strategies, config, lm.name, locator_spec if needs else None)
    out = execute(config_json, pairs, out, shard, lm, work, results_from_records, plot_run_dir,
                  key=lambda pair: f"{pair[1]}::{pair[0].id}")
    return {**out["results"], "run_dir": out["run_dir"], "plot": out["plot"],
            "dropped_partial_lines": out["dropped_partial_lines"]}


def results_from_records(config: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary of a compare run from its config and records (what bbm merge recomputes)."""
    return {**summarise_compare(records, config["strategies"]), "config": config}


def plot_run_dir(results: dict[str, Any], run_dir) -> str | None:
    """The run directory's plot, drawn from its results (by the run itself and by bbm merge)."""
    return plot_compare(results, Path(run_dir) / PLOT)


def summarise_run_dir(out: str | Path) -> dict[str, Any]:
    """The table of what a compare run directory holds so far, without running anything. Safe on a
    run still going: samples.jsonl is only read (a last line still being written is left out), and
    results.json is not written (it marks a finished run); only the plot is drawn again."""
    path = Path(out)
    if not (path / CONFIG).is_file():
        raise FileNotFoundError(f"{path / CONFIG}: no such file (not a bbm compare run directory)")
    config = read_run_file(path / CONFIG)
    if config.get("command") != "compare":
        raise ValueError(f"{out} is not a bbm compare run directory")
    records, partial = finished_records(path)
    summary = results_from_records(config, records)
    return {**summary, "run_dir": str(path), "dropped_partial_lines": partial, "plot": plot_run_dir(summary, path)}


def _block(rs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rs)

    def mean(key: str) -> float | None:
        return round(sum(r[key] for r in rs) / n, 2) if n else None

    return {
        "n": n,
        "accuracy": round(100.0 * sum(r["correct"] for r in rs) / n, 2) if n else None,
        "accuracy_interval": accuracy_interval([bool(r["correct"]) for r in rs]),
        "correct": sum(r["correct"] for r in rs),
        "invalid": sum(r["answer"] is None for r in rs),
        "tokens": sum(r["tokens"] for r in rs), "mean_tokens": mean("tokens"),
        "calls": sum(r["calls"] for r in rs), "mean_calls": mean("calls"),
        "seconds": round(sum(r["seconds"] for r in rs), 2), "mean_seconds": mean("seconds"),
        "reused_calls": sum(r.get("reused_calls", 0) for r in rs),
        # self-consistency: questions whose vote was a tie, and invalid samples over all questions
        "ties": sum(bool(r.get("vote", {}).get("tied")) for r in rs),
        "invalid_samples": sum(r.get("vote", {}).get("n_invalid", 0) for r in rs),
    }


def complete_questions(records: Iterable[dict[str, Any]], strategies: Sequence[str]
                       ) -> tuple[dict[tuple[str, str], dict[str, dict[str, Any]]], int]:
    """{(task, id): {strategy: record}} for the questions every strategy has finished, in the order
    the records came, and how many questions some strategy has not finished."""
    by_key: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in records:
        by_key.setdefault((r["task"], r["id"]), {})[r["strategy"]] = r
    complete = {k: v for k, v in by_key.items() if all(s in v for s in strategies)}
    return complete, len(by_key) - len(complete)


def summarise_compare(records: Iterable[dict[str, Any]], strategies: Sequence[str]) -> dict[str, Any]:
    """Per task, then over all tasks: per strategy accuracy, tokens, calls, seconds. Only questions
    that every strategy has finished are counted, so the strategies are compared on the same set."""
    complete, partial = complete_questions(records, strategies)
    tasks = sorted({task for task, _ in complete})
    out: dict[str, Any] = {"strategies": list(strategies), "questions_complete": len(complete),
                           "questions_partial": partial, "tasks": {}}
    out["differences"], out["sc_curve"], out["tokens_per_corrected"] = {}, {}, {}
    for task in tasks:
        rows = [v for (t, _), v in complete.items() if t == task]
        out["tasks"][task] = {s: _block([v[s] for v in rows]) for s in strategies}
        _compute_views(out, task, rows, strategies)
    out["all"] = {s: _block([v[s] for v in complete.values()]) for s in strategies}
    _compute_views(out, "all", list(complete.values()), strategies)
    return out


def _compute_views(out: dict[str, Any], key: str, rows: list[dict[str, dict[str, Any]]],
                   strategies: Sequence[str]) -> None:
    """Paired differences, self-consistency at every k, tokens per corrected answer (compute.py)."""
    out["differences"][key] = _differences(rows, strategies)
    out["sc_curve"][key] = sc_curve(rows)
    out["tokens_per_corrected"][key] = tokens_per_corrected(rows, strategies)


def _differences(rows: list[dict[str, dict[str, Any]]], strategies: Sequence[str]) -> dict[str, Any]:
    """'A - B': accuracy difference on the same questions, its paired 95% bootstrap interval, and whether
    the interval leaves out 0, for every pair of strategies."""
    return {f"{a} - {b}": difference_interval([bool(v[a]["correct"]) for v in rows], [bool(v[b]["correct"]) for v in rows])
            for i, a in enumerate(strategies) for b in strategies[i + 1:]}


def plot_compare(summary: dict[str, Any], path: Path) -> str | None:
    """Accuracy against mean tokens per question: one panel per task and one over all tasks."""
    panels = list(summary["tasks"].items()) + [("all tasks", summary["all"])]
    if not summary["tasks"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    markers = "osD^vP*X"
    for ax, (title, block) in zip(axes.flat, panels):
        for i, (name, b) in enumerate(block.items()):
            if b["n"]:
                ax.scatter(b["mean_tokens"], b["accuracy"], marker=markers[i % len(markers)], s=50, label=name)
        curve = summary.get("sc_curve", {}).get("all" if title == "all tasks" else title) or []
        if curve:  # self-consistency at k = 1..K, from the same samples
            ax.plot([p["mean_tokens"] for p in curve], [p["accuracy"] for p in curve], ":", color="gray",
                    label="self-consistency, k=1..K")
        ax.set_title(f"{title} (n={next(iter(block.values()))['n']})", fontsize=10)
        ax.set_xlabel("tokens generated per question")
        ax.set_ylabel("accuracy %")
        ax.set_ylim(-5, 105)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)

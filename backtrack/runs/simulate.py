"""The paper's Figure 2: backtracking's effect against the accuracy of a simulated reward model.

At accuracy X the simulated reward model returns the gold location with probability X and
otherwise a wrong one. The draws are *coupled* across X: each trace gets one uniform number u and
one wrong location, both seeded by (seed, trace id); at level X it is gold if u < X, else the wrong
location. So every level reuses the same two (trace, location) outcomes per trace — the whole
sweep costs at most two backtracks per trace, and each level is still an exact simulated:X draw.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from bigbench_mistake.records import Trace

from backtrack.methods.backtracking import BacktrackConfig
from backtrack.methods.decoding import with_loop_rule
from backtrack.runs.cache import OutcomeCache
from backtrack.runs.experiment import answer_fields, backtrack_with_cache
from backtrack.lm.generator import LM


@dataclass(frozen=True)
class SimulateConfig:
    accuracies: tuple[float, ...]
    model: str
    backtrack: BacktrackConfig = field(default_factory=BacktrackConfig)
    tasks: tuple[str, ...] = ()
    limit: int | None = None
    seed: int = 0  # seed of the simulated reward model (the sampling seed is backtrack.seed)
    batch_size: int = 8

    def __post_init__(self) -> None:
        if not self.accuracies or any(not 0.0 <= a <= 1.0 for a in self.accuracies):
            raise ValueError("accuracies must be a non-empty list of numbers in [0, 1]")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        with_loop_rule(d["backtrack"])
        return {"kind": "simulate", **d}


def plot_run_dir(results: dict[str, Any], run_dir) -> str:
    """The run directory's plot, drawn from its results (by the run itself and by bbm merge)."""
    return plot_simulate(results, str(Path(run_dir) / PLOT_FILE))


def simulated_draws(traces: Sequence[Trace], distribution_traces: Sequence[Trace], seed: int
                    ) -> dict[str, tuple[float, int | None]]:
    """Per trace: (u, wrong location), as reward_model.simple.SimulatedLocator draws them, so that
    level X of the sweep is exactly the locator `simulated:X` with the same seed."""
    from reward_model.simple import SimulatedLocator, label_distribution

    locator = SimulatedLocator(1.0, label_distribution(distribution_traces), seed)
    return {t.id: locator.draw(t) for t in traces}


def level_location(draw: tuple[float, int | None], gold: int | None, accuracy: float) -> int | None:
    u, wrong = draw
    return gold if u < accuracy else wrong


def trace_record(t: Trace, draw: tuple[float, int | None], outcomes: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One record per trace: the trace, its simulated draw, and the outcome of backtracking it at
    every location some level needs. Results are computed from these records alone."""
    backtracked = []
    for loc in sorted(outcomes):
        o = outcomes[loc]
        after = answer_fields(t.task, o["steps"], t.target)
        backtracked.append({"location": loc, "status": after["status"], "answer": after["answer"],
                            **{k: v for k, v in o.items() if k != "location"}})
    return {"key": t.id, **t.to_record(), "status_before": answer_fields(t.task, t.steps, t.target)["status"],
            "draw": {"u": draw[0], "wrong_location": draw[1]}, "backtracked": backtracked}


def run_simulate(traces: Sequence[Trace], draws: dict[str, tuple[float, int | None]], generator: LM,
                 cfg: SimulateConfig, cache: OutcomeCache,
                 write: Callable[[dict[str, Any]], None], done: set[str],
                 on_batch: Callable[[int], None] | None = None) -> int:
    """Backtrack every (trace, location) pair some level needs, for the traces not yet in the run
    directory, batching pairs across traces; a trace's record is written once all its pairs are done.
    Returns the number of pairs backtracked (or found in the outcome cache)."""
    needed: dict[str, list[int]] = {}
    for t in traces:
        if t.id not in done:
            needed[t.id] = sorted({loc for a in cfg.accuracies
                                   if (loc := level_location(draws[t.id], t.mistake_index, a)) is not None})
    by_id = {t.id: t for t in traces}
    got: dict[str, dict[int, dict[str, Any]]] = {tid: {} for tid in needed}
    for tid, locs in needed.items():
        if not locs:  # every level keeps this trace as it is: nothing to backtrack
            write(trace_record(by_id[tid], draws[tid], {}))
            if on_batch:
                on_batch(1)
    pairs = [(by_id[tid], loc) for tid, locs in needed.items() for loc in locs]
    for start in range(0, len(pairs), cfg.batch_size):
        batch = pairs[start:start + cfg.batch_size]
        outcomes = backtrack_with_cache([t for t, _ in batch], [loc for _, loc in batch], generator,
                                        cfg.backtrack, cache)
        written = 0
        for (t, loc), o in zip(batch, outcomes):
            got[t.id][loc] = o
            if len(got[t.id]) == len(needed[t.id]):
                write(trace_record(t, draws[t.id], got.pop(t.id)))
                written += 1
        if on_batch and written:
            on_batch(written)  # traces finished
    return len(pairs)


def summarise_simulate(records: Iterable[dict[str, Any]], accuracies: Sequence[float]) -> dict[str, Any]:
    """Per level and task: Δaccuracy✓, Δaccuracy✗, net Δaccuracy; then the break-even accuracy (see
    break_even). Uses the per-trace records only (trace_record), so merged shards summarise alike."""
    records = list(records)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r)
    by_task_all = dict(by_task, overall=records)

    def location(r: dict[str, Any], acc: float) -> int | None:
        return level_location((r["draw"]["u"], r["draw"]["wrong_location"]), r["mistake_index"], acc)

    def status_after(r: dict[str, Any], acc: float) -> str:
        loc = location(r, acc)
        if loc is None:
            return r["status_before"]
        return next(b["status"] for b in r["backtracked"] if b["location"] == loc)

    levels: dict[str, dict[str, Any]] = {}
    for name, rs in by_task_all.items():
        rows = []
        right = [r for r in rs if r["status_before"] == "correct"]
        wrong = [r for r in rs if r["status_before"] != "correct"]
        for acc in accuracies:
            r_after = sum(status_after(r, acc) == "correct" for r in right)
            w_after = sum(status_after(r, acc) == "correct" for r in wrong)
            measured = sum(location(r, acc) == r["mistake_index"] for r in rs)
            rows.append({
                "accuracy_rm": acc,
                "measured_accuracy_rm": round(measured / len(rs), 4) if rs else None,
                "delta_acc_correct": round(100.0 * (r_after - len(right)) / len(right), 2) if right else None,
                "delta_acc_wrong": round(100.0 * w_after / len(wrong), 2) if wrong else None,
                "delta_acc_net": round(100.0 * (r_after + w_after - len(right)) / len(rs), 2) if rs else None,
                "n_correct": len(right), "n_wrong": len(wrong),
            })
        levels[name] = {"levels": rows, "break_even_accuracy_rm": break_even(rows)}
    return {"tasks": {k: v for k, v in levels.items() if k != "overall"}, "overall": levels["overall"]}


def results_from_records(config: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json of a simulate run (what bbm merge recomputes)."""
    return summarise_simulate(records, config["accuracies"])


def break_even(rows: Sequence[dict[str, Any]]) -> float | None:
    """The reward-model accuracy from which backtracking stops hurting: the net accuracy change is >= 0
    at that level and every higher one (linearly interpolated at the last crossing from below).
    None when the net change is still negative at the highest level (backtracking never pays)."""
    pts = sorted((r["accuracy_rm"], r["delta_acc_net"]) for r in rows)
    if not pts or pts[-1][1] < 0:
        return None
    last_negative = max((i for i, (_, d) in enumerate(pts) if d < 0), default=None)
    if last_negative is None:
        return pts[0][0]
    (a0, d0), (a1, d1) = pts[last_negative], pts[last_negative + 1]
    return round(a0 + (a1 - a0) * (-d0) / (d1 - d0), 4)


PLOT_FILE = "figure2.png"


def plot_simulate(summary: dict[str, Any], path: str) -> str:
    """Figure 2 analogue: Δaccuracy✓ and Δaccuracy✗ against reward-model accuracy, one panel per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {**summary["tasks"], "overall": summary["overall"]}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), sharey=True, squeeze=False)
    for ax, (name, block) in zip(axes[0], panels.items()):
        xs = [r["accuracy_rm"] * 100 for r in block["levels"]]
        for key, label, style in (("delta_acc_correct", "Δacc✓", "o-"), ("delta_acc_wrong", "Δacc✗", "s-"),
                                  ("delta_acc_net", "net", "^--")):
            ys = [r[key] for r in block["levels"]]
            if all(y is not None for y in ys):
                ax.plot(xs, ys, style, label=label, markersize=3)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(name.replace("_", " "), fontsize=9)
        ax.set_xlabel("RM accuracy (%)")
    axes[0][0].set_ylabel("accuracy change (points)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

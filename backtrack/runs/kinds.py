"""One registry of run kinds, and one executor that owns what every run does the same way.

A run kind (config.json's "kind") declares how its results.json is computed from its records (so a
merged sharded run is recomputed by the same function), its plot, its Markdown report section and the
text summary its command prints. `bbm merge`, `bbm report` and the commands look kinds up here; adding
a kind is one entry.

`execute` owns the run directory (config check, resume), the shard, the progress bar with tokens/s,
and results.json; a kind's work function only turns items into records.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from backtrack.lm.progress import ProgressLM, progress_bar
from backtrack.runs import compare, experiment, find, generate, pipeline, report, simulate
from backtrack.runs.rundir import RunDir
from backtrack.runs.shard import ITEM_INDEX, parse_shard, with_shard

ResultsFn = Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any]]


@dataclass(frozen=True)
class RunKind:
    name: str
    results: ResultsFn                                    # (config, records) -> results.json
    report: Callable[[Sequence[dict[str, Any]]], str]     # runs of this kind -> a Markdown section
    plot: Callable[[dict[str, Any], Any], str | None] | None = None  # (results, run dir) -> PNG path


KINDS: dict[str, RunKind] = {k.name: k for k in (
    RunKind("generate", generate.results_from_records, report.render_generic),
    RunKind("backtrack", experiment.results_from_records, report.render_backtrack),
    RunKind("pipeline", pipeline.results_from_records, report.render_backtrack),
    RunKind("simulate", simulate.results_from_records, report.render_simulate, simulate.plot_run_dir),
    RunKind("compare", compare.results_from_records, report.render_generic, compare.plot_run_dir),
    RunKind("find", find.results_from_records, report.render_generic),
)}


def get_kind(name: str) -> RunKind:
    if name not in KINDS:
        raise ValueError(f"unknown run kind {name!r} (config.json 'kind'); known: {', '.join(KINDS)}")
    return KINDS[name]


@dataclass
class Work:
    """What a kind's work function gets: this shard's items not yet done, the model wrapped to show
    tokens/s, a writer that stamps each record with its item's position, and a per-item progress step."""
    todo: list
    lm: Any
    write: Callable[[dict[str, Any]], None]
    step: Callable[[int], Any]


def execute(kind: str, config: dict[str, Any], items: Sequence[Any], out: Path, shard: str | None, lm: Any,
            work: Callable[[Work], dict[str, Any] | None], key: Callable[[Any], str] = lambda item: item.id,
            key_field: str = "key",
            summary: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run `work` over the items of this shard not yet in `out`, then write results.json (and the plot)
    from every record of the run; returns {"run_dir", "results", "plot", **what work returned, **summary(records)}."""
    spec = get_kind(kind)
    part = parse_shard(shard)
    run = RunDir(out, with_shard({**config, "kind": kind}, part, len(items)), key_field=key_field)
    mine = part.select(items)
    position = {key(item): p for p, item in mine}
    done = run.done_keys()
    todo = [item for _, item in mine if key(item) not in done]
    bar = progress_bar(len(todo), kind)
    shown = ProgressLM(lm, bar) if lm is not None else None
    try:
        extra = work(Work(todo, shown, lambda rec: run.append({**rec, ITEM_INDEX: position[rec[key_field]]}),
                          bar.update)) or {}
    finally:
        bar.close()
    records = list(run.records())
    results = spec.results(run.config, records)
    run.write_results(results)
    plot = spec.plot(results, out) if spec.plot else None
    return {"run_dir": str(out), "results": results, "plot": plot, **extra, **(summary(records) if summary else {})}


def merge(out: Path, run_dirs: Sequence[Path]) -> dict[str, Any]:
    """bbm merge: join the shards of one run with its kind's own results and plot functions."""
    import json

    from backtrack.runs.shard import merge_runs

    if not run_dirs:
        raise ValueError("merge needs at least one shard run directory")
    cfg = Path(run_dirs[0]) / "config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"{run_dirs[0]}: no config.json (not a run directory)")
    spec = get_kind(json.loads(cfg.read_text(encoding="utf-8")).get("kind"))
    return merge_runs(out, run_dirs, spec.results, spec.plot)


def render_report(paths: Sequence[Path]) -> str:
    """bbm report: run directories as Markdown, runs of one kind side by side."""
    runs = [report.load_run(p) for p in paths]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_kind.setdefault(r["config"].get("kind", "run"), []).append(r)
    sections = [(KINDS[kind].report if kind in KINDS else report.render_generic)(rs) for kind, rs in by_kind.items()]
    return "# bbm report\n\n" + "\n\n".join(sections) + "\n"

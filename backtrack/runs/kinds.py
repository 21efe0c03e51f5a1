"""One registry of run kinds, and one executor that owns what every run does the same way.

A run kind (config.json's "kind") declares how its results.json is computed from its records (so a
merged sharded run is recomputed by the same function), its plot, its Markdown report section and the
text summary its command prints. `bbm merge`, `bbm report` and the commands look kinds up here; adding
a kind is one entry.

The executor that every kind runs through is backtrack/runs/executor.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from backtrack.runs import compare, experiment, find, generate, pipeline, render, report, simulate
from backtrack.runs.executor import Work, execute

ResultsFn = Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any]]


@dataclass(frozen=True)
class RunKind:
    name: str
    results: ResultsFn                                    # (config, records) -> results.json
    report: Callable[[Sequence[dict[str, Any]]], str]     # runs of this kind -> a Markdown section
    summary: Callable[[dict[str, Any]], str]              # what its command returns -> the text it prints
    plot: Callable[[dict[str, Any], Any], str | None] | None = None  # (results, run dir) -> PNG path


KINDS: dict[str, RunKind] = {k.name: k for k in (
    RunKind("generate", generate.results_from_records, report.render_generate, render.render_generate),
    RunKind("backtrack", experiment.results_from_records, report.render_backtrack, render.render_backtrack),
    RunKind("pipeline", pipeline.results_from_records, report.render_backtrack, render.render_pipeline),
    RunKind("simulate", simulate.results_from_records, report.render_simulate, render.render_simulate,
            simulate.plot_run_dir),
    RunKind("compare", compare.results_from_records, report.render_compare, render.render_compare,
            compare.plot_run_dir),
    RunKind("find", find.results_from_records, report.render_find, render.render_find),
)}


def get_kind(name: str) -> RunKind:
    if name not in KINDS:
        raise ValueError(f"unknown run kind {name!r} (config.json 'kind'); known: {', '.join(KINDS)}")
    return KINDS[name]


def run_kind(kind: str, config: dict[str, Any], items: Sequence[Any], out: Path, shard: str | None, lm: Any,
             work: Callable[[Work], dict[str, Any] | None], **options: Any) -> dict[str, Any]:
    """execute() a run of a registered kind with the kind's own results and plot functions."""
    spec = get_kind(kind)
    return execute({**config, "kind": kind}, items, out, shard, lm, work, spec.results, spec.plot, **options)


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


def load_for_report(path: Path) -> dict[str, Any]:
    """A run directory for bbm report. A finished one is read as it is; one still going (or stopped
    before its end: no results.json) is summarised from its finished records by its kind's own
    results function, in memory -- nothing is written into it, so the run's own end is untouched."""
    from backtrack.runs.rundir import CONFIG, RESULTS, finished_records, read_run_file

    path = Path(path)
    if (path / RESULTS).is_file() or not (path / CONFIG).is_file():
        return report.load_run(path)
    config = read_run_file(path / CONFIG)
    if config.get("kind") not in KINDS:
        return report.load_run(path)  # an older run without a registered kind: needs its results.json
    records, _ = finished_records(path)
    if not records:
        raise ValueError(f"{path}: no finished record yet (and no results.json); nothing to report")
    return {"path": path, "config": config, "results": get_kind(config["kind"]).results(config, records),
            "in_progress": len(records)}


def render_report(paths: Sequence[Path]) -> str:
    """bbm report: run directories as Markdown, runs of one kind side by side."""
    runs = [load_for_report(p) for p in paths]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_kind.setdefault(r["config"].get("kind", "run"), []).append(r)
    sections = [(KINDS[kind].report if kind in KINDS else report.render_generic)(rs) for kind, rs in by_kind.items()]
    unfinished = [f"- `{r['path']}`: not finished, {r['in_progress']} records so far; its tables count those."
                  for r in runs if "in_progress" in r]
    head = "# bbm report\n\n" + ("\n".join(unfinished) + "\n\n" if unfinished else "")
    return head + "\n\n".join(sections) + "\n"

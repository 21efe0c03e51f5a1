"""The one executor of runs: it owns the run directory (config check, resume), the shard, the progress
bar with tokens/s, and results.json (computed from every record of the run by the kind's own function,
the one bbm merge uses too); a kind's work function only turns items into records.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from backtrack.lm.progress import ProgressLM, progress_bar
from backtrack.runs.rundir import RunDir
from backtrack.runs.shard import ITEM_INDEX, Shard, parse_shard, with_shard

ResultsFn = Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any]]


@dataclass
class Work:
    """What a kind's work function gets: this shard's items not yet done, the model wrapped to show
    tokens/s, a writer that stamps each record with its item's position, and a per-item progress step."""
    todo: list
    lm: Any
    write: Callable[[dict[str, Any]], None]
    step: Callable[[int], Any]


def execute(config: dict[str, Any], items: Sequence[Any], out: str | Path, shard: Shard | str | None, lm: Any,
            work: Callable[[Work], dict[str, Any] | None], results: ResultsFn,
            plot: Callable[[dict[str, Any], Any], str | None] | None = None,
            key: Callable[[Any], str] = lambda item: item.id, key_field: str = "key",
            summary: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run `work` over the items of this shard not yet in `out`, then write results.json (and the plot)
    from every record of the run; returns {"run_dir", "results", "plot", **what work returned, **summary(records)}."""
    part = shard if isinstance(shard, Shard) else parse_shard(shard)
    run = RunDir(out, with_shard(config, part, len(items)), key_field=key_field)
    mine = part.select(items)
    position = {key(item): p for p, item in mine}
    done = run.done_keys()
    todo = [item for _, item in mine if key(item) not in done]
    bar = progress_bar(len(todo), config.get("kind", "run"))
    shown = ProgressLM(lm, bar) if lm is not None else None
    try:
        extra = work(Work(todo, shown, lambda rec: run.append({**rec, ITEM_INDEX: position[rec[key_field]]}),
                          bar.update)) or {}
    finally:
        bar.close()
    records = list(run.records())
    computed = results(run.config, records)
    run.write_results(computed)
    drawn = plot(computed, out) if plot else None
    return {"run_dir": str(out), "results": computed, "plot": drawn, "new_items": len(todo),
            "skipped_done": len(mine) - len(todo), "dropped_partial_lines": run.dropped_partial_lines,
            **extra, **(summary(records) if summary else {})}

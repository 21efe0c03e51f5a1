"""Sharded runs: n machines (or n servers) each run a slice of one run, and `merge` joins them.

A shard `i/n` (0-based: 0/4, 1/4, 2/4, 3/4) takes the items at positions p of the full ordered item
list with p % n == i: a stable rule that needs no coordination and spreads long and short items
evenly. Each shard writes an ordinary run directory (backtrack/runs/rundir.py) whose config.json is the
unsharded config plus `"shard": {"index": i, "count": n, "n_items": N}`, and whose records (one
per finished item, as RunDir keeps them) carry `item_index` = p, the item's position in the full list.

`merge_runs(out, run_dirs)` checks that the configs agree except for the shard, that the shards are
0..n-1 of the same n, each complete (exactly its positions) and disjoint, then writes one run
directory: the unsharded config, the records in the original item order, and results.json
recomputed by the same function the unsharded run uses, and the run's plot where it has one (both
given by the run kind: backtrack/runs/kinds.py `merge`). The merged
directory is then the directory an unsharded run writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from backtrack.runs.rundir import CONFIG, SAMPLES, RunDir, RunDirError, read_run_file

T = TypeVar("T")
SHARD_KEY, ITEM_INDEX = "shard", "item_index"
#: config keys that may differ between the shards of one run: where and how fast it ran, not what
#: it computed (n shards on n servers have n URLs).
EXECUTION_KEYS = (SHARD_KEY, "base_url", "concurrency")
ResultsFn = Callable[[dict[str, Any], list[dict[str, Any]]], dict[str, Any]]


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"shard count must be >= 1, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard index must be in 0..{self.count - 1} (0-based), got {self.index}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, position: int) -> bool:
        return position % self.count == self.index

    def select(self, items: Sequence[T]) -> list[tuple[int, T]]:
        """(position in the full list, item) for this shard's items, in order."""
        return [(p, item) for p, item in enumerate(items) if self.owns(p)]

    def positions(self, n_items: int) -> range:
        return range(self.index, n_items, self.count)


WHOLE = Shard(0, 1)


def parse_shard(text: str | None) -> Shard:
    """'i/n' (0-based i) -> Shard; None or '' -> the whole run (0/1)."""
    if not text:
        return WHOLE
    parts = text.split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--shard must look like i/n with 0 <= i < n (e.g. 0/4), got {text!r}")
    return Shard(int(parts[0]), int(parts[1]))


def with_shard(config: dict[str, Any], shard: Shard, n_items: int) -> dict[str, Any]:
    """The config a shard's run directory records; the whole run (0/1) records no shard at all, so
    an unsharded run and a merged one have the same config."""
    if SHARD_KEY in config:
        raise ValueError(f"config already has a {SHARD_KEY!r} key")
    if shard == WHOLE:
        return dict(config)
    return {**config, SHARD_KEY: {"index": shard.index, "count": shard.count, "n_items": n_items}}


def _load(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cfg_path = run_dir / CONFIG
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {CONFIG} (not a run directory)")
    config = read_run_file(cfg_path)
    records = list(RunDir(run_dir, config).records())
    return config, records


def merge_runs(out: str | Path, run_dirs: Sequence[str | Path], results_fn: ResultsFn,
               plot_fn: Callable[[dict[str, Any], Path], Any] | None = None) -> dict[str, Any]:
    """Join the shard run directories `run_dirs` into the run directory `out` (see module doc); results.json
    is recomputed with results_fn and the plot drawn with plot_fn (the run kind's own, backtrack/runs/kinds.py)."""
    if not run_dirs:
        raise ValueError("merge needs at least one shard run directory")
    loaded = [(Path(d), *_load(Path(d))) for d in run_dirs]
    first_dir, first_cfg, _ = loaded[0]
    base = {k: v for k, v in first_cfg.items() if k not in EXECUTION_KEYS}
    merged_config = {k: v for k, v in first_cfg.items() if k != SHARD_KEY}  # as the unsharded run writes it
    shards: dict[int, Path] = {}
    count = n_items = None
    for d, cfg, _ in loaded:
        info = cfg.get(SHARD_KEY)
        if not isinstance(info, dict):
            raise ValueError(f"{d / CONFIG}: field {SHARD_KEY!r}: missing — not a sharded run (made without --shard)")
        rest = {k: v for k, v in cfg.items() if k not in EXECUTION_KEYS}
        if rest != base:
            diff = sorted(k for k in set(rest) | set(base) if rest.get(k) != base.get(k))
            raise ValueError(f"{d / CONFIG} and {first_dir / CONFIG} are not shards of one run: they differ in "
                             f"{', '.join(diff)}")
        if count is None:
            count, n_items = info["count"], info["n_items"]
        elif (info["count"], info["n_items"]) != (count, n_items):
            raise ValueError(f"{d / CONFIG}: field shard: {info['count']} shards of {info['n_items']} items, "
                             f"but {first_dir} has {count} shards of {n_items} items")
        if info["index"] in shards:
            raise ValueError(f"shard {info['index']}/{count} given twice: {shards[info['index']]} and {d}")
        shards[info["index"]] = d
    missing = sorted(set(range(count)) - set(shards))  # type: ignore[arg-type]
    if missing:
        raise ValueError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: give all {count} run directories")

    merged: list[tuple[int, int, dict[str, Any]]] = []  # (item_index, order within shard, record)
    for d, cfg, records in loaded:
        shard = Shard(cfg[SHARD_KEY]["index"], count)  # type: ignore[arg-type]
        seen: set[int] = set()
        for line, r in enumerate(records, start=1):
            p = r.get(ITEM_INDEX)
            if not isinstance(p, int):
                raise ValueError(f"{d / SAMPLES}:{line}: field {ITEM_INDEX!r}: missing or not an integer")
            if not shard.owns(p) or not 0 <= p < n_items:  # type: ignore[operator]
                raise ValueError(f"{d / SAMPLES}:{line}: field {ITEM_INDEX!r}: item {p} does not belong to shard {shard}"
                                 f" of {n_items} items")
            if p in seen:
                raise ValueError(f"{d / SAMPLES}:{line}: field {ITEM_INDEX!r}: item {p} has a second record")
            seen.add(p)
            merged.append((p, line, r))
        lacking = sorted(set(shard.positions(n_items)) - seen)  # type: ignore[arg-type]
        if lacking:
            raise ValueError(f"{d}: shard {shard} is not finished: {len(lacking)} of its items have no record "
                             f"(first: item {lacking[0]}); rerun it to resume, then merge")
    merged.sort(key=lambda t: t[0])  # the original item order
    records = [r for _, _, r in merged]

    out_dir = Path(out)
    if (out_dir / SAMPLES).exists() and (out_dir / SAMPLES).stat().st_size:
        raise RunDirError(f"{out_dir} already holds samples; merge into a new directory")
    run = RunDir(out_dir, merged_config, key_field=ITEM_INDEX)
    for r in records:
        run.append(r)
    results = results_fn(run.config, records)
    run.write_results(results)
    if plot_fn is not None:
        plot_fn(results, out_dir)
    return {"out": str(out_dir), "shards": count, "n_items": n_items, "records": len(records),
            "from": [str(shards[i]) for i in range(count)], "results": results}  # type: ignore[arg-type]

"""bbm find: the paper's prompt-based mistake finders (Table 4) run over traces, resumable, scored with
the foundation metrics next to the baselines."""
from __future__ import annotations

import hashlib
import time
from typing import Any, Sequence

from backtrack.lm.generator import LM
from backtrack.lm.wrappers import CountingLM
from backtrack.runs.rundir import RunDir
from backtrack.runs.shard import ITEM_INDEX, parse_shard, with_shard
from bigbench_mistake.metrics import baselines, mistake_finding_scores
from bigbench_mistake.records import Trace
from reward_model.prompt_finders import FinderConfig, PromptFinder


def select_traces(traces: Sequence[Trace], limit: int | None) -> list[Trace]:
    """The first `limit` traces of each task, in file order (all when limit is None)."""
    if limit is None:
        return list(traces)
    seen: dict[str, int] = {}
    out = []
    for t in traces:
        if seen.get(t.task, 0) < limit:
            seen[t.task] = seen.get(t.task, 0) + 1
            out.append(t)
    return out


def run_find(traces: Sequence[Trace], config: FinderConfig, generator: LM, out, progress=None,
             shard: str | None = None) -> dict[str, Any]:
    """Predict the first mistake of each trace with one finder (resumable run directory keyed by
    trace id), then score the predictions with the foundation metrics next to the baselines.
    With shard "i/n" only that slice of the traces is run (join the slices with bbm merge)."""
    part = parse_shard(shard)
    ids = sorted(t.id for t in traces)
    config_json = {"kind": "find", "command": "find",
                   "finder": {"method": config.method, "mode": config.mode, "answer_tokens": config.answer_tokens,
                              "reasoning_tokens": config.reasoning_tokens},
                   "generator": generator.name, "n_traces": len(traces),
                   "traces": hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]}
    run = RunDir(out, with_shard(config_json, part, len(traces)), key_field="id")
    mine = part.select(traces)
    done = run.done_keys()
    counter = CountingLM(generator)
    finder = PromptFinder(counter, config)
    for n, (position, t) in enumerate(mine, start=1):
        if t.id in done:
            continue
        tokens0, calls0 = counter.snapshot()
        start = time.perf_counter()
        [r] = finder.find([t])
        record = {**t.to_record(), **r.to_dict(), "tokens": counter.tokens - tokens0, "calls": counter.calls - calls0,
                  "seconds": round(time.perf_counter() - start, 3), ITEM_INDEX: position}
        run.append(record)
        if progress:
            progress(f"[{n}/{len(mine)}] {t.id}: predicted {r.index}, gold {t.mistake_index} ({record['calls']} calls)")
    result = {"run_dir": str(run.path), **results_from_records(run.config, list(run.records()))}
    run.write_results(result)
    return result


def results_from_records(config: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json of a find run from its records alone (each holds its trace), so bbm merge can
    recompute it for joined shards."""
    traces = [Trace(r["task"], r["id"], r["input"], tuple(r["steps"]), r["answer"], r["target"], r["mistake_index"])
              for r in records]
    preds = {r["id"]: r["predicted_mistake_index"] for r in records}
    return {"method": config["finder"]["method"], "mode": config["finder"]["mode"], "generator": config["generator"],
            "scores": mistake_finding_scores(traces, preds), "baselines": baselines(traces),
            "unparsed": sum(r["unparsed"] for r in records),
            "calls": sum(r["calls"] for r in records),
            "tokens": sum(r["tokens"] for r in records),
            "seconds": round(sum(r["seconds"] for r in records), 2)}

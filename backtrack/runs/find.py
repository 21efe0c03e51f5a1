"""bbm find: the paper's prompt-based mistake finders (Table 4) run over traces, resumable, scored with
the foundation metrics next to the baselines."""
from __future__ import annotations

import hashlib
import time
from typing import Any, Sequence

from backtrack.lm.generator import LM
from backtrack.runs.executor import Work, execute
from backtrack.runs.options import BATCH_SIZE
from bigbench_mistake.metrics import baselines, mistake_finding_scores
from bigbench_mistake.records import Trace
from reward_model.prompt_finders import FinderConfig, PromptFinder


def find_config(traces: Sequence[Trace], config: FinderConfig, model: str) -> dict[str, Any]:
    ids = sorted(t.id for t in traces)
    return {"kind": "find", "command": "find",
            "finder": {"method": config.method, "mode": config.mode, "answer_tokens": config.answer_tokens,
                       "reasoning_tokens": config.reasoning_tokens},
            "model": model, "n_traces": len(traces), "traces": hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]}


def run_find(traces: Sequence[Trace], config: FinderConfig, lm: LM, out, shard: str | None = None,
             batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Predict the first mistake of each trace with one finder (resumable run directory keyed by
    trace id), then score the predictions with the foundation metrics next to the baselines.
    The traces are checked `batch_size` at a time (one model call holds a request per trace of the
    batch still being checked); each record is written when its batch ends, with its own tokens
    and calls, and as seconds its share of the batch's wall time (the batch's seconds / its traces).
    With shard "i/n" only that slice of the traces is run (join the slices with bbm merge)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")

    def work(w: Work) -> None:
        finder = PromptFinder(w.lm, config)
        for start in range(0, len(w.todo), batch_size):
            batch = w.todo[start:start + batch_size]
            began = time.perf_counter()
            results = finder.find(batch)
            share = (time.perf_counter() - began) / len(batch)
            for t, r in zip(batch, results):
                w.write({**t.to_record(), **r.to_dict(), "tokens": r.tokens, "calls": r.calls,
                         "seconds": round(share, 3)})
            w.step(len(batch))

    out = execute(find_config(traces, config, lm.name), traces, out, shard, lm, work, results_from_records,
                  key_field="id")
    return {"run_dir": out["run_dir"], **out["results"]}


def results_from_records(config: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json of a find run from its records alone (each holds its trace), so bbm merge can
    recompute it for joined shards."""
    traces = [Trace(r["task"], r["id"], r["input"], tuple(r["steps"]), r["answer"], r["target"], r["mistake_index"])
              for r in records]
    preds = {r["id"]: r["predicted_mistake_index"] for r in records}
    return {"method": config["finder"]["method"], "mode": config["finder"]["mode"], "model": config.get("model", config.get("generator")),
            "scores": mistake_finding_scores(traces, preds), "baselines": baselines(traces),
            "unparsed": sum(r["unparsed"] for r in records),
            "calls": sum(r["calls"] for r in records),
            "tokens": sum(r["tokens"] for r in records),
            "seconds": round(sum(r["seconds"] for r in records), 2)}

"""The end-to-end loop, bbm's main job: generate -> locate -> backtrack -> score.

Questions (task, input, target) are answered greedily step by step (the paper's generation set-up),
the reward model points at the first mistake of each new trace, and backtracking corrects it. Each
question becomes one record in the run directory: the generated trace, the located step, every
sample considered, the corrected trace, and both answers scored against the target.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from bigbench_mistake.records import Trace
from reward_model.locator import Locator

from backtrack.methods.backtracking import Verifier
from backtrack.runs.cache import OutcomeCache
from backtrack.methods.decoding import DecodeConfig, TraceRequest, decode_traces
from backtrack.runs.experiment import (LOCATED_AT_TOKEN_CAP, BacktrackRunConfig, CorrectionRunConfig, backtrack_traces,
                                      config_json, summarise_backtrack)
from backtrack.lm.generator import LM
from backtrack.methods.strategies import Item


@dataclass(frozen=True)
class PipelineConfig(CorrectionRunConfig):
    questions_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": "pipeline", **config_json(self)}


def generated_traces(items: Sequence[Item], generator: LM, cfg: PipelineConfig) -> list[Trace]:
    """Greedy step-wise traces for the items, as unlabelled Traces, with generation metadata in
    `extra["generation"]` as bbm generate writes it (a trace cut at the token cap is located there)."""
    start = time.perf_counter()
    decoded = decode_traces(generator, [TraceRequest(i.task, i.input) for i in items],
                            DecodeConfig(cfg.backtrack.max_steps, cfg.backtrack.max_step_tokens, cfg.batch_size,
                                         stop_repeats=cfg.backtrack.stop_repeats,
                                         step_cap_factor=cfg.backtrack.step_cap_factor))
    share = (time.perf_counter() - start) / max(len(items), 1)
    return [Trace(item.task, item.id, item.input, d.steps, None, item.target, None,
                  extra={"generation": {"stop_reason": d.stop_reason, "tokens": d.n_tokens, "seconds": round(share, 3)}})
            for item, d in zip(items, decoded)]


def run_pipeline(items: Sequence[Item], generator: LM, locator: Locator, cfg: PipelineConfig,
                 cache: OutcomeCache, write: Callable[[dict[str, Any]], None], done: set[str],
                 on_batch: Callable[[int], None] | None = None, verifier: Verifier | None = None) -> int:
    todo = [i for i in items if i.id not in done]
    bt_cfg = BacktrackRunConfig(locator=cfg.locator, model=cfg.model, backtrack=cfg.backtrack,
                                threshold=cfg.threshold, batch_size=cfg.batch_size, verifier=cfg.verifier)
    for start in range(0, len(todo), cfg.batch_size):
        batch = generated_traces(todo[start:start + cfg.batch_size], generator, cfg)
        records = backtrack_traces(batch, locator, generator, bt_cfg, cache, verifier)
        for rec, trace in zip(records, batch):
            gen = rec["generation"] = trace.extra["generation"]
            rec["tokens"] += gen["tokens"]
            rec["seconds"] = round(rec["seconds"] + gen["seconds"], 3)
            write(rec)
        if on_batch:
            on_batch(len(batch))
    return len(todo)


def results_from_records(config: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json of a pipeline run from its records (used by `bbm merge` for sharded runs)."""
    return summarise_pipeline(records)


def summarise_pipeline(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy before and after backtracking, per task (the Table 6 fields, on generated traces)."""
    records = list(records)
    summary = summarise_backtrack(records)
    summary["generation_stop_reasons"] = {}
    for r in records:
        reason = r["generation"]["stop_reason"]
        summary["generation_stop_reasons"][reason] = summary["generation_stop_reasons"].get(reason, 0) + 1
    return summary


def before_after(record: dict[str, Any]) -> str | None:
    """A readable account of one corrected trace; None when nothing was changed."""
    r0 = record["rounds"][0]
    if r0["location"] is None:
        return None
    loc = r0["location"]
    how = " (the step ran to the token cap)" if r0.get("located_by") == LOCATED_AT_TOKEN_CAP else ""
    lines = [f"[{record['task']}] {record['id']}  target: {record['target']}",
             f"  mistake located at Thought {loc + 1}{how}: {record['original_steps'][loc]}"]
    if r0["stop_reason"] == "uncorrectable":
        lines.append("  every sample repeated that step: trace kept")
    elif r0["stop_reason"] == "rejected":
        lines.append(f"  no sample gave an acceptable trace ({len(r0.get('attempts', []))} tried): trace kept")
    else:
        lines.append(f"  replaced by: {r0['replacement']}")
    lines.append(f"  answer: {record['original_answer']!r} ({record['original_status']}) -> "
                 f"{record['answer']!r} ({record['status']})")
    return "\n".join(lines)

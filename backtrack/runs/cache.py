"""A persistent cache of backtracking outcomes, keyed by everything that decides them.

Backtracking one trace at one location with one seed is deterministic, so its outcome is stored
under a key made of the trace (id, input, steps), the location, the round, every sampling setting,
the generator's identity (full name, device, versions of the libraries that compute it:
backtrack.lm.generator.generator_identity) and a hash of the task's prompt for the question
(few-shot examples and question format): an outcome computed on a CPU is not reused on CUDA, nor
after a prompt or library change. Entries keyed otherwise (older bbm) simply never match. `bbm simulate` sweeps many reward-model accuracies over the same
traces; with this cache each (trace, location) pair is paid for once across the sweep and across
repeated runs. The file is append-only JSONL: an interrupted write loses at most the last entry.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import get_task


def outcome_key(trace: Trace, location: int | None, round_index: int, generator: Mapping[str, Any],
                sampling: dict[str, Any]) -> str:
    """`generator`: the generator's identity (generator_identity)."""
    prompt = get_task(trace.task).prompt(trace.input)
    payload = {
        "id": trace.id, "task": trace.task, "input": trace.input, "steps": list(trace.steps),
        "location": location, "round": round_index, "generator": dict(generator), "sampling": sampling,
        "prompt_sha256": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class OutcomeCache:
    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.entries: dict[str, dict[str, Any]] = {}
        self.hits = self.misses = 0
        if self.path and self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a write cut short; the entry is simply recomputed
                    # anything but {"key": ..., "value": {...}} is not an entry of ours: it is skipped
                    if isinstance(entry, dict) and isinstance(entry.get("key"), str) and isinstance(entry.get("value"), dict):
                        self.entries[entry["key"]] = entry["value"]

    def get(self, key: str) -> dict[str, Any] | None:
        value = self.entries.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.entries[key] = value
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write() on an O_APPEND descriptor: several runs sharing the cache (shards on one
        # machine) append whole lines, never interleaved pieces of them.
        line = (json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            while written < len(line):  # a regular file takes it all at once; be safe anyway
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)

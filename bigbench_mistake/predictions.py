"""Reading predicted first-mistake indices from JSONL, with file/line/field errors.

A record names its trace by `id`; a record in the dataset's own shape has no `id` (the loader
numbers such records by position) but carries the trace's `input`, which names its question in the
gold data (and `task`, or a file named after the task): such records are matched on (task, input),
so a file of the dataset's shape scores in any order and as any subset of the traces."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from .metrics import Prediction
from .records import DataError, Trace, ValidationIssue, iter_jsonl
from .tasks import TASKS

PREDICTION_KEYS = ("predicted_mistake_index", "mistake_index")


def read_predictions(path: str | Path, gold: Sequence[Trace]) -> tuple[dict[str, Prediction], str]:
    """{id: index or None} and the key it was read from: `predicted_mistake_index` where the file has
    it (what `bbm rm locate` writes), else `mistake_index` (a file in the dataset's own shape)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    known: Mapping[str, Trace] = {t.id: t for t in gold}
    by_input: dict[tuple[str, str], list[str]] = {}
    for t in gold:
        by_input.setdefault((t.task, t.input), []).append(t.id)
    file_task = path.stem if path.stem in TASKS else None
    preds: dict[str, Prediction] = {}
    issues: list[ValidationIssue] = []
    key_used: str | None = None
    for line, value in iter_jsonl(path):
        if isinstance(value, ValidationIssue):
            issues.append(value)
            continue

        def bad(field: str, msg: str) -> None:
            issues.append(ValidationIssue(str(path), line, field, msg))

        if not isinstance(value, dict):
            bad("<record>", "expected a JSON object")
            continue
        key = next((k for k in PREDICTION_KEYS if k in value), None)
        if key is None:
            bad("predicted_mistake_index", f"missing key (one of {', '.join(PREDICTION_KEYS)})")
            continue
        if key_used is None:
            key_used = key
        elif key != key_used:
            bad(key, f"file mixes {key_used} and {key}")
            continue
        if value.get("id") is not None:
            tid = str(value["id"])
        elif isinstance(value.get("input"), str):
            task = value.get("task") or file_task
            if task is None:
                bad("task", "missing key (a record without id is matched by task and input; the file name names no task)")
                continue
            ids = by_input.get((task, value["input"]), [])
            if len(ids) != 1:
                bad("input", f"matches no gold trace of task {task!r}" if not ids else
                    f"matches {len(ids)} gold traces of task {task!r}; give each record its id")
                continue
            tid = ids[0]
        else:
            bad("id", "missing key (and no input to match the record to a gold trace by)")
            continue
        if tid not in known:
            bad("id", f"{tid!r} is not a trace of the gold data")
            continue
        if tid in preds:
            bad("id", f"{tid!r} predicted twice")
            continue
        p = value[key]
        if p is not None and (isinstance(p, bool) or not isinstance(p, int)):
            bad(key, f"expected an integer or null, got {p!r}")
            continue
        if p is not None and not 0 <= p < len(known[tid].steps):
            bad(key, f"{p} is out of range for {len(known[tid].steps)} steps")
            continue
        preds[tid] = p
    if issues:
        raise DataError(issues)
    return preds, key_used or PREDICTION_KEYS[0]

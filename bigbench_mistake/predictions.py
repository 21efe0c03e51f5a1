"""Reading predicted first-mistake indices from JSONL, with file/line/field errors."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from .metrics import Prediction
from .records import DataError, Trace, ValidationIssue, iter_jsonl

PREDICTION_KEYS = ("predicted_mistake_index", "mistake_index")


def read_predictions(path: str | Path, gold: Sequence[Trace]) -> tuple[dict[str, Prediction], str]:
    """{id: index or None} and the key it was read from: `predicted_mistake_index` where the file has
    it (what `bbm rm locate` writes), else `mistake_index` (a file in the dataset's own shape)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    known: Mapping[str, Trace] = {t.id: t for t in gold}
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
        tid = value.get("id")
        if tid is None:
            bad("id", "missing key")
            continue
        tid = str(tid)
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

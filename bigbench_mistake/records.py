"""Typed traces in the BIG-Bench Mistake shape, and line-by-line validation of JSONL files.

A record is `{input, steps, answer, target, mistake_index}` plus optional `task`, `id` and any
extra keys (generation metadata, predictions). Extra keys are kept in `Trace.extra` so a file can
be read, annotated and written back without losing anything.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

REQUIRED_KEYS = ("input", "steps", "mistake_index")
OPTIONAL_KEYS = ("answer", "target")  # null when absent: locating needs neither


@dataclass(frozen=True)
class Trace:
    task: str
    id: str
    input: str
    steps: tuple[str, ...]
    answer: str | None
    target: str | None  # None: the source gave none (locating needs none; scoring does)
    mistake_index: int | None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.mistake_index is not None and not 0 <= self.mistake_index < len(self.steps):
            raise ValueError(f"{self.id}: mistake_index {self.mistake_index} outside 0..{len(self.steps) - 1}")

    @property
    def has_mistake(self) -> bool:
        return self.mistake_index is not None

    def replace(self, **changes: Any) -> "Trace":
        return dataclasses.replace(self, **changes)

    def to_record(self) -> dict[str, Any]:
        """The dataset's own shape plus `task`, `id` and every extra key."""
        record = {
            "task": self.task,
            "id": self.id,
            "input": self.input,
            "steps": list(self.steps),
            "answer": self.answer,
            "target": self.target,
            "mistake_index": self.mistake_index,
        }
        record.update(self.extra)
        return record


@dataclass(frozen=True)
class ValidationIssue:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field '{self.field}': {self.message}"


class DataError(ValueError):
    """Raised when a file has problems; carries every issue found, not just the first."""

    def __init__(self, issues: list[ValidationIssue]):
        self.issues = issues
        shown = "\n".join(str(i) for i in issues[:20])
        more = f"\n... and {len(issues) - 20} more" if len(issues) > 20 else ""
        super().__init__(f"{len(issues)} problem(s):\n{shown}{more}")


def _check_types(obj: dict[str, Any], where: tuple[str, int]) -> list[ValidationIssue]:
    file, line = where
    issues = []

    def bad(key: str, message: str) -> None:
        issues.append(ValidationIssue(file, line, key, message))

    for key in REQUIRED_KEYS:
        if key not in obj:
            bad(key, "missing key")
    if "input" in obj and not isinstance(obj["input"], str):
        bad("input", f"expected a string, got {type(obj['input']).__name__}")
    if obj.get("target") is not None and not isinstance(obj["target"], str):
        bad("target", f"expected a string or null, got {type(obj['target']).__name__}")
    # The release has one null answer (a trace that never said "the answer is"): allowed, scored invalid.
    if "answer" in obj and obj["answer"] is not None and not isinstance(obj["answer"], str):
        bad("answer", f"expected a string or null, got {type(obj['answer']).__name__}")
    steps = obj.get("steps")
    if "steps" in obj:
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            bad("steps", "expected a list of strings")
            steps = None
        elif not steps:
            bad("steps", "empty: a trace needs at least one step")
            steps = None
    if "mistake_index" in obj:
        mi = obj["mistake_index"]
        if mi is not None and (isinstance(mi, bool) or not isinstance(mi, int)):
            bad("mistake_index", f"expected an integer or null, got {json.dumps(mi)}")
        elif mi is not None and steps is not None and not 0 <= mi < len(steps):
            bad("mistake_index", f"{mi} is out of range for {len(steps)} steps (0-based, 0..{len(steps) - 1})")
    if "id" in obj and not isinstance(obj["id"], (str, int)):
        bad("id", "expected a string or integer")
    return issues


def parse_record(
    obj: Any, *, file: str, line: int, default_task: str | None, known_tasks: frozenset[str] | set[str] | None
) -> tuple[Trace | None, list[ValidationIssue]]:
    """One JSON value -> a Trace, or the list of everything wrong with it. known_tasks None: any task name."""
    if not isinstance(obj, dict):
        return None, [ValidationIssue(file, line, "<record>", f"expected a JSON object, got {type(obj).__name__}")]
    issues = _check_types(obj, (file, line))
    task = obj.get("task", default_task)
    if task is None:
        issues.append(ValidationIssue(file, line, "task", "missing key (and the file name names no task)"))
    elif not isinstance(task, str) or not task.strip():
        issues.append(ValidationIssue(file, line, "task", f"expected a task name, got {task!r}"))
    elif known_tasks is not None and task not in known_tasks:
        issues.append(ValidationIssue(file, line, "task", f"unknown task {task!r}; known: {', '.join(sorted(known_tasks))}"))
    if issues:
        return None, issues
    extra = {k: v for k, v in obj.items() if k not in REQUIRED_KEYS + OPTIONAL_KEYS and k not in ("task", "id")}
    trace = Trace(
        task=task,
        id=str(obj.get("id", f"{task}-{line - 1:04d}")),
        input=obj["input"],
        steps=tuple(obj["steps"]),
        answer=obj.get("answer"),
        target=obj.get("target"),
        mistake_index=obj["mistake_index"],
        extra=extra,
    )
    return trace, []


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any | ValidationIssue]]:
    """(line number, parsed value or an issue) for each non-blank line; never raises on bad JSON."""
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as e:
                yield number, ValidationIssue(str(path), number, "<json>", f"not valid JSON: {e.msg} at column {e.colno}")


def read_traces(
    path: Path, *, default_task: str | None, known_tasks: frozenset[str] | set[str] | None
) -> tuple[list[Trace], list[ValidationIssue]]:
    """All good traces of a file and all issues found; the caller decides whether issues are fatal."""
    traces, issues = [], []
    for number, value in iter_jsonl(path):
        if isinstance(value, ValidationIssue):
            issues.append(value)
            continue
        trace, found = parse_record(value, file=str(path), line=number, default_task=default_task, known_tasks=known_tasks)
        issues.extend(found)
        if trace is not None:
            traces.append(trace)
    seen: dict[str, int] = {}
    for t in traces:
        seen[t.id] = seen.get(t.id, 0) + 1
    for tid, count in seen.items():
        if count > 1:
            issues.append(ValidationIssue(str(path), 0, "id", f"id {tid!r} appears {count} times"))
    return traces, issues

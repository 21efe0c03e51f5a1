"""Questions to answer (task, id, input, target): from the dataset or from a JSONL file of your own.

One definition shared by `bbm generate`, `bbm pipeline` and `bbm compare`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TypeVar

from .records import DataError, Trace, ValidationIssue, iter_jsonl
from .tasks import TASKS, get_task

T = TypeVar("T")


@dataclass(frozen=True)
class Question:
    task: str
    id: str
    input: str
    target: str

    def __post_init__(self) -> None:
        get_task(self.task)

    @classmethod
    def from_trace(cls, t: Trace) -> "Question":
        return cls(t.task, t.id, t.input, t.target)


def first_per_task(items: Sequence[T], tasks: Sequence[str] = (), limit: int | None = None) -> list[T]:
    """The items (questions or traces: anything with .task) of the given tasks (all when empty), at
    most the first `limit` of each task in order: what --task and --limit mean in every command."""
    per_task: dict[str, int] = {}
    out = []
    for item in items:
        if (tasks and item.task not in tasks) or (limit is not None and per_task.get(item.task, 0) >= limit):
            continue
        per_task[item.task] = per_task.get(item.task, 0) + 1
        out.append(item)
    return out


def questions_from_traces(traces: Sequence[Trace], limit: int | None = None) -> list[Question]:
    """One question per distinct (task, input), in file order (the id of its first trace); at most
    `limit` per task. The dataset asks some questions several times (one trace each)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for t in traces:
        if (t.task, t.input) not in seen:
            seen.add((t.task, t.input))
            out.append(Question.from_trace(t))
    return first_per_task(out, (), limit)


def read_questions(path: str | Path) -> list[Question]:
    """Questions from JSONL: task, input, target (id optional: task-NNNN, the 0-based line).
    Every problem is reported with file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    out, issues = [], []
    for line, obj in iter_jsonl(path):
        if isinstance(obj, ValidationIssue):
            issues.append(obj)
            continue
        if not isinstance(obj, dict):
            issues.append(ValidationIssue(str(path), line, "<record>", "expected a JSON object"))
            continue
        bad = [k for k in ("task", "input", "target") if not isinstance(obj.get(k), str)]
        for k in bad:
            issues.append(ValidationIssue(str(path), line, k, "missing key" if k not in obj else "expected a string"))
        if "task" not in bad and obj["task"] not in TASKS:
            issues.append(ValidationIssue(str(path), line, "task", f"unknown task {obj['task']!r}; known: {', '.join(TASKS)}"))
        elif not bad:
            out.append(Question(obj["task"], str(obj.get("id", f"{obj['task']}-{line - 1:04d}")), obj["input"], obj["target"]))
    ids = [q.id for q in out]
    issues += [ValidationIssue(str(path), 0, "id", f"id {i!r} appears {ids.count(i)} times")
               for i in sorted(set(ids)) if ids.count(i) > 1]
    if issues:
        raise DataError(issues)
    return out

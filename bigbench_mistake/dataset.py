"""Loading BIG-Bench Mistake (shipped copy, a folder of your own, or any JSONL in its shape)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from .records import DataError, Trace, read_traces
from .tasks import TASKS

KNOWN_TASKS = frozenset(TASKS)


def shipped_data_dir() -> Path:
    return Path(str(resources.files("bigbench_mistake") / "data"))


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """The given folder, or the copy shipped in the package. (The CLI maps BBM_DATA_DIR here.)"""
    path = Path(data_dir) if data_dir else shipped_data_dir()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {path} does not exist")
    return path


def task_from_filename(path: Path) -> str | None:
    return path.stem if path.stem in KNOWN_TASKS else None


def load_file(path: str | Path, task: str | None = None, any_task: bool = True) -> list[Trace]:
    """Every trace of one JSONL file; raises DataError listing every problem (file, line, field).
    A user's file may hold traces of any task (any_task); the dataset's own files hold the five."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    traces, issues = read_traces(path, default_task=task or task_from_filename(path),
                                 known_tasks=None if any_task else KNOWN_TASKS)
    if issues:
        raise DataError(issues)
    return traces


def load_task(task: str, data_dir: str | Path | None = None) -> list[Trace]:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return load_file(resolve_data_dir(data_dir) / f"{task}.jsonl", task, any_task=False)


def load_all(data_dir: str | Path | None = None, tasks: Sequence[str] | None = None) -> list[Trace]:
    """All traces of the given tasks (default: the five) in task order, then file order."""
    out: list[Trace] = []
    for task in tasks or list(TASKS):
        out.extend(load_task(task, data_dir))
    return out


def load_traces(paths: Iterable[str | Path] | None, data_dir: str | Path | None = None,
                tasks: Sequence[str] | None = None) -> list[Trace]:
    """User files when given, else the dataset; optionally filtered to some tasks."""
    paths = list(paths or [])
    if not paths:
        return load_all(data_dir, tasks)
    out = [t for p in paths for t in load_file(p)]
    return [t for t in out if not tasks or t.task in tasks]


def group_key(trace: Trace) -> str:
    """Questions that must stay in one split/fold: logical-deduction puzzles share their statements
    and differ only in the question asked, so the key is the text before the question."""
    if trace.task == "logical_deduction":
        return trace.task + "::" + trace.input.split("\nQ:", 1)[0]
    return trace.task + "::" + trace.input


def to_hf_dataset(traces: Sequence[Trace]):
    """A `datasets.Dataset` with the dataset's columns plus task, id and group."""
    import datasets

    return datasets.Dataset.from_dict(
        {
            "task": [t.task for t in traces],
            "id": [t.id for t in traces],
            "input": [t.input for t in traces],
            "steps": [list(t.steps) for t in traces],
            "answer": [t.answer for t in traces],
            "target": [t.target for t in traces],
            "mistake_index": [t.mistake_index for t in traces],
            "group": [group_key(t) for t in traces],
        },
        features=datasets.Features(
            {
                "task": datasets.Value("string"),
                "id": datasets.Value("string"),
                "input": datasets.Value("string"),
                "steps": datasets.Sequence(datasets.Value("string")),
                "answer": datasets.Value("string"),
                "target": datasets.Value("string"),
                "mistake_index": datasets.Value("int32"),
                "group": datasets.Value("string"),
            }
        ),
    )


def to_hf_dataset_dict(traces: Sequence[Trace]):
    """One split per task."""
    import datasets

    by_task: dict[str, list[Trace]] = {}
    for t in traces:
        by_task.setdefault(t.task, []).append(t)
    return datasets.DatasetDict({task: to_hf_dataset(ts) for task, ts in by_task.items()})

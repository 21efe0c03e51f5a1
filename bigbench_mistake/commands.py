"""What the bbm data commands do, as functions that return what they print (cli.py only declares them)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def output_file(out: Path) -> Path:
    """Check that `out` can be written as a file (not a folder), before anything costly."""
    if Path(out).is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. {Path(out) / 'out.jsonl'}")
    return Path(out)


def validate(paths: Sequence[Path], task: str | None) -> tuple[int, list[str]]:
    """(valid records, one message per problem: file:line: field: message)."""
    from bigbench_mistake.dataset import task_from_filename
    from bigbench_mistake.records import read_traces

    n_ok, problems = 0, []
    for path in paths:
        if not Path(path).is_file():
            problems.append(f"{path}: no such file")
            continue
        traces, issues = read_traces(path, default_task=task or task_from_filename(path), known_tasks=None)
        problems += [str(i) for i in issues]
        n_ok += len(traces)
    return n_ok, problems


def score(predictions: Path, gold: Sequence[Path] | None, data_dir: Path | None) -> dict[str, Any]:
    from bigbench_mistake.dataset import load_traces
    from bigbench_mistake.metrics import baselines, mistake_finding_scores
    from bigbench_mistake.predictions import read_predictions

    traces = load_traces(gold, data_dir)
    preds, key = read_predictions(predictions, traces)
    scored = [t for t in traces if t.id in preds]
    return {"predictions_file": str(predictions), "key": key,
            "scores": mistake_finding_scores(traces, preds), "baselines": baselines(scored)}


def export(out: Path, format: str, test_fraction: float, seed: int, tasks: Sequence[str],
           data_dir: Path | None) -> str:
    from bigbench_mistake.dataset import load_all
    from bigbench_mistake.export import hf_split, stepwise_example

    if format not in ("trl", "hf"):
        raise ValueError(f"unknown --format {format!r}; use trl or hf")
    if format == "trl":
        output_file(out)
    elif out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; --format hf writes a folder")
    traces = load_all(data_dir, tasks)
    if format == "trl":
        import jsonlines

        out.parent.mkdir(parents=True, exist_ok=True)
        with jsonlines.open(out, "w") as w:
            for t in traces:
                w.write(stepwise_example(t))
        return f"wrote {len(traces)} stepwise examples to {out}"
    dd = hf_split(traces, test_fraction, seed)
    dd.save_to_disk(str(out))
    return f"wrote DatasetDict train={len(dd['train'])} test={len(dd['test'])} (seed {seed}) to {out}"


def fresh(out: Path, task: str, n: int, seed: int, data_dir: Path | None) -> str:
    """bbm data fresh: new questions of a task whose targets can be computed (bigbench_mistake/fresh.py)."""
    import json

    from bigbench_mistake.fresh import fresh_questions

    output_file(out)
    questions = fresh_questions(task, n, seed, data_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({"task": q.task, "id": q.id, "input": q.input, "target": q.target},
                                      ensure_ascii=False) + "\n" for q in questions), encoding="utf-8")
    return f"wrote {len(questions)} new {task} questions (seed {seed}) to {out}"


def plant(out: Path, gsm8k: Path, rate: float, seed: int) -> str:
    """bbm data plant: train.jsonl and heldout.jsonl (no question in both) of GSM8K traces, a `rate` share
    with one planted, labelled mistake (bigbench_mistake/gsm8k.py)."""
    import json
    from collections import Counter

    from bigbench_mistake.gsm8k import planted_traces

    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"--mistake-rate must be in [0, 1], got {rate}")
    if not Path(gsm8k).is_file():
        raise FileNotFoundError(f"{gsm8k}: no such file")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; it names a folder")
    records = planted_traces(gsm8k, rate, seed)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "heldout"):
        rows = [r for r in records if r["split"] == split]
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                            encoding="utf-8")
        counts[split] = (len(rows), dict(Counter(r["planted"] or "none" for r in rows)))
    return "\n".join(f"{split}: {n} traces {kinds}" for split, (n, kinds) in counts.items()) + f" -> {out}"

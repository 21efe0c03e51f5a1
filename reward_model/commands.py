"""What `bbm rm train|eval|locate` do, as functions returning plain dicts (the CLI only prints them)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from .classifier import TrainConfig, train
from .registry import LocatorOptions, make_locator


def train_config(features: str, seed: int, drop: Sequence[str] = (), text: bool = True) -> TrainConfig:
    return TrainConfig(features=features, seed=seed, drop_groups=tuple(drop), text=text)


def train_command(out: Path, family: str, features: str, seed: int, drop: Sequence[str], base: str, epochs: int,
                  device: str, data_dir: Path | None, tasks: Sequence[str] | None,
                  extra_traces: Sequence[Path] = ()) -> dict[str, Any]:
    """bbm rm train: the CPU classifier (logreg) or a fine-tuned transformer, into `out`."""
    if family == "transformer":
        return train_transformer_to_dir(out, base, epochs, device, seed, data_dir=data_dir, tasks=tasks)
    if family != "logreg":
        raise ValueError(f"unknown --family {family!r}; use logreg or transformer")
    return train_to_dir(out, train_config(features, seed, drop), data_dir, tasks, extra_traces)


def train_to_dir(out: str | Path, config: TrainConfig, data_dir: str | Path | None = None,
                 tasks: Sequence[str] | None = None, extra_traces: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Train on the dataset (its `tasks`, all by default) plus labelled traces of any task from files."""
    from bigbench_mistake.dataset import load_all, load_file

    extra = [t for p in extra_traces for t in load_file(p)]
    traces = load_all(data_dir, tasks) + extra
    t0 = time.perf_counter()
    model = train(traces, config)
    seconds = round(time.perf_counter() - t0, 2)
    model.save(out)
    return {"model_dir": str(out), "feature_set": config.describe(), "threshold": model.threshold,
            "n_traces": len(traces), "n_extra_traces": len(extra), "n_train_steps": model.info["n_train_steps"], "vocabulary": len(model.vocabulary),
            "numeric_features": len(model.numeric_names), "seed": config.seed, "train_seconds": seconds}


def train_transformer_to_dir(out: str | Path, base: str, epochs: int = 1, device: str = "cpu", seed: int = 0,
                             max_length: int = 256, batch_size: int = 16, data_dir: str | Path | None = None,
                             tasks: Sequence[str] | None = None) -> dict[str, Any]:
    """Fine-tune a transformer step classifier (meant for a GPU) and save it; `base` may be 'minilm'."""
    from bigbench_mistake.dataset import load_all

    from .transformer import TransformerTrainConfig, train_transformer

    cfg = TransformerTrainConfig(model=base, epochs=epochs, device=device, seed=seed, max_length=max_length,
                                 batch_size=batch_size)
    traces = load_all(data_dir, tasks)
    clf = train_transformer(traces, cfg)
    clf.save(out)
    return {"model_dir": str(out), "family": "transformer", "base": base, "threshold": clf.threshold,
            "feature_set": "transformer (question + previous steps + step)", **clf.info}


def eval_report(protocol: str, config: TrainConfig, folds: int = 5, data_dir: str | Path | None = None,
                tasks: Sequence[str] | None = None, ablation: bool = False,
                extra_traces: Sequence[str | Path] = (), predictions_out: Path | None = None) -> dict[str, Any]:
    """bbm rm eval. `predictions_out`: also write each trace's out-of-split prediction as JSONL (id, task,
    predicted_mistake_index), which `bbm data score` reads -- so the trained locator can be scored on
    exactly the traces another locator or finder saw, never on traces it was trained on."""
    from bigbench_mistake.commands import output_file
    from bigbench_mistake.dataset import load_all, load_file

    from . import evaluation

    if ablation and (protocol != "cv" or extra_traces or predictions_out):
        raise ValueError("--ablation runs with --protocol cv, no --extra-traces and no --predictions-out")
    if predictions_out is not None:
        output_file(predictions_out)
    extra = [t for p in extra_traces for t in load_file(p)]  # read (and checked) before any training
    traces = load_all(data_dir, tasks)
    if ablation:
        return evaluation.ablation(traces, config, folds)
    report = evaluation.evaluate(traces, protocol, config, folds, extra=extra)
    preds = report.pop("predictions")
    if predictions_out is not None:
        from backtrack.lm.cache_files import write_text_atomic

        Path(predictions_out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(predictions_out, "".join(
            json.dumps({"id": t.id, "task": t.task, "predicted_mistake_index": preds[t.id]}) + "\n" for t in traces))
        report["predictions_file"] = str(predictions_out)
    return report


def locate_command(traces: Path, out: Path, model: Path | None, locator: str | None, threshold: float | None,
                   seed: int, data_dir: Path | None, flag_rate: float | None, calibrate: Path | None,
                   cache_dir: Path | None = None) -> dict[str, Any]:
    """bbm rm locate: exactly one of a trained model folder or a locator spec."""
    if (model is None) == (locator is None):
        raise ValueError("give exactly one of --model DIR or --locator SPEC")
    spec = f"trained:{model}" if model is not None else locator
    return locate_file(traces, out, spec, threshold, seed, data_dir, flag_rate, calibrate, cache_dir)


def locate_file(traces_path: str | Path, out: str | Path, spec: str, threshold: float | None = None,
                seed: int = 0, data_dir: str | Path | None = None, flag_rate: float | None = None,
                calibrate: str | Path | None = None, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Score every trace of a file in the dataset's shape and write it back with
    `predicted_mistake_index` and `step_scores`; score against the file's own labels when it has any.
    The decision for a new source: --threshold, or --flag-rate (the share to flag), or --calibrate FILE
    (labelled traces of that source; reward_model/calibration.py)."""
    import jsonlines

    from bigbench_mistake.dataset import load_file
    from bigbench_mistake.metrics import mistake_finding_scores

    from .locator import decision_threshold, first_mistake

    from bigbench_mistake.commands import output_file

    output_file(Path(out))
    from .registry import check_locator_spec

    check_locator_spec(spec)
    traces = load_file(traces_path)
    if not traces:
        raise ValueError(f"{traces_path}: no traces to locate (the file is empty)")
    locator = make_locator(spec, LocatorOptions(seed=seed, data_dir=data_dir, cache_dir=cache_dir))
    if sum(x is not None for x in (threshold, flag_rate, calibrate)) > 1:
        raise ValueError("give at most one of --threshold, --flag-rate and --calibrate")
    sample = load_file(calibrate) if calibrate else []
    th = decision_threshold(locator, threshold)
    t0 = time.perf_counter()
    scores = locator.scores(traces)
    seconds = round(time.perf_counter() - t0, 2)
    from .calibration import flag_rate_threshold, labelled_threshold

    if flag_rate is not None:
        th = flag_rate_threshold(scores, flag_rate)
    elif sample:
        th = labelled_threshold(sample, locator.scores(sample))
    preds = {t.id: first_mistake(s, th) for t, s in zip(traces, scores)}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with jsonlines.open(out, "w") as w:
        for t, s in zip(traces, scores):
            w.write({**t.to_record(), "predicted_mistake_index": preds[t.id], "step_scores": [round(x, 6) for x in s],
                     "locator": locator.name, "threshold": th})
    model_info = {}
    if spec.startswith("trained:"):
        meta = json.loads((Path(spec.split(":", 1)[1]) / "config.json").read_text(encoding="utf-8"))
        model_info = {"feature_set": meta.get("feature_set"), "kind": meta.get("kind")}
    from .features.task_specific import checked_tasks

    checks = {task: "task-specific and generic" if task in checked_tasks() else "generic"
              for task in sorted({t.task for t in traces})}
    return {"traces_file": str(traces_path), "out": str(out), "locator": locator.name, "threshold": th,
            "checks_applied": checks,
            "n_traces": len(traces), "n_predicted_mistake": sum(p is not None for p in preds.values()),
            "seconds": seconds, **model_info, "scores_against_file_labels": mistake_finding_scores(traces, preds)}


def label_file(traces_path: str | Path, out: str | Path, min_agreement: float = 0.9,
               data_dir: str | Path | None = None) -> dict[str, Any]:
    """bbm rm label: first-mistake labels from the checks for the traces of a file (e.g. a model's own,
    from bbm generate), on the tasks where the checks agree with the dataset's human labels
    (reward_model/labelling.py); the labelled traces go to `out`, ready for --extra-traces."""
    from backtrack.lm.cache_files import write_text_atomic
    from bigbench_mistake.commands import output_file
    from bigbench_mistake.dataset import load_all, load_file
    from bigbench_mistake.tasks import TASKS

    from .labelling import label_with_checks

    output_file(Path(out))
    traces = load_file(traces_path)
    tasks = sorted({t.task for t in traces} & set(TASKS))
    labelled, report = label_with_checks(traces, load_all(data_dir, tasks) if tasks else [], min_agreement)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, "".join(json.dumps(t.to_record(), ensure_ascii=False) + "\n" for t in labelled))
    return {"traces_file": str(traces_path), "out": str(out), **report}

"""Evaluation protocols for trained locators: puzzle-aware k-fold cross-validation and
leave-one-task-out (the paper's Table 7). Every number comes from `mistake_finding_scores`; each
report carries the feature set, the checks alone (no learning), the trivial baselines and the
paper's reference numbers."""
from __future__ import annotations

import time
from dataclasses import asdict, replace
from typing import Any, Sequence

from bigbench_mistake.metrics import PAPER_TABLE4_GPT4_OVERALL, PAPER_TABLE7_HELD_OUT_MEAN, baselines, \
    mistake_finding_scores
from bigbench_mistake.records import Trace

from .classifier import TraceFeatures, TrainConfig, checks_predictions, extract, group_folds, train
from .features import ALL_GROUPS, pooled
from .locator import first_mistake

PROTOCOLS = ("cv", "leave-one-task-out")
REFERENCE = {
    "paper_gpt4_prompted_overall": PAPER_TABLE4_GPT4_OVERALL,
    "paper_small_finetuned_held_out_task_mean": PAPER_TABLE7_HELD_OUT_MEAN,
    "paper_backtracking_pays_from": "60-70% locator accuracy",
}


def only_groups(feats: Sequence[TraceFeatures], groups: Sequence[str]) -> list[TraceFeatures]:
    """The same features restricted to some groups (so one extraction serves every ablation)."""
    keep = set(groups)
    return [TraceFeatures(f.texts, [pooled({k: v for k, v in d.items() if k.split(".", 1)[0] in keep}) for d in f.numeric])
            for f in feats]


def splits(traces: Sequence[Trace], protocol: str, folds: int, seed: int) -> list[tuple[str, list[int], list[int]]]:
    """(name, train indices, test indices) per split."""
    if protocol == "cv":
        fold = group_folds(traces, folds, seed)
        return [(f"fold{f}", [i for i, x in enumerate(fold) if x != f], [i for i, x in enumerate(fold) if x == f])
                for f in range(folds)]
    if protocol == "leave-one-task-out":
        tasks = list(dict.fromkeys(t.task for t in traces))
        if len(tasks) < 2:
            raise ValueError("leave-one-task-out needs traces of at least two tasks")
        return [(task, [i for i, t in enumerate(traces) if t.task != task], [i for i, t in enumerate(traces) if t.task == task])
                for task in tasks]
    raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def evaluate(traces: Sequence[Trace], protocol: str = "cv", config: TrainConfig = TrainConfig(), folds: int = 5,
             all_feats: Sequence[TraceFeatures] | None = None, extra: Sequence[Trace] = ()) -> dict[str, Any]:
    """Out-of-split predictions for every trace, scored, next to the checks alone and the baselines.
    `extra`: labelled traces added to the training part of every split and never tested (e.g. planted
    GSM8K traces), so a protocol measures what they add on the dataset's own splits."""
    t0 = time.perf_counter()
    if all_feats is None:
        all_feats = extract(traces, ALL_GROUPS)
    feats = only_groups(all_feats, config.groups)
    extra_feats = only_groups(extract(extra, ALL_GROUPS), config.groups) if extra else []
    preds: dict[str, int | None] = {}
    checks: dict[str, int | None] = {}
    per_split = []
    for name, tr, te in splits(traces, protocol, folds, config.seed):
        model = train([traces[i] for i in tr] + list(extra), config, feats=[feats[i] for i in tr] + extra_feats)
        test = [traces[i] for i in te]
        for t, s in zip(test, model.step_scores([t.task for t in test], [feats[i] for i in te])):
            preds[t.id] = first_mistake(s, model.threshold)
        checks.update(checks_predictions(test, [feats[i] for i in te]))
        per_split.append({"split": name, "n_train": len(tr) + len(extra), "n_test": len(te),
                          "threshold": model.threshold})
    return {
        "protocol": protocol,
        "feature_set": config.describe(),
        "config": asdict(config),
        "n_extra_training_traces": len(extra),
        "folds": folds if protocol == "cv" else None,
        "scores": mistake_finding_scores(traces, preds),
        "checks_alone": mistake_finding_scores(traces, checks),
        "baselines": baselines(traces),
        "reference": REFERENCE,
        "splits": per_split,
        "seconds": round(time.perf_counter() - t0, 1),
        "predictions": preds,
    }


def ablation(traces: Sequence[Trace], config: TrainConfig = TrainConfig(), folds: int = 5) -> dict[str, Any]:
    """CV accuracy with each feature group left out (and with the bag of words alone), one extraction."""
    all_feats = extract(traces, ALL_GROUPS)
    variants = {"all groups": config}
    for g in config.groups:
        if g == "text":
            variants["without bag of words"] = replace(config, text=False)
        else:
            variants[f"without {g}"] = replace(config, drop_groups=(*config.drop_groups, g))
    variants["bag of words + text only"] = replace(config, drop_groups=tuple(g for g in config.groups if g != "text"))
    rows = {}
    for name, cfg in variants.items():
        r = evaluate(traces, "cv", cfg, folds, all_feats)
        rows[name] = {"feature_set": r["feature_set"], "overall": r["scores"]["overall"]["accuracy_overall"],
                      "tasks": {k: v["accuracy_overall"] for k, v in r["scores"]["tasks"].items()},
                      "checks_alone": r["checks_alone"]["overall"]["accuracy_overall"]}
    return {"protocol": "cv", "folds": folds, "base_feature_set": config.describe(), "rows": rows}

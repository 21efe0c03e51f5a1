"""First-mistake labels for traces nobody annotated (a model's own, from `bbm generate`), from the
hand-written checks, on the tasks where the checks are close to exact.

How exact the checks are is measured, not assumed: on the dataset's own traces of a task, the share
whose human first-mistake label the checks name exactly (the first step where a check fires, or no
mistake). Only tasks at or above `min_agreement` are labelled (with BIG-Bench Mistake: dyck languages
98.9% and multistep arithmetic 91.0%; word sorting 84.0%, tracking 81.0%, logical deduction 80.0% fall
short of 90%), and within them a trace is labelled only where its answer does not contradict the
checks:

- a check fires at step j: the label is j (the answer may still be right, by luck);
- no check fires and the answer is right: no mistake;
- no check fires and the answer is wrong, missing, or there is no target: the checks missed the
  mistake, so the trace is left out (counted, never guessed).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from bigbench_mistake.metrics import mistake_finding_scores
from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import task_spec

from .checks import ChecksLocator
from .locator import first_mistake

LABEL_SOURCE = "checks:all"


def checks_agreement(reference: Sequence[Trace]) -> dict[str, tuple[float, int]]:
    """Per task of `reference` (human-labelled traces): (share labelled exactly by the checks, traces),
    the exact first-mistake accuracy that `bbm rm eval` reports for the checks alone."""
    preds = {t.id: first_mistake(s) for t, s in zip(reference, ChecksLocator("all").scores(reference))}
    return {task: (b["accuracy_overall"] / 100, b["n"])
            for task, b in mistake_finding_scores(reference, preds)["tasks"].items()}


def _right(t: Trace) -> bool:
    return t.target is not None and bool(task_spec(t.task).score(t.steps, t.target).correct)


def label_with_checks(traces: Sequence[Trace], reference: Sequence[Trace],
                      min_agreement: float = 0.9) -> tuple[list[Trace], dict[str, Any]]:
    """The traces that can be labelled (mistake_index set, `label_source` and `checks_agreement` added)
    and per-task counts of what happened to every trace."""
    if not 0.0 < min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be in (0, 1], got {min_agreement}")
    agreement = checks_agreement([r for r in reference if r.task in {t.task for t in traces}])
    exact = {task for task, (share, _) in agreement.items() if share >= min_agreement}
    todo = [t for t in traces if t.task in exact]
    firsts = dict(zip((t.id for t in todo), (first_mistake(s) for s in ChecksLocator("all").scores(todo))))
    out, counts = [], {}
    for t in traces:
        c = counts.setdefault(t.task, Counter())
        if t.task not in agreement:
            c["skipped: no human labels to measure the checks on"] += 1
            continue
        if t.task not in exact:
            c[f"skipped: checks agree with {agreement[t.task][0]:.1%} of the human labels"] += 1
            continue
        j, right = firsts[t.id], _right(t)
        if j is None and not right:
            c["skipped: no check fires but the answer is not right"] += 1
            continue
        c["mistake at the first step a check flags" + (" (answer right)" if right else "") if j is not None
          else "no mistake (no check fires, answer right)"] += 1
        extra = {**t.extra, "label_source": LABEL_SOURCE, "checks_agreement": round(agreement[t.task][0], 4)}
        out.append(t.replace(mistake_index=j, extra=extra))
    report = {"n_traces": len(traces), "n_labelled": len(out), "min_agreement": min_agreement,
              "checks_agreement": {task: {"share": round(s, 4), "traces": n} for task, (s, n) in sorted(agreement.items())},
              "per_task": {task: dict(c) for task, c in sorted(counts.items())}}
    return out, report

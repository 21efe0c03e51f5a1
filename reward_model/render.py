"""What the bbm rm commands print."""
from __future__ import annotations

from typing import Any

from bigbench_mistake.render import table


def render_rm_train(r: dict) -> str:
    return "\n".join(f"{k}: {v}" for k, v in r.items())


def render_rm_eval(r: dict) -> str:
    if "rows" in r:
        tasks = list(next(iter(r["rows"].values()))["tasks"])
        rows = [[name, v["overall"], *(v["tasks"][t] for t in tasks), v["checks_alone"]] for name, v in r["rows"].items()]
        return f"ablation, {r['protocol']} ({r['folds']} folds), base: {r['base_feature_set']}\n" + \
            table(rows, ["variant", "overall %", *tasks, "checks alone %"])

    def rows_of(name: str, block: dict) -> list[list[Any]]:
        o = block["overall"]
        out = [[name, "all", o["accuracy_mistake"], o["accuracy_no_mistake"], o["accuracy_overall"], o.get("weighted_f1")]]
        out += [[name, t, v["accuracy_mistake"], v["accuracy_no_mistake"], v["accuracy_overall"], v.get("weighted_f1")]
                for t, v in block["tasks"].items()]
        return out

    rows = rows_of("trained", r["scores"]) + rows_of("checks alone", r["checks_alone"])
    for name, block in r["baselines"].items():
        rows += rows_of(name, block)
    extra = f", + {r['n_extra_training_traces']} extra training traces" if r.get("n_extra_training_traces") else ""
    head = f"protocol {r['protocol']}, {r['feature_set']}{extra}, {r['seconds']} s; mean over tasks (trained): " \
           f"{r['scores']['mean_task_accuracy_overall']}\nreference: {r['reference']}\n"
    if r.get("predictions_file"):
        head += f"out-of-split predictions written to {r['predictions_file']} (score them: bbm data score FILE)\n"
    return head + table(rows, ["locator", "task", "acc mistake %", "acc no-mistake %", "acc overall %", "weighted F1"])


def _pct(v: float | None) -> str:
    return "n/a (no such traces)" if v is None else f"{v}%"


def render_rm_locate(r: dict) -> str:
    s = r["scores_against_file_labels"]["overall"]
    return (f"{r['n_traces']} traces from {r['traces_file']} -> {r['out']} ({r['locator']}, threshold {r['threshold']}, "
            f"{r.get('feature_set') or ''}) in {r['seconds']} s; {r['n_predicted_mistake']} with a mistake found.\n"
            f"against the file's labels: overall {_pct(s['accuracy_overall'])}, mistake {_pct(s['accuracy_mistake'])}, "
            f"no mistake {_pct(s['accuracy_no_mistake'])}, F1 {s.get('f1')}\nchecks applied: "
            + ", ".join(f"{task}: {how}" for task, how in r.get("checks_applied", {}).items()))


def render_rm_label(r: dict) -> str:
    lines = [f"{r['n_labelled']} of {r['n_traces']} traces from {r['traces_file']} labelled by the checks -> {r['out']}",
             f"checks agree exactly with the human labels of the dataset (labelled from {r['min_agreement']:.0%}):"]
    lines += [f"  {task}: {a['share']:.1%} of {a['traces']} traces" for task, a in r["checks_agreement"].items()]
    for task, counts in r["per_task"].items():
        lines.append(f"{task}: " + "; ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    return "\n".join(lines)

"""`bbm report`: Markdown from run directories, several runs side by side.

Each run kind (config.json's "kind") names its renderer in the registry (backtrack/runs/kinds.py);
runs of the same kind are put in one table with a column group per run. Plots the runs wrote (*.png) are linked.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from backtrack.runs.compute import matched_k
from backtrack.runs.rundir import read_run_file


def load_run(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    for name in ("config.json", "results.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: no {name} (not a finished run directory)")
    return {"path": path, "config": read_run_file(path / "config.json"),
            "results": read_run_file(path / "results.json")}


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        return "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def run_label(run: dict[str, Any]) -> str:
    c = run["config"]
    return f"{run['path'].name} ({c.get('locator') or c.get('kind')})"


def combine_blocks(blocks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One Table 6 block over several tasks' blocks (counts added, rates recomputed from them)."""
    n_right = sum(b["n_originally_correct"] for b in blocks)
    n_wrong = sum(b["n_originally_wrong"] for b in blocks)
    # back to counts (the rates were rounded to 2 decimals; the counts they came from are integers)
    kept_right = sum(round(b["n_originally_correct"] * (1 + b["delta_acc_correct"] / 100)) for b in blocks if b["n_originally_correct"])
    fixed_wrong = sum(round(b["n_originally_wrong"] * b["delta_acc_wrong"] / 100) for b in blocks if b["n_originally_wrong"])
    n = n_right + n_wrong
    ended: dict[str, int] = {}
    for b in blocks:
        for reason, k in b.get("backtracked_ended", {}).items():
            ended[reason] = ended.get(reason, 0) + k
    return {"n": n, "n_originally_correct": n_right, "n_originally_wrong": n_wrong,
            "net_change": round(100 * (kept_right + fixed_wrong - n_right) / n, 2) if n else None,
            "backtracked": sum(b.get("backtracked", 0) for b in blocks),
            "invalid_after": sum(b.get("invalid_after", 0) for b in blocks),
            "backtracked_ended": dict(sorted(ended.items())),
            "delta_acc_correct": round(100 * (kept_right - n_right) / n_right, 2) if n_right else None,
            "delta_acc_wrong": round(100 * fixed_wrong / n_wrong, 2) if n_wrong else None,
            "accuracy_before": round(100 * n_right / n, 2) if n else None,
            "accuracy_after": round(100 * (kept_right + fixed_wrong) / n, 2) if n else None,
            "tokens": sum(b["tokens"] for b in blocks), "seconds": round(sum(b["seconds"] for b in blocks), 2)}


def render_backtrack(runs: Sequence[dict[str, Any]]) -> str:
    """Table 6: one column group per locator (and model and settings); runs of one locator on
    different tasks (one run directory per task) fill the same group."""
    def settings(r: dict[str, Any]) -> str:
        c = {k: v for k, v in r["config"].items() if k not in ("tasks", "limit", "traces_files", "shard")}
        return json.dumps(c, sort_keys=True)

    groups: list[dict[str, Any]] = []  # {"settings", "label", "tasks": {task: block}, "runs": [...]}
    for r in runs:
        tasks = r["results"]["tasks"]
        group = next((g for g in groups if g["settings"] == settings(r) and not set(g["tasks"]) & set(tasks)), None)
        if group is None:
            group = {"settings": settings(r), "label": variant_label(r["config"]), "tasks": {},
                     "runs": [], "model": r["config"].get("model")}
            groups.append(group)
        group["tasks"].update(tasks)
        group["runs"].append(r)
    task_names = list(dict.fromkeys(t for g in groups for t in g["tasks"]))
    cols = ("n (✓/✗)", "Δacc✓", "Δacc✗", "net", "acc before→after", "backtracked", "no answer after", "tokens")
    header = ["task"] + [f"{h} [{i + 1}]" for i in range(len(groups)) for h in cols]
    rows = []
    for task in [*task_names, "overall"]:
        row: list[Any] = [task]
        for g in groups:
            b = combine_blocks(list(g["tasks"].values())) if task == "overall" else g["tasks"].get(task)
            if b is None:
                row += [None] * len(cols)
            else:
                row += [f"{b['n']} ({b['n_originally_correct']}/{b['n_originally_wrong']})", b["delta_acc_correct"],
                        b["delta_acc_wrong"], b.get("net_change"), f"{b['accuracy_before']} → {b['accuracy_after']}",
                        b.get("backtracked"), b.get("invalid_after"), b["tokens"]]
        rows.append(row)
    legend = "\n".join(f"- [{i + 1}] locator `{g['label']}`, model `{g['model']}`: "
                       + ", ".join(f"`{r['path']}`" for r in g["runs"]) for i, g in enumerate(groups))
    why = [f"- [{i + 1}] " + "; ".join(f"{t}: {b['backtracked_ended']}" for t, b in g["tasks"].items()
                                      if b.get("backtracked_ended"))
           for i, g in enumerate(groups) if any(b.get("backtracked_ended") for b in g["tasks"].values())]
    return ("## Backtracking (Table 6 analogue)\n\n" + legend + "\n\n" + md_table(header, rows)
            + "\n\nΔacc✓: change in accuracy (points) on traces whose original answer was correct; Δacc✗: on "
              "those that were wrong; net: accuracy after - before. overall: counts added over the tasks shown."
            + ("\n\nHow the backtracked traces ended (answer, loop, step_cap, token_cap, eos, uncorrectable, "
               "rejected):\n" + "\n".join(why) if why else ""))


def variant_label(config: dict[str, Any]) -> str:
    """The locator, and the guards when they are not the paper's (selection logprob, accept always)."""
    bt = config.get("backtrack") or {}
    label = config.get("locator") or "backtrack"
    extras = [f"{k} {bt[k]}" for k, paper in (("selection", "logprob"), ("accept", "always"))
              if bt.get(k, paper) != paper]
    return label + (f" ({', '.join(extras)})" if extras else "")


def render_simulate(runs: Sequence[dict[str, Any]]) -> str:
    parts = ["## Backtracking with a simulated reward model (Figure 2 analogue)"]
    for r in runs:
        res = r["results"]
        blocks = {**res["tasks"], "overall": res["overall"]}
        header = ["RM accuracy"] + [f"{t} Δ✓/Δ✗/net" for t in blocks]
        levels = [row["accuracy_rm"] for row in res["overall"]["levels"]]
        rows = []
        for i, acc in enumerate(levels):
            cells = []
            for b in blocks.values():
                x = b["levels"][i]
                cells.append(f"{x['delta_acc_correct']}/{x['delta_acc_wrong']}/{x['delta_acc_net']}")
            rows.append([f"{acc:.2f}", *cells])
        rows.append(["break-even", *(b["break_even_accuracy_rm"] for b in blocks.values())])
        parts.append(f"`{r['path']}`, model `{r['config'].get('model')}`\n\n" + md_table(header, rows))
        for png in sorted(r["path"].glob("*.png")):
            parts.append(f"![{png.stem}]({png})")
    return "\n\n".join(parts)


def render_generic(runs: Sequence[dict[str, Any]]) -> str:
    parts = []
    for r in runs:
        parts.append(f"## {r['config'].get('kind', 'run')}: `{r['path']}`\n\n```json\n"
                     + json.dumps(r["results"], indent=2)[:20000] + "\n```")
        parts += [f"![{png.stem}]({png})" for png in sorted(r["path"].glob("*.png"))]
    return "\n\n".join(parts)


def render_generate(runs: Sequence[dict[str, Any]]) -> str:
    """Generated traces, one row per run and task (a model name ending in +chat: --prompt-format chat);
    a model's runs over several tasks added up from their records; two models paired."""
    from backtrack.runs.generate import summarise
    from backtrack.runs.rundir import RunDir

    header = ["run", "model", "task", "traces", "accuracy %", "right", "wrong", "no answer", "stop reasons",
              "mean steps", "tokens"]
    rows = []
    by_model: dict[str, list[dict[str, Any]]] = {}  # model -> the records of its runs
    for r in runs:
        res = r["results"]
        blocks = {**res["tasks"], **({"overall": res["overall"]} if len(res["tasks"]) > 1 else {})}
        rows += [[r["path"].name, res.get("model"), task, *_generate_cells(b)] for task, b in blocks.items()]
        by_model.setdefault(res.get("model"), []).append(list(RunDir(r["path"], r["config"]).records()))
    for model, record_lists in by_model.items():  # one model's runs over several tasks (one run directory per task)
        if len(record_lists) > 1:
            rows.append(["all runs", model, "overall",
                         *_generate_cells(summarise([x for rs in record_lists for x in rs])["overall"])])
    paired = _paired_models({m: [x for rs in lists for x in rs] for m, lists in by_model.items()}) \
        if len(by_model) == 2 else ""
    return "## Generated traces\n\n" + md_table(header, rows) + paired


def _paired_models(records: dict[str, list[dict[str, Any]]]) -> str:
    """Two models (or prompt formats) on the same questions: the accuracy difference with its paired 95%
    bootstrap interval over the questions both answered, and the traces each left without an answer."""
    from bigbench_mistake.bootstrap import difference_interval

    (a, ra), (b, rb) = records.items()
    sa, sb = ({(x["task"], x["id"]): x["answer_status"] for x in rs} for rs in (ra, rb))
    shared = sorted(set(sa) & set(sb))
    if not shared:
        return ""
    d = difference_interval([sa[k] == "correct" for k in shared], [sb[k] == "correct" for k in shared])
    lo, hi = d["interval"]
    return (f"\n\nOn the {len(shared)} questions of both: accuracy `{a}` − `{b}` = {d['difference']:+.1f} points, "
            f"95% paired bootstrap interval [{lo:+.1f}, {hi:+.1f}]{' (real)' if d['real'] else ' (includes 0)'}; "
            f"no answer {sum(sa[k] == 'invalid' for k in shared)} against {sum(sb[k] == 'invalid' for k in shared)}.")


def _generate_cells(b: dict[str, Any]) -> list[Any]:
    stops = ", ".join(f"{k} {v}" for k, v in sorted(b["stop_reasons"].items()))
    return [b["traces"], b["accuracy"], b["correct"], b["wrong"], b["invalid"], stops, b["mean_steps"], b["tokens"]]


def render_compare(runs: Sequence[dict[str, Any]]) -> str:
    """Strategies on the same questions: per task and over all tasks, accuracy with its 95% bootstrap
    interval and the cost per question; every difference between two strategies with its paired
    interval (a matrix, those leaving out 0 in bold, and again in a line), self-consistency at the k
    that costs what backtracking costs, and tokens per corrected answer."""
    parts = ["## Strategies on the same questions"]
    header = ["strategy", "n", "accuracy % [95% interval]", "invalid", "tokens/q", "calls/q", "s/q"]
    for r in runs:
        res = r["results"]
        parts.append(f"`{r['path']}`, model `{res['config'].get('model')}`: {res['questions_complete']} question(s) "
                     f"finished by every strategy ({res['questions_partial']} partly)")
        for key, block in [*res["tasks"].items(), ("all", res["all"])]:
            rows = [[name, b["n"], _accuracy(b), b["invalid"], b["mean_tokens"], b["mean_calls"], b["mean_seconds"]]
                    for name, b in block.items()]
            parts.append(f"### {'all tasks' if key == 'all' else key}\n\n" + md_table(header, rows)
                         + _difference_matrix(res.get("differences", {}).get(key) or {}, list(block))
                         + "".join(f"\n\n{line}" for line in _compare_notes(res, key, block)))
    return "\n\n".join(parts)


def _accuracy(b: dict[str, Any]) -> str | None:
    iv = b.get("accuracy_interval")
    return None if b["accuracy"] is None else f"{b['accuracy']:.1f}" + (f" [{iv[0]:.1f}, {iv[1]:.1f}]" if iv else "")


def _difference(d: dict[str, Any]) -> str:
    """A paired difference in accuracy points with its 95% interval: '+4.0 [+0.0, +12.0]'."""
    return f"{d['difference']:+.1f} [{d['interval'][0]:+.1f}, {d['interval'][1]:+.1f}]"


def _difference_matrix(diffs: dict[str, Any], strategies: list[str]) -> str:
    """Row minus column, accuracy points on the same questions, with the paired 95% interval; bold where
    the interval leaves out 0. Empty when there is nothing to pair."""
    def cell(a: str, b: str) -> str | None:
        d = diffs.get(f"{a} - {b}")
        if not d:
            return None
        return f"**{_difference(d)}**" if d["real"] else _difference(d)

    if not any(diffs.values()):
        return ""
    rows = [[a, *(cell(a, b) if j > i else None for j, b in enumerate(strategies) if j > 0)]
            for i, a in enumerate(strategies[:-1])]
    return "\n\n" + md_table(["row − column, points [95% paired interval]", *strategies[1:]], rows)


def _compare_notes(res: dict[str, Any], key: str, block: dict[str, Any]) -> list[str]:
    diffs = res.get("differences", {}).get(key) or {}
    real = [f"{pair} {_difference(d)}" for pair, d in diffs.items() if d and d["real"]]
    notes = ["Differences whose 95% paired interval leaves out 0: " + ("; ".join(real) if real else "none")
             + f" (of {sum(1 for d in diffs.values() if d)} pairs)."] if diffs else []
    curve = res.get("sc_curve", {}).get(key) or []
    bt = block.get("backtrack")
    point = matched_k(curve, bt["mean_tokens"]) if curve and bt and bt["n"] else None
    if point:
        iv = point["accuracy_interval"]
        notes.append(f"At backtracking's cost ({bt['mean_tokens']:.0f} tokens/q): self-consistency k={point['k']} "
                     f"{point['accuracy']:.1f} [{iv[0]:.1f}, {iv[1]:.1f}] at {point['mean_tokens']:.0f} tokens/q.")
    per = res.get("tokens_per_corrected", {}).get(key) or {}
    if per:
        notes.append("Against cot: " + "; ".join(
            f"{name} {t['net_corrected']:+d} right answer(s) for {t['extra_tokens']:+d} tokens"
            + (f" ({t['tokens_per_corrected']:.0f} per corrected answer)" if t["tokens_per_corrected"] is not None
               else " (more right answers for fewer tokens)" if t["net_corrected"] > 0 else "")
            for name, t in per.items()) + ".")
    return notes


def render_find(runs: Sequence[dict[str, Any]]) -> str:
    """The Table 4 analogue: each finder run a column (accuracy of the exact first-mistake step over all
    traces, then on traces with a mistake / without), per task and overall, next to the baselines of
    the first run's traces and the paper's GPT-4 figure."""
    from bigbench_mistake.metrics import PAPER_TABLE4_GPT4_OVERALL

    def cell(b: dict[str, Any] | None) -> str | None:
        if not b or b.get("accuracy_overall") is None:
            return None
        return f"{b['accuracy_overall']:.1f} ({_pct(b.get('accuracy_mistake'))} / {_pct(b.get('accuracy_no_mistake'))})"

    base = runs[0]["results"]["baselines"]
    tasks = list(dict.fromkeys(t for r in runs for t in r["results"]["scores"]["tasks"]))
    header = ["task", "n", *(f"[{i + 1}] {r['results']['method']}" for i, r in enumerate(runs)),
              "majority index", "random (expected)"]
    rows = []
    for task in [*tasks, "overall"]:
        first = _task_block(runs[0]["results"]["scores"], task)
        rows.append([task, first["n"] if first else None, *(cell(_task_block(r["results"]["scores"], task)) for r in runs),
                     cell(_task_block(base["majority_index"], task)),
                     cell(_task_block(base["random_uniform_expected"], task))])
    legend = "\n".join(f"- [{i + 1}] `{r['path']}`: {r['results']['method']} ({r['results']['mode']} mode), model "
                       f"`{r['results']['model']}`, {r['results']['calls']} calls, {r['results']['tokens']} tokens, "
                       f"{r['results']['unparsed']} unparsed answer(s)" for i, r in enumerate(runs))
    return ("## Finding the first mistake by prompting (Table 4 analogue)\n\n" + legend + "\n\n" + md_table(header, rows)
            + "\n\nEach cell: accuracy % over all traces (on traces with a mistake / without one); baselines on the "
              f"traces of [1]. The paper's GPT-4: {PAPER_TABLE4_GPT4_OVERALL} overall (Table 4).")


def _task_block(scores: dict[str, Any], task: str) -> dict[str, Any] | None:
    return scores["overall"] if task == "overall" else scores["tasks"].get(task)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"

"""`bbm report`: Markdown from run directories, several runs side by side.

Each run kind (config.json's "kind") has one renderer in RENDERERS; runs of the same kind are put
in one table with a column group per run. Plots the runs wrote (*.png) are linked.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence


def load_run(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    for name in ("config.json", "results.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: no {name} (not a finished run directory)")
    return {"path": path, "config": json.loads((path / "config.json").read_text()),
            "results": json.loads((path / "results.json").read_text())}


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        return "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def run_label(run: dict[str, Any]) -> str:
    c = run["config"]
    return f"{run['path'].name} ({c.get('locator') or c.get('kind')})"


def render_backtrack(runs: Sequence[dict[str, Any]]) -> str:
    tasks = list(dict.fromkeys(t for r in runs for t in r["results"]["tasks"]))
    header = ["task"] + [f"{h} {i + 1}" for i in range(len(runs)) for h in ("n", "Δacc✓", "Δacc✗", "acc before→after", "tokens")]
    rows = []
    for task in [*tasks, "overall"]:
        row: list[Any] = [task]
        for r in runs:
            b = r["results"]["overall"] if task == "overall" else r["results"]["tasks"].get(task)
            if b is None:
                row += [None] * 5
            else:
                row += [b["n"], b["delta_acc_correct"], b["delta_acc_wrong"],
                        f"{b['accuracy_before']} → {b['accuracy_after']}", b["tokens"]]
        rows.append(row)
    legend = "\n".join(f"- run {i + 1}: `{run_label(r)}`, model `{r['config'].get('model')}`" for i, r in enumerate(runs))
    return "## Backtracking (Table 6 analogue)\n\n" + legend + "\n\n" + md_table(header, rows)


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


RENDERERS: dict[str, Callable[[Sequence[dict[str, Any]]], str]] = {
    "backtrack": render_backtrack,
    "simulate": render_simulate,
}


def render_report(paths: Sequence[str | Path]) -> str:
    runs = [load_run(p) for p in paths]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_kind.setdefault(r["config"].get("kind", "run"), []).append(r)
    sections = [RENDERERS.get(kind, render_generic)(rs) for kind, rs in by_kind.items()]
    return "# bbm report\n\n" + "\n\n".join(sections) + "\n"

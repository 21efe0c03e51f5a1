"""Plain-text tables for the terminal: what the data commands print (the same dicts go out as JSON with --json)."""
from __future__ import annotations

from typing import Any

def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[("" if c is None else str(c)) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_stats(s: dict) -> str:
    cols = ["traces", "with_mistake", "correct_answers", "wrong_answers", "invalid_answers", "mean_steps",
            "label_noise_no_mistake_but_wrong"]
    rows = [[task, *(v[c] for c in cols)] for task, v in s["tasks"].items()]
    rows.append(["total", *(s["total"][c] for c in cols)])
    out = table(rows, ["task", "traces", "mistake", "correct", "wrong", "invalid", "mean steps", "noise"])
    dist = "\n".join(f"  {task}: {v['mistake_index_distribution']}" for task, v in s["tasks"].items())
    return f"{out}\n\nmistake_index distribution (0-based):\n{dist}\n" \
           "noise = no mistake marked but the answer is not correct (label noise)."


def render_scores(r: dict) -> str:
    def rows_of(name: str, block: dict) -> list[list[Any]]:
        rows = [[name, "all", block["overall"]["accuracy_mistake"], block["overall"]["accuracy_no_mistake"],
                 block["overall"]["accuracy_overall"], block["overall"].get("weighted_f1")]]
        rows += [[name, task, v["accuracy_mistake"], v["accuracy_no_mistake"], v["accuracy_overall"], v.get("weighted_f1")]
                 for task, v in block["tasks"].items()]
        return rows

    rows = rows_of("predictions", r["scores"])
    for name, block in r["baselines"].items():
        rows += rows_of(name, block)
    head = f"{r['predictions_file']} (key {r['key']}): {r['scores']['overall']['n']} traces scored, " \
           f"{r['scores']['overall']['missing']} without prediction\n"
    return head + table(rows, ["locator", "task", "acc mistake %", "acc no-mistake %", "acc overall %", "weighted F1"])

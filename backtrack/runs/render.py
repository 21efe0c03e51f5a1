"""What the run commands print: a text summary of the dict each returns (the same dict goes out as JSON with --json)."""
from __future__ import annotations

from typing import Any

from backtrack.runs.compute import matched_k
from bigbench_mistake.render import render_scores, table


def render_merge(r: dict) -> str:
    return (f"merged {r['shards']} shards ({r['records']} records, {r['n_items']} items) into {r['out']}\n"
            f"results recomputed in {r['out']}/results.json")


def _interval(iv: list | None) -> str:
    return f"[{iv[0]}, {iv[1]}]" if iv else ""


def render_compare(r: dict) -> str:
    head = ["strategy", "n", "accuracy %", "95% interval", "invalid", "tokens/q", "calls/q", "s/q", "tokens", "calls",
            "reused", "seconds"]

    def rows(block: dict) -> list[list[Any]]:
        return [[name, b["n"], b["accuracy"], _interval(b.get("accuracy_interval")), b["invalid"], b["mean_tokens"],
                 b["mean_calls"], b["mean_seconds"], b["tokens"], b["calls"], b.get("reused_calls", 0), b["seconds"]]
                for name, b in block.items()]

    def diffs(task: str) -> str:
        found = r.get("differences", {}).get(task) or {}
        lines = [f"  {pair}: {d['difference']:+} points, 95% {_interval(d['interval'])}{' (real)' if d['real'] else ''}"
                 for pair, d in found.items() if d]
        curve = r.get("sc_curve", {}).get(task) or []
        if curve:
            lines.append("  self-consistency at k=1..K (same samples): " + ", ".join(
                f"k={p['k']} {p['accuracy']}% @ {p['mean_tokens']:.0f} tok" for p in curve))
            bt = (r["all"] if task == "all" else r["tasks"][task]).get("backtrack")
            point = matched_k(curve, bt["mean_tokens"]) if bt and bt["n"] else None
            if point:
                lines.append(f"  compute-matched: backtrack {bt['accuracy']}% @ {bt['mean_tokens']:.0f} tok vs "
                             f"self-consistency k={point['k']} {point['accuracy']}% @ {point['mean_tokens']:.0f} tok")
        for name, t in (r.get("tokens_per_corrected", {}).get(task) or {}).items():
            per = t["tokens_per_corrected"]
            lines.append(f"  {name} vs cot: {t['net_corrected']:+} answer(s) for {t['extra_tokens']:+} tokens"
                         + (f" = {per} tokens per corrected answer" if per is not None else ""))
        return "\n" + "\n".join(lines) if lines else ""

    parts = [f"{task}\n{table(rows(block), head)}{diffs(task)}" for task, block in r["tasks"].items()]
    parts.append(f"all tasks\n{table(rows(r['all']), head)}{diffs('all')}")
    sc = {name: (b["ties"], b["invalid_samples"]) for name, b in r["all"].items() if name in ("self-consistency", "sc-weighted")}
    notes = "".join(f"\n{name}: {t} tied vote(s), {i} invalid sample answer(s) (counted, not voted)" for name, (t, i) in sc.items())
    notes += ("\nreused: calls answered from the question's shared memo (counted in tokens and calls, not paid again "
              "in seconds)")
    return ("\n\n".join(parts) + f"\n\n{r['questions_complete']} question(s) finished by every strategy"
            f" ({r['questions_partial']} partly); run dir {r['run_dir']}; plot {r['plot']}" + notes)


def render_find(r: dict) -> str:
    head = f"{r['method']} ({r['mode']} mode) on {r['model']}: {r['scores']['overall']['n']} traces, " \
           f"{r['calls']} model calls, {r['tokens']} tokens generated, {r['seconds']} s, {r['unparsed']} unparsed answer(s)\n"
    return head + render_scores({"predictions_file": r["run_dir"], "key": "predicted_mistake_index", **r}).split("\n", 1)[1]


def render_backtrack(r: dict) -> str:
    cols = ["n", "n_originally_correct", "n_originally_wrong", "delta_acc_correct", "delta_acc_wrong", "net_change",
            "accuracy_before", "accuracy_after", "backtracked", "uncorrectable", "rejected", "invalid_after", "tokens",
            "seconds"]
    blocks = {**r["results"]["tasks"], "overall": r["results"]["overall"]}
    rows = [[task, *(b.get(c) for c in cols)] for task, b in blocks.items()]
    head = ["task", "n", "n✓", "n✗", "Δacc✓", "Δacc✗", "net", "acc before", "acc after", "backtracked",
            "uncorrectable", "rejected", "invalid after", "tokens", "s"]
    ended = "\n".join(f"  {task}: {b['backtracked_ended']}" for task, b in blocks.items() if b.get("backtracked_ended"))
    capped = r["results"]["overall"].get("located_at_token_cap")
    return (f"{r['run_dir']}  locator {r['locator']}  model {r['model']}\n" + table(rows, head)
            + (f"\nhow the backtracked traces ended:\n{ended}" if ended else "")
            + (f"\nlocated at a step cut at the token cap (the locator found nothing before it): {capped}"
               if capped else ""))


def render_simulate(r: dict) -> str:
    res = r["results"]
    blocks = {**res["tasks"], "overall": res["overall"]}
    rows = []
    for i, level in enumerate(res["overall"]["levels"]):
        rows.append([f"{level['accuracy_rm']:.2f}",
                     *(f"{b['levels'][i]['delta_acc_correct']}/{b['levels'][i]['delta_acc_wrong']}"
                       for b in blocks.values())])
    rows.append(["break-even", *(b["break_even_accuracy_rm"] for b in blocks.values())])
    return (f"{r['run_dir']}  model {r['model']}  (cells: Δacc✓/Δacc✗; {r['pairs_computed']} (trace, location) "
            f"pairs recorded now, {r['cache_hits']} of them from the outcome cache)\n" + table(rows, ["RM accuracy", *blocks]) + f"\nplot: {r['plot']}")


def render_pipeline(r: dict) -> str:
    stories = "\n\n".join(r["corrections"]) or "(no trace was changed)"
    return f"{stories}\n\n{render_backtrack(r)}\n\ngeneration stop reasons: {r['results']['generation_stop_reasons']}"


def render_generate(r: dict) -> str:
    rows = [[task, v["traces"], v["correct"], v["wrong"], v["invalid"], v["accuracy"], v["mean_steps"],
             ", ".join(f"{k}={n}" for k, n in sorted(v["stop_reasons"].items())), v["tokens"]]
            for task, v in [*r["tasks"].items(), ("total", r["overall"])]]
    head = (f"{r['run_dir']}: {r['new_traces']} new trace(s), {r['skipped_done']} already done; model {r['model']}, "
            f"seed {r['seed']}; {r['new_tokens']} tokens in {r['seconds']} s ({r['tokens_per_s']} tokens/s)\n")
    return head + table(rows, ["task", "traces", "correct", "wrong", "invalid", "acc %", "mean steps", "stop reasons", "tokens"])

"""The README's "Strategies on a 1.5B model" tables, from a compare run directory.

    python results/qwen-compare/readme_tables.py results/qwen-compare/compare

Reads the run the way `bbm report` and `bbm compare --summary-only` do (the report layer's summary of
the finished records: backtrack/runs/compare.py), writes nothing, and prints for the README: the
overall table (long strategy names), its difference matrix (bold where the paired interval leaves out
0) and those intervals listed, then one table per task with short names and its intervals that leave
out 0. The figures the paragraph under the tables quotes go to stderr: each strategy's tokens and
seconds against cot's, self-consistency at backtracking's token cost, and tokens per corrected answer
against cot, overall and per task.
"""
import sys
import textwrap
from pathlib import Path

from backtrack.runs.compare import results_from_records
from backtrack.runs.compute import matched_k
from backtrack.runs.rundir import finished_records, read_run_file

LONG = {"cot": "cot (greedy)", "self-consistency": "self-consistency k=8, T=0.7",
        "sc-weighted": "sc-weighted (same samples)", "least-to-most": "least-to-most",
        "backtrack": "backtracking (trained locator, guarded)"}
SHORT = {"cot": "cot", "self-consistency": "SC k=8", "sc-weighted": "sc-weighted",
         "least-to-most": "least-to-most", "backtrack": "backtracking"}
MATRIX = {"backtrack": "backtracking"}


def points(value):
    """Accuracy points with the README's minus sign and no sign on 0: '+4.0', '−5.6', '0.0'."""
    return "0.0" if round(value, 1) == 0 else f"{value:+.1f}".replace("-", "−")


def difference(d):
    return f"{points(d['difference'])} [{points(d['interval'][0])}, {points(d['interval'][1])}]"


def accuracy(b):
    low, high = b["accuracy_interval"]
    return f"{b['accuracy']:.1f} [{low:.1f}, {high:.1f}]"


def seconds(value):
    return f"{value:.2f}" if value < 1 else f"{value:.0f}"


def strategy_rows(block, names):
    return [f"| {names[s]} | {b['n']} | {accuracy(b)} | {b['invalid']} | {b['mean_tokens']:,.0f}"
            f" | {b['mean_calls']:.1f} | {seconds(b['mean_seconds'])} |" for s, b in block.items()]


def cell(d):
    """A matrix cell: bold where the interval leaves out 0, as in `bbm report`."""
    return f"**{difference(d)}**" if d["real"] else difference(d)


def matrix(diffs, strategies):
    out = ["| | " + " | ".join(MATRIX.get(s, s) for s in strategies[1:]) + " |",
           "|---" * len(strategies) + "|"]
    for i, a in enumerate(strategies[:-1]):
        cells = [cell(diffs[f"{a} - {b}"]) if j > i else "" for j, b in enumerate(strategies) if j > 0]
        out.append(f"| {a} " + "".join(f"| {c} " if c else "| " for c in cells) + "|")
    return out


def leaving_out_zero(diffs):
    real = [f"{pair.replace(' - ', ' − ')} {difference(d)}" for pair, d in diffs.items() if d["real"]]
    if not real:
        return [f"Paired 95% intervals that leave out 0: none of the {len(diffs)}."]
    text = f"Paired 95% intervals that leave out 0: {len(real)} of the {len(diffs)}: {'; '.join(real)}."
    return textwrap.wrap(text, width=104, break_on_hyphens=False)


def facts(res, key, block):
    """One stderr line: cost against cot, SC at backtracking's cost, tokens per corrected answer."""
    cot = block["cot"]
    # sc-weighted's seconds are its vote's alone (it reuses self-consistency's samples): no ratio
    def ratio(s, b):
        seconds = "" if s == "sc-weighted" else f" {b['mean_seconds'] / cot['mean_seconds']:.2f}x s"
        return f"{s} {b['mean_tokens'] / cot['mean_tokens']:.2f}x tok{seconds}"

    ratios = ", ".join(ratio(s, b) for s, b in block.items() if s != "cot")
    point = matched_k(res["sc_curve"][key], block["backtrack"]["mean_tokens"])
    iv = point["accuracy_interval"]
    matched = (f"SC k={point['k']} {point['accuracy']:.1f} [{iv[0]:.1f}, {iv[1]:.1f}]"
               f" {point['mean_tokens']:.0f} tok/q")
    per = "; ".join(f"{s} {t['net_corrected']:+d} for {t['extra_tokens']:+,d} tok"
                    + (f" ({t['tokens_per_corrected']:,.0f} per corrected)"
                       if t["tokens_per_corrected"] else "")
                    for s, t in res["tokens_per_corrected"][key].items())
    return f"{key} (n={cot['n']}): {ratios} | at bt cost: {matched} | against cot: {per}"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = Path(sys.argv[1])
    records, _ = finished_records(path)
    res = results_from_records(read_run_file(path / "config.json"), records)
    strategies = res["strategies"]
    print("| strategy | n | accuracy % [95% bootstrap interval] | invalid | tokens/q | calls/q | s/q |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(strategy_rows(res["all"], LONG)))
    print()
    print("\n".join(matrix(res["differences"]["all"], strategies)))
    print()
    print("\n".join(leaving_out_zero(res["differences"]["all"])))
    print(facts(res, "all", res["all"]), file=sys.stderr)
    for task, block in res["tasks"].items():
        print(f"\n**{task}**\n")
        print("| strategy | n | accuracy % [95%] | invalid | tokens/q | calls/q | s/q |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(strategy_rows(block, SHORT)))
        print()
        print("\n".join(leaving_out_zero(res["differences"][task])))
        print(facts(res, task, block), file=sys.stderr)
    print(f"questions complete: {res['questions_complete']}, partial: {res['questions_partial']}",
          file=sys.stderr)


if __name__ == "__main__":
    main()

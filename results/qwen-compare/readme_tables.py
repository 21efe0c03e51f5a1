"""Condense `bbm report results/qwen-compare/compare` into the README's "Strategies on a 1.5B model" tables.

    bbm report results/qwen-compare/compare | python results/qwen-compare/readme_tables.py

Reads the report's markdown on stdin and prints, for the README: the overall table (long strategy
names), its difference matrix, then one table per task with short names and the list of paired
intervals that leave out 0. Numbers are only re-rounded (tokens to whole numbers, calls to one
decimal, seconds to whole seconds below which two decimals), never recomputed. The report's
"At backtracking's cost" and "Against cot" lines go to stderr, for the paragraph under the tables.
"""
import re
import sys
import textwrap

LONG = {"cot": "cot (greedy)", "self-consistency": "self-consistency k=8, T=0.7",
        "sc-weighted": "sc-weighted (same samples)", "least-to-most": "least-to-most",
        "backtrack": "backtracking (trained locator, guarded)"}
SHORT = {"cot": "cot", "self-consistency": "SC k=8", "sc-weighted": "sc-weighted",
         "least-to-most": "least-to-most", "backtrack": "backtracking"}
MATRIX_NAMES = {"backtrack": "backtracking"}


def signed(text):
    """'+0.0' -> '0.0', '-5.6' -> '−5.6' (the README's minus sign)."""
    value = float(text)
    return "0.0" if value == 0 else text.replace("-", "−")


def diff_cell(cell):
    cell = cell.strip("* ")
    if cell == "–":
        return ""
    point, low, high = re.match(r"([+-][\d.]+) \[([+-][\d.]+), ([+-][\d.]+)\]", cell).groups()
    return f"{signed(point)} [{signed(low)}, {signed(high)}]"


def seconds(text):
    value = float(text)
    return f"{value:.2f}" if value < 1 else f"{value:.0f}"


def strategy_row(cells, names):
    name, n, acc, invalid, tokens, calls, secs = cells
    return (f"| {names[name]} | {n} | {acc} | {invalid} | {float(tokens):,.0f} | {float(calls):.1f}"
            f" | {seconds(secs)} |")


def sections(lines):
    """{task: [lines]} for every '### task' section of the strategies part."""
    out, task = {}, None
    for line in lines:
        if line.startswith("### "):
            task = line[4:].strip()
            out[task] = []
        elif line.startswith("## ") and task is not None:
            task = None
        elif task is not None:
            out[task].append(line)
    return out


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def render(task, lines, overall):
    # the strategy table's rows come before the difference matrix's header ('| row − column ...')
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| strategy")]
    split = next(i for i, line in enumerate(rows) if line.startswith("| row"))
    table = [cells(row) for row in rows[:split] if not row.startswith("|---")]
    matrix = [cells(row) for row in rows[split + 1:] if not row.startswith("|---")]
    out = []
    if overall:
        out += ["| strategy | n | accuracy % [95% bootstrap interval] | invalid | tokens/q | calls/q | s/q |",
                "|---|---|---|---|---|---|---|"]
        out += [strategy_row(row, LONG) for row in table]
        header = [MATRIX_NAMES.get(row[0], row[0]) for row in table[1:]]
        out += ["", "| | " + " | ".join(header) + " |", "|---" * (len(header) + 1) + "|"]
        for row in matrix:
            shown = [row[0]] + [diff_cell(c) for c in row[1:]]
            out.append(" ".join(f"| {c}" if c else "|" for c in shown) + " |")
    else:
        out += [f"**{task}**", "",
                "| strategy | n | accuracy % [95%] | invalid | tokens/q | calls/q | s/q |",
                "|---|---|---|---|---|---|---|"]
        out += [strategy_row(row, SHORT) for row in table]
    for line in lines:
        if line.startswith("Differences whose"):
            found = line.split(":", 1)[1].strip()
            total = re.search(r"\(of (\d+) pairs\)", found).group(1)
            found = re.sub(r"\s*\(of \d+ pairs\)\.?$", "", found)
            if found.startswith("none"):
                out += ["", f"Paired 95% intervals that leave out 0: none of the {total}."]
            else:
                pairs = [p.strip() for p in found.split(";")]
                listed = "; ".join(re.sub(r" - ", " − ", p).replace("[-", "[−").replace(", -", ", −")
                                   for p in pairs)
                text = f"Paired 95% intervals that leave out 0: {len(pairs)} of the {total}: {listed}."
                out += [""] + textwrap.wrap(text, width=104, break_on_hyphens=False)
        elif line.startswith(("At backtracking's cost", "Against cot")):
            print(f"{task}: {line}", file=sys.stderr)  # for the paragraph, not pasted as is
    return out


def main():
    parts = sections(sys.stdin.read().splitlines())
    if "all tasks" not in parts:
        sys.exit("no '### all tasks' section on stdin: pipe in `bbm report results/qwen-compare/compare`")
    print("\n".join(render("all tasks", parts.pop("all tasks"), overall=True)))
    for task, lines in parts.items():
        print()
        print("\n".join(render(task, lines, overall=False)))


if __name__ == "__main__":
    main()

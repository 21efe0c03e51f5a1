"""Accuracy on fresh questions against accuracy on the dataset's own, strategy by strategy, for the
tasks the fresh run covers (the README's "Fresh questions" table under "Strategies on a 1.5B model").

    python results/qwen-compare/fresh_vs_dataset.py results/qwen-compare/compare \
        results/qwen-compare/compare-fresh

The two runs answer different questions, so the interval on a difference is not the paired one of
`bbm report`: each resample draws the dataset's questions and the fresh questions independently
(bigbench_mistake/bootstrap.py's unpaired_difference_interval). Only questions every strategy finished
are counted, so a run still going gives the same columns for each strategy. A fresh accuracy well below
the dataset's would say the dataset's answers are inflated by the model having seen BIG-Bench; an
interval holding 0 says the runs cannot tell.
"""
import sys
from collections import defaultdict
from pathlib import Path

from backtrack.runs.compare import complete_questions
from backtrack.runs.rundir import finished_records, read_run_file
from bigbench_mistake.bootstrap import accuracy_interval, unpaired_difference_interval
from readme_tables import SHORT, difference  # this folder's script: the README's typography


def complete(path):
    """{task: {strategy: [correct, ...]}} over the questions every strategy of the run finished."""
    strategies = read_run_file(Path(path) / "config.json")["strategies"]
    out = defaultdict(lambda: defaultdict(list))
    for (task, _), answers in complete_questions(finished_records(path)[0], strategies)[0].items():
        for s in strategies:
            out[task][s].append(bool(answers[s]["correct"]))
    return out


def accuracy(correct):
    low, high = accuracy_interval(correct)
    return f"{100.0 * sum(correct) / len(correct):.1f} [{low:.1f}, {high:.1f}]"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    dataset, fresh = complete(sys.argv[1]), complete(sys.argv[2])
    tasks = [t for t in fresh if t in dataset]
    # the tasks pooled, only where each run holds as many questions of every task (the mix is then the
    # same on both sides; a run stopped mid-round would weigh its first tasks more)
    pooled = f"the {len(tasks)} tasks"
    counts = [{len(next(iter(run[t].values()))) for t in tasks} for run in (dataset, fresh)]
    if all(len(c) == 1 for c in counts):
        for run in (dataset, fresh):
            for s in next(iter(run.values())):
                run[pooled][s] = [c for t in tasks for c in run[t][s]]
    else:
        print(f"not pooled: questions a task differ within a run ({counts})", file=sys.stderr)
    print("| task | strategy | dataset % [95%] | fresh % [95%] | fresh − dataset [95%, unpaired] |")
    print("|---|---|---|---|---|")
    for task in tasks + ([pooled] if pooled in fresh else []):
        n_d, n_f = len(next(iter(dataset[task].values()))), len(next(iter(fresh[task].values())))
        for s, name in SHORT.items():
            if s not in fresh[task]:
                continue
            d, f = dataset[task][s], fresh[task][s]
            diff = unpaired_difference_interval(f, d)
            cell = f"**{difference(diff)}**" if diff["real"] else difference(diff)
            print(f"| {task} (n={n_d}/{n_f}) | {name} | {accuracy(d)} | {accuracy(f)} | {cell} |")


if __name__ == "__main__":
    main()

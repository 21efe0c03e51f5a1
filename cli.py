"""The `bbm` command: thin typer commands over functions that return dicts.

Every command prints a readable table, or the same dict as JSON with --json. Heavy libraries are
imported inside commands so `bbm --help` stays instant.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

app = typer.Typer(help="bbm: find the first logical mistake in a chain of thought and fix it by backtracking.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="The BIG-Bench Mistake data: stats, validation, scoring, export.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataDir = typer.Option(None, "--data-dir", envvar="BBM_DATA_DIR",
                       help="Folder with the five task JSONL files (default: the copy shipped in the package).")
JsonOut = typer.Option(False, "--json", help="Print the result as JSON.")
TasksOpt = typer.Option(None, "--task", "-t", help="Only this task (repeatable).")


def fail(message: str, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], Any]) -> Any:
    """Run fn; turn the errors a user can cause (bad files, bad options) into a message and exit 1."""
    from bigbench_mistake.records import DataError

    try:
        return fn()
    except DataError as e:
        fail("\n".join(str(i) for i in e.issues))
    except (FileNotFoundError, ValueError) as e:
        fail(f"error: {e}")


def emit(result: dict, as_json: bool, render: Callable[[dict], str]) -> None:
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json else render(result))


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[("" if c is None else str(c)) for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------- bbm data ...
def render_stats(s: dict) -> str:
    cols = ["traces", "with_mistake", "correct_answers", "wrong_answers", "invalid_answers", "mean_steps",
            "label_noise_no_mistake_but_wrong"]
    rows = [[task, *(v[c] for c in cols)] for task, v in s["tasks"].items()]
    rows.append(["total", *(s["total"][c] for c in cols)])
    out = table(rows, ["task", "traces", "mistake", "correct", "wrong", "invalid", "mean steps", "noise"])
    dist = "\n".join(f"  {task}: {v['mistake_index_distribution']}" for task, v in s["tasks"].items())
    return f"{out}\n\nmistake_index distribution (0-based):\n{dist}\n" \
           "noise = no mistake marked but the answer is not correct (label noise)."


@data_app.command("stats")
def data_stats_cli(data_dir: Optional[Path] = DataDir, files: Optional[List[Path]] = typer.Argument(
        None, help="JSONL files of your own (default: the dataset)."), as_json: bool = JsonOut) -> None:
    """Per task: traces, traces with a mistake, correct/wrong/invalid answers, steps, label noise."""
    from bigbench_mistake.dataset import load_traces
    from bigbench_mistake.stats import dataset_stats

    result = guarded(lambda: dataset_stats(load_traces(files, data_dir)))
    emit(result, as_json, render_stats)


@data_app.command("validate")
def data_validate_cli(paths: List[Path] = typer.Argument(..., help="JSONL files in the dataset's shape."),
                      task: Optional[str] = typer.Option(None, help="Task of records without a 'task' key.")) -> None:
    """Check files line by line; print one error per problem (file:line: field: message). Exit 1 on errors."""
    from bigbench_mistake.dataset import KNOWN_TASKS, task_from_filename
    from bigbench_mistake.records import read_traces

    n_bad, n_ok = 0, 0
    for path in paths:
        if not path.is_file():
            typer.echo(f"{path}: no such file", err=True)
            n_bad += 1
            continue
        traces, issues = read_traces(path, default_task=task or task_from_filename(path), known_tasks=KNOWN_TASKS)
        for issue in issues:
            typer.echo(str(issue), err=True)
        n_bad += len(issues)
        n_ok += len(traces)
    typer.echo(f"{n_ok} valid record(s), {n_bad} error(s)")
    if n_bad:
        raise typer.Exit(1)


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


@data_app.command("score")
def data_score_cli(predictions: Path = typer.Argument(..., help="JSONL: id + predicted_mistake_index (or mistake_index)."),
                   gold: Optional[List[Path]] = typer.Option(None, "--gold", help="Gold traces (default: the dataset)."),
                   data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Score predicted first-mistake indices (Tables 4/5 metrics) next to the trivial baselines."""
    from bigbench_mistake.dataset import load_traces
    from bigbench_mistake.metrics import baselines, mistake_finding_scores
    from bigbench_mistake.predictions import read_predictions

    def run() -> dict:
        traces = load_traces(gold, data_dir)
        preds, key = read_predictions(predictions, traces)
        scored = [t for t in traces if t.id in preds]
        return {"predictions_file": str(predictions), "key": key,
                "scores": mistake_finding_scores(traces, preds), "baselines": baselines(scored)}

    emit(guarded(run), as_json, render_scores)


@data_app.command("export")
def data_export_cli(out: Path = typer.Option(..., "--out", help="Output file (trl: .jsonl) or folder (hf)."),
                    format: str = typer.Option("trl", "--format", help="trl | hf"),
                    test_fraction: float = typer.Option(0.2, help="hf: share of questions in the test split."),
                    seed: int = typer.Option(0, help="hf: seed of the split."),
                    tasks: Optional[List[str]] = TasksOpt, data_dir: Optional[Path] = DataDir) -> None:
    """Export for training: TRL stepwise supervision {prompt, completions, labels}, or a split DatasetDict."""
    from bigbench_mistake.dataset import load_all
    from bigbench_mistake.export import hf_split, stepwise_example

    def run() -> str:
        traces = load_all(data_dir, tasks)
        if format == "trl":
            import jsonlines

            out.parent.mkdir(parents=True, exist_ok=True)
            with jsonlines.open(out, "w") as w:
                for t in traces:
                    w.write(stepwise_example(t))
            return f"wrote {len(traces)} stepwise examples to {out}"
        if format == "hf":
            dd = hf_split(traces, test_fraction, seed)
            dd.save_to_disk(str(out))
            return f"wrote DatasetDict train={len(dd['train'])} test={len(dd['test'])} (seed {seed}) to {out}"
        raise ValueError(f"unknown --format {format!r}; use trl or hf")

    typer.echo(guarded(run))


# ---------------------------------------------------------------- bbm merge (sharded runs)
def render_merge(r: dict) -> str:
    return (f"merged {r['shards']} shards ({r['records']} records, {r['n_items']} items) into {r['out']}\n"
            f"results recomputed in {r['out']}/results.json")


@app.command("merge")
def merge_cli(run_dirs: List[Path] = typer.Argument(..., help="The run directories of shards 0/n .. n-1/n (any order)."),
              out: Path = typer.Option(..., "--out", help="New run directory for the merged run."),
              as_json: bool = JsonOut) -> None:
    """Join the run directories of a run made with --shard i/n into one, equal to the unsharded run.

    Checks that the configs agree except for the shard (and base URL), that all n shards are there,
    finished and disjoint; writes samples.jsonl in the original item order and recomputes results.json
    with the function the unsharded run uses."""
    from backtrack.shard import merge_runs

    emit(guarded(lambda: merge_runs(out, run_dirs)), as_json, render_merge)


# ---------------------------------------------------------------- bbm rm ... (reward model / locators)
rm_app = typer.Typer(help="The reward model: find the first mistake step (train, evaluate, locate).", no_args_is_help=True)
app.add_typer(rm_app, name="rm")
RmFeatures = typer.Option("all", "--features", help="all (with task-specific checks) | generic (nothing that knows the task).")


def _rm_config(features: str, seed: int, drop: Optional[List[str]] = None, no_text: bool = False):
    from reward_model.classifier import TrainConfig

    return TrainConfig(features=features, seed=seed, drop_groups=tuple(drop or ()), text=not no_text)


def render_rm_train(r: dict) -> str:
    return "\n".join(f"{k}: {v}" for k, v in r.items())


@rm_app.command("train")
def rm_train_cli(out: Path = typer.Option(..., "--out", help="Folder for the model (config.json + weights.safetensors)."),
                 features: str = RmFeatures, seed: int = typer.Option(0, help="Seed of the inner folds."),
                 drop: Optional[List[str]] = typer.Option(None, "--drop", help="Leave out a feature group (repeatable)."),
                 tasks: Optional[List[str]] = TasksOpt, data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Train the CPU step classifier on the dataset; the threshold is chosen on inner out-of-fold scores."""
    from reward_model.commands import train_to_dir

    emit(guarded(lambda: train_to_dir(out, _rm_config(features, seed, drop), data_dir, tasks)), as_json, render_rm_train)


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
    head = f"protocol {r['protocol']}, {r['feature_set']}, {r['seconds']} s; mean over tasks (trained): " \
           f"{r['scores']['mean_task_accuracy_overall']}\nreference: {r['reference']}\n"
    return head + table(rows, ["locator", "task", "acc mistake %", "acc no-mistake %", "acc overall %", "weighted F1"])


@rm_app.command("eval")
def rm_eval_cli(protocol: str = typer.Option("cv", "--protocol", help="cv (puzzle-aware folds) | leave-one-task-out."),
                features: str = RmFeatures, folds: int = typer.Option(5, help="cv: number of folds."),
                seed: int = typer.Option(0, help="Seed of the fold assignment."),
                drop: Optional[List[str]] = typer.Option(None, "--drop", help="Leave out a feature group (repeatable)."),
                ablation: bool = typer.Option(False, "--ablation", help="cv with each feature group left out in turn."),
                tasks: Optional[List[str]] = TasksOpt, data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Evaluate the CPU classifier out of split, next to the checks alone, the baselines and the paper."""
    from reward_model.commands import eval_report

    emit(guarded(lambda: eval_report(protocol, _rm_config(features, seed, drop), folds, data_dir, tasks, ablation)),
         as_json, render_rm_eval)


def render_rm_locate(r: dict) -> str:
    s = r["scores_against_file_labels"]["overall"]
    return (f"{r['n_traces']} traces from {r['traces_file']} -> {r['out']} ({r['locator']}, threshold {r['threshold']}, "
            f"{r.get('feature_set') or ''}) in {r['seconds']} s; {r['n_predicted_mistake']} with a mistake found.\n"
            f"against the file's labels: overall {s['accuracy_overall']}%, mistake {s['accuracy_mistake']}%, "
            f"no mistake {s['accuracy_no_mistake']}%")


@rm_app.command("locate")
def rm_locate_cli(traces: Path = typer.Argument(..., help="JSONL traces in the dataset's shape (e.g. from bbm generate)."),
                  out: Path = typer.Option(..., "--out", help="Output JSONL: each trace + predicted_mistake_index, step_scores."),
                  model: Optional[Path] = typer.Option(None, "--model", help="A trained model folder (same as --locator trained:DIR)."),
                  locator: Optional[str] = typer.Option(None, "--locator", help="gold | random | random:dist | simulated:X | trained:DIR"),
                  threshold: Optional[float] = typer.Option(None, help="Score threshold (default: the model's own)."),
                  seed: int = typer.Option(0, help="Seed of random/simulated locators."),
                  data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Find the first mistake of every trace in a file."""
    from reward_model.commands import locate_file

    if (model is None) == (locator is None):
        fail("give exactly one of --model DIR or --locator SPEC")
    spec = f"trained:{model}" if model is not None else locator
    emit(guarded(lambda: locate_file(traces, out, spec, threshold, seed, data_dir)), as_json, render_rm_locate)


# ---------------------------------------------------------------- bbm compare / bbm find (prompting strategies, prompt-based finders)
StratModel = typer.Option(None, "--model", help="Model folder, hub id or .gguf file (default: the embedded Gemma 3 270M).")
StratDtype = typer.Option("auto", "--dtype", help="auto | float32 | bfloat16 | float16")
StratCache = typer.Option(None, "--cache-dir", envvar="BBM_CACHE_DIR",
                          help="Where the embedded model is converted (default ~/.cache/bbm).")
StratThreads = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice).")


def _strategy_generator(model: Optional[str], dtype: str, cache_dir: Optional[Path], threads: Optional[int]):
    from backtrack.hf_backend import ModelConfig, load_generator

    if threads:
        import torch

        torch.set_num_threads(threads)
    cache = str(cache_dir) if cache_dir else str(Path.home() / ".cache" / "bbm")
    return load_generator(ModelConfig(model=model, dtype=dtype, cache_dir=cache))


def render_compare(r: dict) -> str:
    head = ["strategy", "n", "accuracy %", "invalid", "tokens/q", "calls/q", "s/q", "tokens", "calls", "seconds"]

    def rows(block: dict) -> list[list[Any]]:
        return [[name, b["n"], b["accuracy"], b["invalid"], b["mean_tokens"], b["mean_calls"], b["mean_seconds"],
                 b["tokens"], b["calls"], b["seconds"]] for name, b in block.items()]

    parts = [f"{task}\n{table(rows(block), head)}" for task, block in r["tasks"].items()]
    parts.append(f"all tasks\n{table(rows(r['all']), head)}")
    sc = {name: (b["ties"], b["invalid_samples"]) for name, b in r["all"].items() if name in ("self-consistency", "sc-weighted")}
    notes = "".join(f"\n{name}: {t} tied vote(s), {i} invalid sample answer(s) (counted, not voted)" for name, (t, i) in sc.items())
    return ("\n\n".join(parts) + f"\n\n{r['questions_complete']} question(s) finished by every strategy"
            f" ({r['questions_partial']} partly); run dir {r['run_dir']}; plot {r['plot']}" + notes)


@app.command("compare")
def compare_cli(strategies: str = typer.Option("cot,self-consistency,least-to-most", "--strategies",
                                               help="Comma-separated: cot, backtrack, self-consistency, sc-weighted, least-to-most."),
                out: Path = typer.Option(..., "--out", help="Run directory (rerun the same command to resume)."),
                tasks: Optional[List[str]] = TasksOpt,
                limit: Optional[int] = typer.Option(None, "--limit", help="First N distinct questions per task."),
                questions: Optional[Path] = typer.Option(None, "--questions",
                                                         help="JSONL questions (task, input, target, optional id) instead of the dataset's."),
                locator: str = typer.Option("prompt:direct-step", "--locator",
                                            help="Locator for sc-weighted/backtrack: prompt:METHOD[:MODE] (same model), gold, random, trained:DIR ..."),
                k: int = typer.Option(8, "--k", help="Self-consistency: traces sampled per question."),
                temperature: float = typer.Option(0.7, "--temperature", help="Self-consistency: sampling temperature."),
                located_weight: float = typer.Option(0.5, "--located-weight",
                                                     help="sc-weighted: vote weight of a trace with a located mistake (1.0 without)."),
                max_steps: int = typer.Option(20, "--max-steps", help="Cap on the Thoughts of one trace."),
                max_step_tokens: int = typer.Option(128, "--max-step-tokens", help="Cap on the tokens of one step."),
                seed: int = typer.Option(0, "--seed", help="Sampling seed (stored in config.json)."),
                model: Optional[str] = StratModel, dtype: str = StratDtype, cache_dir: Optional[Path] = StratCache,
                threads: Optional[int] = StratThreads, data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Run prompting strategies on the same questions: accuracy, tokens, model calls and seconds per task, and a plot."""
    from backtrack.compare import run_compare
    from backtrack.strategies import StrategyConfig, items_from_traces, read_questions
    from bigbench_mistake.dataset import load_all

    def run() -> dict:
        names = [s.strip() for s in strategies.split(",") if s.strip()]
        config = StrategyConfig(max_steps=max_steps, max_step_tokens=max_step_tokens, seed=seed, sc_samples=k,
                                sc_temperature=temperature, located_weight=located_weight)
        items = read_questions(questions) if questions else items_from_traces(load_all(data_dir, tasks), limit)
        if questions:
            items = [i for i in items if not tasks or i.task in tasks]
            items = [i for n, i in enumerate(items) if limit is None or sum(j.task == i.task for j in items[:n]) < limit]
        if not items:
            raise ValueError("no questions selected")
        generator = _strategy_generator(model, dtype, cache_dir, threads)

        def make(counting_generator):
            from reward_model.registry import LocatorOptions, make_locator

            return make_locator(locator, LocatorOptions(seed=seed, data_dir=data_dir, generator=counting_generator))

        return run_compare(items, names, config, generator, out, locator_spec=locator, make_locator=make,
                           progress=lambda line: typer.echo(line, err=True))

    emit(guarded(run), as_json, render_compare)


def render_find(r: dict) -> str:
    head = f"{r['method']} ({r['mode']} mode) on {r['generator']}: {r['scores']['overall']['n']} traces, " \
           f"{r['calls']} model calls, {r['tokens']} tokens generated, {r['seconds']} s, {r['unparsed']} unparsed answer(s)\n"
    return head + render_scores({"predictions_file": r["run_dir"], "key": "predicted_mistake_index", **r}).split("\n", 1)[1]


@app.command("find")
def find_cli(method: str = typer.Option("direct-step", "--method", help="direct-trace | direct-step | cot-step"),
             mode: str = typer.Option("logprob", "--mode",
                                      help="logprob (compare the answers' log-probabilities; base models) | generate (free text; chat models)."),
             out: Path = typer.Option(..., "--out", help="Run directory (rerun the same command to resume)."),
             tasks: Optional[List[str]] = TasksOpt,
             limit: Optional[int] = typer.Option(None, "--limit", help="First N traces per task."),
             traces_files: Optional[List[Path]] = typer.Option(None, "--traces", help="JSONL traces with gold labels (default: the dataset)."),
             reasoning_tokens: int = typer.Option(96, "--reasoning-tokens", help="cot-step: tokens for the reasoning line."),
             model: Optional[str] = StratModel, dtype: str = StratDtype, cache_dir: Optional[Path] = StratCache,
             threads: Optional[int] = StratThreads, data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Score a prompt-based mistake finder on BIG-Bench Mistake (the paper's Table 4 metrics) next to the baselines."""
    from bigbench_mistake.dataset import load_traces
    from reward_model.prompt_finders import FinderConfig, run_find, select_traces

    def run() -> dict:
        config = FinderConfig(method=method, mode=mode, reasoning_tokens=reasoning_tokens)
        traces = select_traces(load_traces(traces_files, data_dir, tasks), limit)
        if not traces:
            raise ValueError("no traces selected")
        generator = _strategy_generator(model, dtype, cache_dir, threads)
        return run_find(traces, config, generator, out, progress=lambda line: typer.echo(line, err=True))

    emit(guarded(run), as_json, render_find)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""The `bbm` command: thin typer commands over functions that return dicts (printed as a table, or as
JSON with --json). Run commands share option groups declared once (backtrack/runs/options.py, one
typer adapter); the work lives in the library. Heavy imports stay inside commands."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from backtrack.lm.backends import BackendConfig
from backtrack.runs.options import (BacktrackOptions, Batching, DecodeOptions, FinderOptions, LocateOptions,
                                    QuestionBatch, QuestionsFile, RunOptions, Selection, TracesFile)
from backtrack.runs.typer_options import build, command

app = typer.Typer(help="bbm: find the first logical mistake in a chain of thought and fix it by backtracking.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="The BIG-Bench Mistake data: stats, validation, scoring, export.", no_args_is_help=True)
rm_app = typer.Typer(help="The reward model: find the first mistake step (train, evaluate, locate).", no_args_is_help=True)
app.add_typer(data_app, name="data"), app.add_typer(rm_app, name="rm")

DataDir = typer.Option(None, "--data-dir", envvar="BBM_DATA_DIR",
                       help="Folder with the five task JSONL files (default: the copy shipped in the package).")
JsonOut = typer.Option(False, "--json", help="Print the result as JSON.")
TasksOpt = typer.Option(None, "--task", "-t", help="Only this task (repeatable).")
ThresholdOpt = typer.Option(None, "--threshold", help="Locator score threshold (default: the locator's own).")
RmFeatures = typer.Option("all", "--features", help="all (with task-specific checks) | generic (nothing that knows the task).")
RmDrop = typer.Option(None, "--drop", help="Leave out a feature group (repeatable).")


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
    except KeyboardInterrupt:
        fail("\ninterrupted: every finished item is on disk; rerun the same command to resume", 130)


def emit(result: dict, as_json: bool, render: Callable[[dict], str]) -> None:
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False) if as_json else render(result))


# ---------------------------------------------------------------- bbm data ...
@data_app.command("stats")
def data_stats_cli(data_dir: Optional[Path] = DataDir, files: Optional[List[Path]] = typer.Argument(
        None, help="JSONL files of your own (default: the dataset)."), as_json: bool = JsonOut) -> None:
    """Per task: traces, traces with a mistake, correct/wrong/invalid answers, steps, label noise."""
    from bigbench_mistake.dataset import load_traces
    from bigbench_mistake.render import render_stats
    from bigbench_mistake.stats import dataset_stats

    emit(guarded(lambda: dataset_stats(load_traces(files, data_dir))), as_json, render_stats)


@data_app.command("validate")
def data_validate_cli(paths: List[Path] = typer.Argument(..., help="JSONL files in the dataset's shape."),
                      task: Optional[str] = typer.Option(None, help="Task of records without a 'task' key.")) -> None:
    """Check files line by line; print one error per problem (file:line: field: message). Exit 1 on errors."""
    from bigbench_mistake.commands import validate

    n_ok, problems = validate(paths, task)
    for p in problems:
        typer.echo(p, err=True)
    typer.echo(f"{n_ok} valid record(s), {len(problems)} error(s)")
    if problems:
        raise typer.Exit(1)


@data_app.command("score")
def data_score_cli(predictions: Path = typer.Argument(..., help="JSONL: id + predicted_mistake_index (or mistake_index)."),
                   gold: Optional[List[Path]] = typer.Option(None, "--gold", help="Gold traces (default: the dataset)."),
                   data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Score predicted first-mistake indices (Tables 4/5 metrics) next to the trivial baselines."""
    from bigbench_mistake.commands import score
    from bigbench_mistake.render import render_scores

    emit(guarded(lambda: score(predictions, gold, data_dir)), as_json, render_scores)


@data_app.command("export")
def data_export_cli(out: Path = typer.Option(..., "--out", help="Output file (trl: .jsonl) or folder (hf)."),
                    format: str = typer.Option("trl", "--format", help="trl | hf"),
                    test_fraction: float = typer.Option(0.2, help="hf: share of questions in the test split."),
                    seed: int = typer.Option(0, help="hf: seed of the split."),
                    tasks: Optional[List[str]] = TasksOpt, data_dir: Optional[Path] = DataDir) -> None:
    """Export for training: TRL stepwise supervision {prompt, completions, labels}, or a split DatasetDict."""
    from bigbench_mistake.commands import export

    typer.echo(guarded(lambda: export(out, format, test_fraction, seed, tasks or (), data_dir)))


@data_app.command("fresh")
def data_fresh_cli(out: Path = typer.Option(..., "--out", help="Output JSONL of questions (task, id, input, target)."),
                   task: str = typer.Option(..., "--task", "-t", help="dyck_languages | word_sorting | multistep_arithmetic"),
                   n: int = typer.Option(30, "--n", help="How many questions."),
                   seed: int = typer.Option(0, "--seed", help="The same seed gives the same questions."),
                   data_dir: Optional[Path] = DataDir) -> None:
    """New questions with exact targets, none equal to the dataset's (use with --questions)."""
    from bigbench_mistake.commands import fresh

    typer.echo(guarded(lambda: fresh(out, task, n, seed, data_dir)))


@data_app.command("plant")
def data_plant_cli(out: Path = typer.Option(..., "--out", help="Folder for train.jsonl and heldout.jsonl."),
                   gsm8k: Path = typer.Option(..., "--gsm8k", help="GSM8K JSONL (question, answer with annotations)."),
                   rate: float = typer.Option(0.5, "--mistake-rate", help="Share of traces given a planted mistake."),
                   seed: int = typer.Option(0, "--seed", help="Seed of the planting.")) -> None:
    """First-mistake training data: correct GSM8K solutions, a share with one planted mistake, labelled."""
    from bigbench_mistake.commands import plant

    typer.echo(guarded(lambda: plant(out, gsm8k, rate, seed)))


# ---------------------------------------------------------------- bbm rm ... (reward model / locators)
@rm_app.command("train")
def rm_train_cli(out: Path = typer.Option(..., "--out", help="Folder for the model (config.json + weights.safetensors)."),
                 features: str = RmFeatures, seed: int = typer.Option(0, help="Seed of the inner folds."),
                 drop: Optional[List[str]] = RmDrop,
                 family: str = typer.Option("logreg", "--family", help="logreg (fast CPU model) | transformer (fine-tuned; for a GPU)."),
                 base: str = typer.Option("minilm", "--base", help="transformer: base model folder or hub id; 'minilm' = the packaged MiniLM."),
                 epochs: int = typer.Option(1, help="transformer: training epochs."),
                 device: str = typer.Option("cpu", help="transformer: torch device (cpu, cuda)."),
                 extra: Optional[List[Path]] = typer.Option(None, "--extra-traces", help="Also train on these labelled "
                                                            "traces of any task (JSONL, repeatable)."),
                 tasks: Optional[List[str]] = TasksOpt, data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Train a step classifier on the dataset; the threshold is chosen on training folds only."""
    from reward_model.commands import train_command
    from reward_model.render import render_rm_train

    emit(guarded(lambda: train_command(out, family, features, seed, drop or (), base, epochs, device, data_dir, tasks,
                                       extra or ())),
         as_json, render_rm_train)


@rm_app.command("eval")
def rm_eval_cli(protocol: str = typer.Option("cv", "--protocol", help="cv (puzzle-aware folds) | leave-one-task-out."),
                features: str = RmFeatures, folds: int = typer.Option(5, help="cv: number of folds."),
                seed: int = typer.Option(0, help="Seed of the fold assignment."), drop: Optional[List[str]] = RmDrop,
                ablation: bool = typer.Option(False, "--ablation", help="cv with each feature group left out in turn."),
                extra: Optional[List[Path]] = typer.Option(None, "--extra-traces", help="Also train every split on "
                                                           "these labelled traces of any task (never tested; repeatable)."),
                predictions_out: Optional[Path] = typer.Option(None, "--predictions-out", help="Also write each "
                                                               "trace's out-of-split prediction (JSONL for bbm data score)."),
                tasks: Optional[List[str]] = TasksOpt, data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Evaluate the CPU classifier out of split, next to the checks alone, the baselines and the paper."""
    from reward_model.commands import eval_report, train_config
    from reward_model.render import render_rm_eval

    emit(guarded(lambda: eval_report(protocol, train_config(features, seed, drop or ()), folds, data_dir, tasks, ablation,
                                     extra or (), predictions_out)),
         as_json, render_rm_eval)


@rm_app.command("locate")
def rm_locate_cli(traces: Path = typer.Argument(..., help="JSONL traces in the dataset's shape (e.g. from bbm generate)."),
                  out: Path = typer.Option(..., "--out", help="Output JSONL: each trace + predicted_mistake_index, step_scores."),
                  model: Optional[Path] = typer.Option(None, "--model", help="A trained model folder (same as --locator trained:DIR)."),
                  locator: Optional[str] = typer.Option(None, "--locator", help="gold | random | random:dist | simulated:X | trained "
                                                        "(the default classifier, trained once and cached) | trained:DIR | checks[:generic]"),
                  threshold: Optional[float] = ThresholdOpt,
                  flag_rate: Optional[float] = typer.Option(None, "--flag-rate", help="Flag this share of the traces "
                                                            "(the mistake rate of their source, if known)."),
                  calibrate: Optional[Path] = typer.Option(None, "--calibrate", help="Labelled traces of the same "
                                                           "source: the threshold with the best F1 on them."),
                  seed: int = typer.Option(0, help="Seed of random/simulated locators."),
                  cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", envvar="BBM_CACHE_DIR",
                                                           help="Where --locator trained is cached (default ~/.cache/bbm)."),
                  data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Find the first mistake of every trace in a file (of any task)."""
    from reward_model.commands import locate_command
    from reward_model.render import render_rm_locate

    emit(guarded(lambda: locate_command(traces, out, model, locator, threshold, seed, data_dir, flag_rate, calibrate,
                                        cache_dir)),
         as_json, render_rm_locate)


@rm_app.command("label")
def rm_label_cli(traces: Path = typer.Argument(..., help="JSONL traces nobody annotated (e.g. bbm generate's samples.jsonl)."),
                 out: Path = typer.Option(..., "--out", help="Output JSONL: the traces that could be labelled."),
                 min_agreement: float = typer.Option(0.9, "--min-agreement", help="Label a task only where the checks "
                                                     "name the dataset's human label exactly in this share of its traces."),
                 data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """First-mistake labels from the checks, where they are near exact: training data (--extra-traces)."""
    from reward_model.commands import label_file
    from reward_model.render import render_rm_label

    emit(guarded(lambda: label_file(traces, out, min_agreement, data_dir)), as_json, render_rm_label)


# ---------------------------------------------------------------- run commands (one run directory each)
def run_command(name: str, *groups: type, **extra: Any) -> Callable:
    """Declare the run command of kind `name`: its options are the fields of `groups` plus `extra`; the body
    gets the built configs (checked before anything costly) and returns the dict the kind's summary prints."""
    def register(fn: Callable) -> Callable:
        def body(values: dict) -> None:
            from backtrack.runs.kinds import get_kind

            result = guarded(lambda: fn(*(build(g, values) for g in groups), **{k: values[k] for k in extra}))
            emit(result, values["as_json"], get_kind(name).summary)
        body.__doc__ = fn.__doc__
        return command(app, name, *groups, **extra)(body)
    return register


Accuracies = (str, typer.Option("0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95,1.0", "--accuracies",
                                help="Comma-separated simulated reward-model accuracies."))
RUN, LOCATE = (RunOptions, Selection), (LocateOptions, BacktrackOptions)
DECODE = (DecodeOptions, Batching)


@run_command("backtrack", *RUN, TracesFile, *DECODE, *LOCATE, BackendConfig)
def backtrack_cli(run, sel, files, decode, batch, loc, bt, backend) -> dict:
    """Table 6: backtrack traces at the located mistake; Δaccuracy on originally right and wrong traces."""
    from backtrack.runs import commands

    return commands.backtrack(run, sel, files, decode, batch, loc, bt, backend)


@run_command("pipeline", *RUN, QuestionsFile, *DECODE, *LOCATE, BackendConfig)
def pipeline_cli(run, sel, files, decode, batch, loc, bt, backend) -> dict:
    """The main job: generate traces, locate the first mistake, backtrack, and score before/after."""
    from backtrack.runs import commands

    return commands.pipeline(run, sel, files, decode, batch, loc, bt, backend)


@run_command("simulate", *RUN, *DECODE, BacktrackOptions, BackendConfig,
             accuracies=Accuracies, rm_seed=(int, typer.Option(0, "--rm-seed", help="Seed of the simulated reward model.")))
def simulate_cli(run, sel, decode, batch, bt, backend, accuracies: str, rm_seed: int) -> dict:
    """Figure 2: Δaccuracy✓ / Δaccuracy✗ against the simulated reward model's accuracy, with break-even points."""
    from backtrack.runs import commands

    try:
        levels = tuple(float(a) for a in accuracies.split(",") if a.strip())
    except ValueError:
        raise ValueError(f"--accuracies must be comma-separated numbers in [0, 1], got {accuracies!r}") from None
    return commands.simulate(run, sel, decode, batch, bt, backend, levels, rm_seed)


@run_command("compare", *RUN, QuestionsFile, DecodeOptions, QuestionBatch, *LOCATE, BackendConfig,
             strategies=(str, typer.Option("cot,self-consistency,least-to-most", "--strategies", help="Comma-separated: "
                                           "cot, backtrack, self-consistency, sc-weighted, least-to-most.")),
             sc_samples=(int, typer.Option(8, "--sc-samples", help="Self-consistency: traces sampled per question.")),
             sc_temperature=(float, typer.Option(0.7, "--sc-temperature", help="Self-consistency: sampling temperature.")),
             located_weight=(float, typer.Option(0.5, "--located-weight", help="sc-weighted: vote weight of a trace "
                                                 "with a located mistake (1.0 without).")),
             summary_only=(bool, typer.Option(False, "--summary-only", help="Run nothing: print the table of what "
                                              "--out holds so far.")))
def compare_cli(run, sel, files, decode, batch, loc, bt, backend, strategies: str, sc_samples: int,
                sc_temperature: float, located_weight: float, summary_only: bool) -> dict:
    """Run prompting strategies on the same questions: accuracy, tokens, model calls and seconds per task, and a plot.

    --batch-size questions run together, each through its strategies in turn, their model calls made as one."""
    from backtrack.runs import commands
    from backtrack.runs.compare import summarise_run_dir

    if summary_only:
        return summarise_run_dir(run.out)
    names = tuple(s.strip() for s in strategies.split(",") if s.strip())
    return commands.compare(run, sel, files, decode, batch, loc, bt, backend, names, sc_samples, sc_temperature,
                            located_weight)


@run_command("find", *RUN, TracesFile, FinderOptions, Batching, BackendConfig)
def find_cli(run, sel, files, finder, batch, backend) -> dict:
    """Score a prompt-based mistake finder on BIG-Bench Mistake (the paper's Table 4 metrics) next to the baselines."""
    from backtrack.runs import commands

    return commands.find(run, sel, files, finder, batch, backend)


@run_command("generate", *RUN, QuestionsFile, *DECODE, BackendConfig)
def generate_cli(run, sel, files, decode, batch, backend) -> dict:
    """Write chains of thought one "Thought N:" step at a time (greedy, newline stop), scored by exact match."""
    from backtrack.runs import commands

    return commands.generate(run, sel, files, decode, batch, backend)


@app.command("merge")
def merge_cli(run_dirs: List[Path] = typer.Argument(..., help="The run directories of shards 0/n .. n-1/n (any order)."),
              out: Path = typer.Option(..., "--out", help="New run directory for the merged run."),
              as_json: bool = JsonOut) -> None:
    """Join the run directories of a run made with --shard i/n into one, equal to the unsharded run."""
    from backtrack.runs.kinds import merge
    from backtrack.runs.render import render_merge

    emit(guarded(lambda: merge(out, run_dirs)), as_json, render_merge)


@app.command("report")
def report_cli(run_dirs: List[Path] = typer.Argument(..., help="Run directories (any kinds; same kinds side by side)."),
               out: Optional[Path] = typer.Option(None, "--out", help="Write the Markdown here (default: print it).")) -> None:
    """Render run directories as Markdown, comparing runs side by side, with their plots."""
    from backtrack.runs.kinds import render_report

    text = guarded(lambda: render_report(run_dirs))
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)


main = app  # the console script `bbm` (pyproject.toml: cli:main)

if __name__ == "__main__":
    main()

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


ThresholdOpt = typer.Option(None, "--threshold", help="Locator score threshold (default: the locator's own; a trained "
                            "locator's is the one it fitted, others use 0.5).")


# ---------------------------------------------------------------- server backend (OpenAI-compatible) options
BackendOpt = typer.Option("auto", "--backend", help="auto (llama on a CPU for GGUF models when llama-cpp-python is "
                          "installed, else hf) | llama: llama.cpp in process on a GGUF | hf: transformers (--model: "
                          "folder, hub id or .gguf) | openai: an OpenAI-compatible completions server (vLLM, "
                          "llama.cpp, hosted) at --base-url serving --model.")
BaseUrlOpt = typer.Option(None, "--base-url", envvar="BBM_BASE_URL",
                          help="--backend openai: the server's API root, e.g. http://127.0.0.1:8000/v1 "
                               "(key for hosted endpoints: OPENAI_API_KEY).")
ConcurrencyOpt = typer.Option(4, "--concurrency", help="--backend openai: requests in flight at once.")
LogprobsModeOpt = typer.Option("raw", "--logprobs-mode", help="--backend openai: raw (server returns temperature-1 "
                               "log-probs; the default of vLLM and llama.cpp; samples drawn at another temperature "
                               "or with top-k/top-p get unknown log-probs, which backtracking's log-prob selection "
                               "refuses) | processed (vLLM started with --logprobs-mode processed_logprobs) | none "
                               "(ask for none: no log-prob selection).")
TimeoutOpt = typer.Option(120.0, "--request-timeout", help="--backend openai: seconds per request before a retry.")
RetriesOpt = typer.Option(5, "--retries", help="--backend openai: retries on 429/5xx/connection errors, with backoff.")
PromptFormatOpt = typer.Option("raw", "--prompt-format", help="raw: the paper's few-shot prompt as plain text | chat: "
                               "the few-shot prompt and question as a user message in the model's chat template "
                               "(--backend llama); the steps and answers are the same either way.")


def server_generator(base_url: Optional[str], model: Optional[str], concurrency: int = 4, logprobs_mode: str = "raw",
                     timeout_s: float = 120.0, retries: int = 5):
    """The OpenAI-compatible server backend from CLI options (the API key comes from OPENAI_API_KEY)."""
    import os

    from backtrack.lm.openai_backend import OpenAIConfig, OpenAIGenerator

    if not base_url or not model:
        raise ValueError("--backend openai needs --base-url URL and --model NAME (the name the server serves)")
    config = OpenAIConfig(base_url=base_url, model=model, api_key=os.environ.get("OPENAI_API_KEY"),
                          concurrency=concurrency, timeout_s=timeout_s, max_retries=retries,
                          logprobs_mode=logprobs_mode, require_logprobs=logprobs_mode != "none")
    gen = OpenAIGenerator(config)
    gen.check_model()  # a wrong name fails here, before any run directory is written
    return gen


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
    from backtrack.runs.shard import merge_runs

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
                 family: str = typer.Option("logreg", "--family", help="logreg (fast CPU model) | transformer (fine-tuned; for a GPU)."),
                 base: str = typer.Option("minilm", "--base", help="transformer: base model folder or hub id; 'minilm' = the packaged MiniLM."),
                 epochs: int = typer.Option(1, help="transformer: training epochs."),
                 device: str = typer.Option("cpu", help="transformer: torch device (cpu, cuda)."),
                 tasks: Optional[List[str]] = TasksOpt, data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Train a step classifier on the dataset; the threshold is chosen on training folds only."""
    from reward_model.commands import train_to_dir, train_transformer_to_dir

    if family == "transformer":
        emit(guarded(lambda: train_transformer_to_dir(out, base, epochs, device, seed, data_dir=data_dir, tasks=tasks)),
             as_json, render_rm_train)
    elif family == "logreg":
        emit(guarded(lambda: train_to_dir(out, _rm_config(features, seed, drop), data_dir, tasks)), as_json, render_rm_train)
    else:
        fail(f"unknown --family {family!r}; use logreg or transformer")


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
                  threshold: Optional[float] = ThresholdOpt,
                  seed: int = typer.Option(0, help="Seed of random/simulated locators."),
                  data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Find the first mistake of every trace in a file."""
    from reward_model.commands import locate_file

    if (model is None) == (locator is None):
        fail("give exactly one of --model DIR or --locator SPEC")
    spec = f"trained:{model}" if model is not None else locator
    emit(guarded(lambda: locate_file(traces, out, spec, threshold, seed, data_dir)), as_json, render_rm_locate)


# ---------------------------------------------------------------- bbm compare / bbm find (prompting strategies, prompt-based finders)
# One set of model options for every command that generates (generate, backtrack, simulate, pipeline,
# compare, find), and one loader behind them.
ModelOpt = typer.Option(None, "--model", help="A packaged model (qwen2.5-coder-1.5b, the default on llama.cpp | "
                        "gemma-3-270m, the default on transformers), a .gguf file, or (--backend hf) a model folder "
                        "or hub id; with --backend openai, the name the server serves.")
GgufOpt = typer.Option(None, "--gguf-file", help="GGUF file inside --model (folder or hub repo).")
DtypeOpt = typer.Option("auto", "--dtype", help="auto (bfloat16 where the CPU/GPU has it natively) | float32 | bfloat16 | float16")
DeviceOpt = typer.Option("cpu", "--device", help="torch device, e.g. cpu or cuda.")
CacheOpt = typer.Option(None, "--cache-dir", envvar="BBM_CACHE_DIR",
                        help="Embedded model, default reward model and backtracking outcomes (default ~/.cache/bbm).")
ThreadsOpt = typer.Option(None, "--threads", help="CPU threads of the model (default: torch's / every core for "
                          "llama.cpp; use 1 on a busy shared machine).")


def load_any_generator(backend: str, model: Optional[str], gguf_file: Optional[str], dtype: str, device: str,
                       cache_dir: Optional[Path], threads: Optional[int], base_url: Optional[str], concurrency: int,
                       logprobs_mode: str, request_timeout: float, retries: int, prompt_format: str = "raw"):
    """An LM (backtrack.lm.generator) from the CLI's model options: llama.cpp in process, transformers, or an
    OpenAI-compatible server (backtrack/backends.py says which `auto` picks)."""
    from backtrack.lm.backends import LlamaOptions, hf_model_source, load_llama, resolve_backend

    if prompt_format not in ("raw", "chat"):
        raise ValueError(f"--prompt-format must be raw or chat, got {prompt_format!r}")
    backend = resolve_backend(backend, model, device)
    if prompt_format == "chat" and backend != "llama":
        raise ValueError("--prompt-format chat needs --backend llama (the chat template comes from the GGUF)")
    if backend == "openai":
        return server_generator(base_url, model, concurrency, logprobs_mode, request_timeout, retries)
    typer.echo(f"loading {model or 'the default model'} ({backend}) ...", err=True)
    if backend == "llama":
        if gguf_file:
            raise ValueError("--gguf-file is for --backend hf; with llama pass the .gguf file as --model")
        gen = load_llama(model, _cache_dir(cache_dir), LlamaOptions(threads=threads))
        if prompt_format == "chat":
            from backtrack.lm.chat_format import ChatFormatGenerator

            gen = ChatFormatGenerator(gen, gen.chat_prefix)
        return gen
    import torch

    from backtrack.lm.hf_backend import ModelConfig, load_generator

    if threads:
        torch.set_num_threads(threads)
    return load_generator(ModelConfig(model=hf_model_source(model, _cache_dir(cache_dir)), gguf_file=gguf_file,
                                      dtype=dtype, device=device, cache_dir=str(_cache_dir(cache_dir))))


def _cache_dir(cache_dir: Optional[Path]) -> Path:
    return Path(cache_dir) if cache_dir else Path.home() / ".cache" / "bbm"


def render_compare(r: dict) -> str:
    head = ["strategy", "n", "accuracy %", "invalid", "tokens/q", "calls/q", "s/q", "tokens", "calls", "reused", "seconds"]

    def rows(block: dict) -> list[list[Any]]:
        return [[name, b["n"], b["accuracy"], b["invalid"], b["mean_tokens"], b["mean_calls"], b["mean_seconds"],
                 b["tokens"], b["calls"], b.get("reused_calls", 0), b["seconds"]] for name, b in block.items()]

    parts = [f"{task}\n{table(rows(block), head)}" for task, block in r["tasks"].items()]
    parts.append(f"all tasks\n{table(rows(r['all']), head)}")
    sc = {name: (b["ties"], b["invalid_samples"]) for name, b in r["all"].items() if name in ("self-consistency", "sc-weighted")}
    notes = "".join(f"\n{name}: {t} tied vote(s), {i} invalid sample answer(s) (counted, not voted)" for name, (t, i) in sc.items())
    notes += ("\nreused: calls answered from the question's shared memo (counted in tokens and calls, not paid again "
              "in seconds)")
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
                summary_only: bool = typer.Option(False, "--summary-only",
                                                  help="Run nothing: print the table of what --out holds so far (other options ignored)."),
                shard: Optional[str] = typer.Option(None, "--shard", help="Run only slice i/n (0-based) of the (question, strategy) "
                                                    "pairs; join with bbm merge."),
                model: Optional[str] = ModelOpt, gguf_file: Optional[str] = GgufOpt, dtype: str = DtypeOpt,
                device: str = DeviceOpt, cache_dir: Optional[Path] = CacheOpt, threads: Optional[int] = ThreadsOpt,
                backend: str = BackendOpt, base_url: Optional[str] = BaseUrlOpt, concurrency: int = ConcurrencyOpt,
                logprobs_mode: str = LogprobsModeOpt, request_timeout: float = TimeoutOpt, retries: int = RetriesOpt,
                prompt_format: str = PromptFormatOpt,
                data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Run prompting strategies on the same questions: accuracy, tokens, model calls and seconds per task, and a plot."""
    from backtrack.runs.compare import run_compare, summarise_run_dir
    from backtrack.runs.shard import parse_shard
    from backtrack.methods.strategies import StrategyConfig, items_from_traces, read_questions
    from bigbench_mistake.dataset import load_all

    def run() -> dict:
        if summary_only:
            return summarise_run_dir(out)
        names = [s.strip() for s in strategies.split(",") if s.strip()]
        config = StrategyConfig(max_steps=max_steps, max_step_tokens=max_step_tokens, seed=seed, sc_samples=k,
                                sc_temperature=temperature, located_weight=located_weight)
        items = read_questions(questions) if questions else items_from_traces(load_all(data_dir, tasks), limit)
        if questions:
            items = [i for i in items if not tasks or i.task in tasks]
            items = [i for n, i in enumerate(items) if limit is None or sum(j.task == i.task for j in items[:n]) < limit]
        if not items:
            raise ValueError("no questions selected")
        parse_shard(shard)  # a bad --shard fails before the model loads
        generator = load_any_generator(backend, model, gguf_file, dtype, device, cache_dir, threads, base_url, concurrency,
                                       logprobs_mode, request_timeout, retries, prompt_format)

        def make(counting_generator):
            return _make_locator(locator, seed, data_dir, _cache_dir(cache_dir), counting_generator)

        return run_compare(items, names, config, generator, out, locator_spec=locator, make_locator=make,
                           progress=lambda line: typer.echo(line, err=True), shard=shard)

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
             shard: Optional[str] = typer.Option(None, "--shard", help="Run only slice i/n (0-based) of the traces; join with bbm merge."),
             model: Optional[str] = ModelOpt, gguf_file: Optional[str] = GgufOpt, dtype: str = DtypeOpt,
             device: str = DeviceOpt, cache_dir: Optional[Path] = CacheOpt, threads: Optional[int] = ThreadsOpt,
             backend: str = BackendOpt, base_url: Optional[str] = BaseUrlOpt, concurrency: int = ConcurrencyOpt,
             logprobs_mode: str = LogprobsModeOpt, request_timeout: float = TimeoutOpt, retries: int = RetriesOpt,
             prompt_format: str = PromptFormatOpt,
             data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Score a prompt-based mistake finder on BIG-Bench Mistake (the paper's Table 4 metrics) next to the baselines."""
    from bigbench_mistake.dataset import load_traces
    from backtrack.runs.shard import parse_shard
    from backtrack.runs.find import run_find, select_traces
    from reward_model.prompt_finders import FinderConfig

    def run() -> dict:
        config = FinderConfig(method=method, mode=mode, reasoning_tokens=reasoning_tokens)
        traces = select_traces(load_traces(traces_files, data_dir, tasks), limit)
        if not traces:
            raise ValueError("no traces selected")
        parse_shard(shard)  # a bad --shard fails before the model loads
        generator = load_any_generator(backend, model, gguf_file, dtype, device, cache_dir, threads, base_url, concurrency,
                                       logprobs_mode, request_timeout, retries, prompt_format)
        return run_find(traces, config, generator, out, progress=lambda line: typer.echo(line, err=True), shard=shard)

    emit(guarded(run), as_json, render_find)


# ---------------------------------------------------------------- bbm backtrack / simulate / pipeline / report
BtSamples = typer.Option(8, "--samples", help="Samples drawn at the mistaken step.")
BtTemperature = typer.Option(1.0, "--temperature", help="Sampling temperature at the mistaken step.")
BtSelection = typer.Option("logprob", "--selection", help="logprob (highest sum; the paper) | mean_logprob "
                           "(length-normalised) | verifier (the sample the verifier scores least likely wrong).")
BtAccept = typer.Option("always", "--accept", help="always (the paper: keep what comes back) | answered (keep the "
                        "original unless the new trace has an answer) | verified (also no mistake at or before the "
                        "replaced step, per the verifier); a rejected sample makes way for the next-best.")
BtVerifier = typer.Option(None, "--verifier", help="Locator judging samples and new traces for --selection verifier / "
                          "--accept verified (default: --locator if it reads text, else trained).")
BtSeed = typer.Option(0, "--seed", help="Sampling seed (stored in config.json).")
BtMaxSteps = typer.Option(64, "--max-steps", help="Cap on the Thoughts of a finished trace.")
BtMaxStepTokens = typer.Option(160, "--max-step-tokens", help="Cap on the tokens of one step.")
BtBatch = typer.Option(4, "--batch-size", help="Traces decoded together (on the development CPU llama.cpp decoded "
                       "4 streams at 18.9 tokens/s, 8 at 15.5 and 16 at 23: measure yours).")
BtLimit = typer.Option(None, "--limit", help="First N traces (questions) per task.")
BtShard = typer.Option(None, "--shard", help="Run only slice i/n (0-based) of the items; join with bbm merge.")


def _backtrack_config(samples: int, temperature: float, selection: str, seed: int, max_steps: int,
                      max_step_tokens: int, batch_size: int, rounds: int = 1, accept: str = "always"):
    from backtrack.methods.backtracking import BacktrackConfig

    return BacktrackConfig(n_samples=samples, temperature=temperature, selection=selection, seed=seed,
                           max_steps=max_steps, max_step_tokens=max_step_tokens, batch_size=batch_size, rounds=rounds,
                           accept=accept)


def _verifier(cfg, locator, threshold: Optional[float], seed: int, data_dir: Optional[Path], cache: Path, gen):
    """The Verifier of a guarded run (None for the paper's algorithm). --threshold applies to it only
    when it is the run's own locator; another verifier uses its own."""
    from backtrack.methods.backtracking import Verifier

    if cfg.verifier is None:
        return None
    if cfg.verifier == cfg.locator:
        return Verifier(locator, threshold)
    return Verifier(_make_locator(cfg.verifier, seed, data_dir, cache, gen), None)


def _progress(total: int, label: str, gen):
    """A tqdm bar on stderr counting items, and the generator wrapped to show tokens/s on it after
    every model call; returns (the wrapped generator, callback per finished batch, close)."""
    from backtrack.lm.progress import ProgressLM, progress_bar

    bar = progress_bar(total, label)
    return ProgressLM(gen, bar), bar.update, bar.close


def _make_locator(spec: str, seed: int, data_dir: Optional[Path], cache_dir: Path, generator=None):
    """A locator from its spec; 'trained' alone means the default classifier, trained once and cached;
    prompt:METHOD asks `generator` (the run's own model)."""
    from reward_model.registry import LocatorOptions, make_locator

    if spec == "trained":
        from reward_model.trained import default_trained_model

        return default_trained_model(cache_dir / "reward_model", data_dir=data_dir)
    return make_locator(spec, LocatorOptions(seed=seed, data_dir=data_dir, generator=generator))


def _sharded_run(out: Path, config: dict, items: list, shard: Optional[str]):
    """The run directory of this shard of `items` (all of them without --shard), the shard's items, and
    a writer that stamps each record with its item's position in the full list (what bbm merge needs)."""
    from backtrack.runs.rundir import RunDir
    from backtrack.runs.shard import ITEM_INDEX, parse_shard, with_shard

    part = parse_shard(shard)
    run_dir = RunDir(out, with_shard(config, part, len(items)))
    mine = part.select(items)
    position = {item.id: p for p, item in mine}
    return run_dir, [item for _, item in mine], lambda rec: run_dir.append({**rec, ITEM_INDEX: position[rec["id"]]})


def _select_traces(traces: list, tasks: Optional[List[str]], limit: Optional[int]) -> list:
    per_task: dict[str, int] = {}
    out = []
    for t in traces:
        if tasks and t.task not in tasks:
            continue
        if limit is not None and per_task.get(t.task, 0) >= limit:
            continue
        per_task[t.task] = per_task.get(t.task, 0) + 1
        out.append(t)
    return out


def render_backtrack(r: dict) -> str:
    cols = ["n", "n_originally_correct", "n_originally_wrong", "delta_acc_correct", "delta_acc_wrong",
            "accuracy_before", "accuracy_after", "backtracked", "uncorrectable", "rejected", "invalid_after", "tokens",
            "seconds"]
    rows = [[task, *(b.get(c) for c in cols)] for task, b in r["results"]["tasks"].items()]
    rows.append(["overall", *(r["results"]["overall"].get(c) for c in cols)])
    head = ["task", "n", "n✓", "n✗", "Δacc✓", "Δacc✗", "acc before", "acc after", "backtracked", "uncorrectable",
            "rejected", "invalid after", "tokens", "s"]
    return f"{r['run_dir']}  locator {r['locator']}  model {r['model']}\n" + table(rows, head)


@app.command("backtrack")
def backtrack_cli(locator: str = typer.Option(..., "--locator", help="gold | random | random:dist | simulated:X | "
                                              "trained[:DIR] | prompt:METHOD (where the mistake is)"),
                  out: Path = typer.Option(..., "--out", help="Run directory (rerun the same command to resume)."),
                  tasks: Optional[List[str]] = TasksOpt, limit: Optional[int] = BtLimit,
                  traces_files: Optional[List[Path]] = typer.Option(None, "--traces",
                                                                     help="Traces to correct (default: the dataset)."),
                  rounds: int = typer.Option(1, "--rounds", help="Locate and backtrack again on the new trace R times."),
                  samples: int = BtSamples, temperature: float = BtTemperature, selection: str = BtSelection,
                  accept: str = BtAccept, verifier: Optional[str] = BtVerifier,
                  threshold: Optional[float] = ThresholdOpt,
                  seed: int = BtSeed, max_steps: int = BtMaxSteps, max_step_tokens: int = BtMaxStepTokens,
                  batch_size: int = BtBatch, shard: Optional[str] = BtShard,
                  model: Optional[str] = ModelOpt, gguf_file: Optional[str] = GgufOpt, dtype: str = DtypeOpt,
                  device: str = DeviceOpt, cache_dir: Optional[Path] = CacheOpt, threads: Optional[int] = ThreadsOpt,
                  backend: str = BackendOpt, base_url: Optional[str] = BaseUrlOpt, concurrency: int = ConcurrencyOpt,
                  logprobs_mode: str = LogprobsModeOpt, request_timeout: float = TimeoutOpt, retries: int = RetriesOpt,
                  prompt_format: str = PromptFormatOpt,
                  data_dir: Optional[Path] = DataDir,
                  as_json: bool = JsonOut) -> None:
    """Table 6: backtrack traces at the located mistake; Δaccuracy on originally right and wrong traces."""
    from backtrack.runs.cache import OutcomeCache
    from backtrack.runs.experiment import BacktrackRunConfig, run_backtrack, summarise_backtrack
    from backtrack.runs.shard import parse_shard
    from bigbench_mistake.dataset import load_traces

    def run() -> dict:
        traces = _select_traces(load_traces(traces_files, data_dir), tasks, limit)
        if not traces:
            raise ValueError("no traces selected (check --task / --traces)")
        parse_shard(shard)  # a bad --shard fails before the model loads
        cache = _cache_dir(cache_dir)
        gen = load_any_generator(backend, model, gguf_file, dtype, device, cache_dir, threads, base_url, concurrency,
                                 logprobs_mode, request_timeout, retries, prompt_format)
        cfg = BacktrackRunConfig(locator=locator, model=gen.name, tasks=tuple(tasks or ()), limit=limit,
                                 traces_files=tuple(str(p) for p in traces_files or ()), threshold=threshold,
                                 batch_size=batch_size, verifier=verifier,
                                 backtrack=_backtrack_config(samples, temperature, selection, seed, max_steps,
                                                             max_step_tokens, batch_size, rounds, accept))
        run_dir, mine, write = _sharded_run(out, cfg.to_json(), traces, shard)
        loc = _make_locator(locator, seed, data_dir, cache, gen)
        judge = _verifier(cfg, loc, threshold, seed, data_dir, cache, gen)
        done = run_dir.done_keys()
        shown, step, close = _progress(len([t for t in mine if t.id not in done]), "backtrack", gen)
        try:
            run_backtrack(mine, loc, shown, cfg, OutcomeCache(cache / "backtrack_outcomes.jsonl"),
                          write, done, step, judge)
        finally:
            close()
        results = summarise_backtrack(run_dir.records())
        run_dir.write_results(results)
        return {"run_dir": str(out), "locator": locator, "model": gen.name, "results": results}

    emit(guarded(run), as_json, render_backtrack)


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


@app.command("simulate")
def simulate_cli(accuracies: str = typer.Option("0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95,1.0", "--accuracies",
                                                help="Comma-separated simulated reward-model accuracies."),
                 out: Path = typer.Option(..., "--out", help="Run directory (rerun the same command to resume)."),
                 tasks: Optional[List[str]] = TasksOpt, limit: Optional[int] = BtLimit,
                 rm_seed: int = typer.Option(0, "--rm-seed", help="Seed of the simulated reward model."),
                 samples: int = BtSamples, temperature: float = BtTemperature, selection: str = BtSelection,
                 seed: int = BtSeed, max_steps: int = BtMaxSteps, max_step_tokens: int = BtMaxStepTokens,
                 batch_size: int = BtBatch, shard: Optional[str] = BtShard,
                 model: Optional[str] = ModelOpt, gguf_file: Optional[str] = GgufOpt, dtype: str = DtypeOpt,
                 device: str = DeviceOpt, cache_dir: Optional[Path] = CacheOpt, threads: Optional[int] = ThreadsOpt,
                 backend: str = BackendOpt, base_url: Optional[str] = BaseUrlOpt, concurrency: int = ConcurrencyOpt,
                 logprobs_mode: str = LogprobsModeOpt, request_timeout: float = TimeoutOpt, retries: int = RetriesOpt,
                 prompt_format: str = PromptFormatOpt,
                 data_dir: Optional[Path] = DataDir,
                 as_json: bool = JsonOut) -> None:
    """Figure 2: Δaccuracy✓ / Δaccuracy✗ against the simulated reward model's accuracy, with break-even points."""
    from backtrack.runs.cache import OutcomeCache
    from backtrack.runs.shard import parse_shard
    from backtrack.runs.simulate import SimulateConfig, plot_run_dir, run_simulate, simulated_draws, summarise_simulate
    from bigbench_mistake.dataset import load_all

    def run() -> dict:
        levels = tuple(float(a) for a in accuracies.split(",") if a.strip())
        parse_shard(shard)  # a bad --shard fails before the model loads
        all_traces = load_all(data_dir)
        traces = _select_traces(all_traces, tasks, limit)
        cache = _cache_dir(cache_dir)
        gen = load_any_generator(backend, model, gguf_file, dtype, device, cache_dir, threads, base_url, concurrency,
                                 logprobs_mode, request_timeout, retries, prompt_format)
        cfg = SimulateConfig(accuracies=levels, model=gen.name, tasks=tuple(tasks or ()), limit=limit, seed=rm_seed,
                             batch_size=batch_size,
                             backtrack=_backtrack_config(samples, temperature, selection, seed, max_steps,
                                                         max_step_tokens, batch_size))
        run_dir, mine, write = _sharded_run(out, cfg.to_json(), traces, shard)
        draws = simulated_draws(mine, all_traces, rm_seed)
        outcome_cache = OutcomeCache(cache / "backtrack_outcomes.jsonl")
        done = run_dir.done_keys()
        shown, step, close = _progress(len([t for t in mine if t.id not in done]), "simulate", gen)
        try:
            computed = run_simulate(mine, draws, shown, cfg, outcome_cache, write, done, step)
        finally:
            close()
        results = summarise_simulate(run_dir.records(), levels)
        run_dir.write_results(results)
        plot = plot_run_dir(results, out)
        return {"run_dir": str(out), "model": gen.name, "pairs_computed": computed,
                "cache_hits": outcome_cache.hits, "plot": plot, "results": results}

    emit(guarded(run), as_json, render_simulate)


def render_pipeline(r: dict) -> str:
    stories = "\n\n".join(r["corrections"]) or "(no trace was changed)"
    return f"{stories}\n\n{render_backtrack(r)}\n\ngeneration stop reasons: {r['results']['generation_stop_reasons']}"


@app.command("pipeline")
def pipeline_cli(out: Path = typer.Option(Path("runs/pipeline"), "--out", help="Run directory (rerun to resume)."),
                 tasks: Optional[List[str]] = TasksOpt,
                 limit: Optional[int] = typer.Option(2, "--limit", help="Questions per task."),
                 questions: Optional[Path] = typer.Option(None, "--questions",
                                                          help="JSONL questions (task, input, target) instead of the dataset's."),
                 locator: str = typer.Option("trained", "--locator",
                                             help="trained (the default classifier, trained once and cached) | trained:DIR | "
                                                  "random | prompt:METHOD ..."),
                 samples: int = BtSamples, temperature: float = BtTemperature, selection: str = BtSelection,
                 accept: str = BtAccept, verifier: Optional[str] = BtVerifier,
                 threshold: Optional[float] = ThresholdOpt,
                 seed: int = BtSeed, max_steps: int = typer.Option(24, "--max-steps", help="Cap on the Thoughts of a trace."),
                 max_step_tokens: int = typer.Option(96, "--max-step-tokens", help="Cap on the tokens of one step."),
                 batch_size: int = BtBatch, shard: Optional[str] = BtShard,
                 model: Optional[str] = ModelOpt, gguf_file: Optional[str] = GgufOpt, dtype: str = DtypeOpt,
                 device: str = DeviceOpt, cache_dir: Optional[Path] = CacheOpt, threads: Optional[int] = ThreadsOpt,
                 backend: str = BackendOpt, base_url: Optional[str] = BaseUrlOpt, concurrency: int = ConcurrencyOpt,
                 logprobs_mode: str = LogprobsModeOpt, request_timeout: float = TimeoutOpt, retries: int = RetriesOpt,
                 prompt_format: str = PromptFormatOpt,
                 data_dir: Optional[Path] = DataDir,
                 as_json: bool = JsonOut) -> None:
    """The main job: generate traces, locate the first mistake, backtrack, and score before/after."""
    from backtrack.runs.cache import OutcomeCache
    from backtrack.runs.pipeline import PipelineConfig, before_after, run_pipeline, summarise_pipeline
    from backtrack.runs.shard import parse_shard
    from bigbench_mistake.dataset import load_all
    from bigbench_mistake.questions import questions_from_traces, read_questions

    def run() -> dict:
        items = read_questions(questions) if questions else questions_from_traces(load_all(data_dir, tasks), limit)
        if questions and tasks:
            items = [i for i in items if i.task in tasks]
        parse_shard(shard)  # a bad --shard fails before the model loads
        cache = _cache_dir(cache_dir)
        gen = load_any_generator(backend, model, gguf_file, dtype, device, cache_dir, threads, base_url, concurrency,
                                 logprobs_mode, request_timeout, retries, prompt_format)
        cfg = PipelineConfig(model=gen.name, locator=locator, tasks=tuple(tasks or ()), limit=limit,
                             questions_file=str(questions) if questions else None, threshold=threshold,
                             batch_size=batch_size, verifier=verifier,
                             backtrack=_backtrack_config(samples, temperature, selection, seed, max_steps,
                                                         max_step_tokens, batch_size, accept=accept))
        run_dir, mine, write = _sharded_run(out, cfg.to_json(), items, shard)
        loc = _make_locator(locator, seed, data_dir, cache, gen)
        judge = _verifier(cfg, loc, threshold, seed, data_dir, cache, gen)
        done = run_dir.done_keys()
        shown, step, close = _progress(len([i for i in mine if i.id not in done]), "pipeline", gen)
        try:
            run_pipeline(mine, shown, loc, cfg, OutcomeCache(cache / "backtrack_outcomes.jsonl"), write, done, step,
                         judge)
        finally:
            close()
        records = list(run_dir.records())
        results = summarise_pipeline(records)
        run_dir.write_results(results)
        return {"run_dir": str(out), "locator": locator, "model": gen.name, "results": results,
                "corrections": [s for s in map(before_after, records) if s]}

    emit(guarded(run), as_json, render_pipeline)


@app.command("report")
def report_cli(run_dirs: List[Path] = typer.Argument(..., help="Run directories (any kinds; same kinds side by side)."),
               out: Optional[Path] = typer.Option(None, "--out", help="Write the Markdown here (default: print it).")) -> None:
    """Render run directories as Markdown, comparing runs side by side, with their plots."""
    from backtrack.runs.report import render_report

    text = guarded(lambda: render_report(run_dirs))
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)


# ---------------------------------------------------------------- bbm generate (step-wise trace generation)
def render_generate(r: dict) -> str:
    rows = [[task, v["traces"], v["correct"], v["wrong"], v["invalid"], v["accuracy"], v["mean_steps"],
             ", ".join(f"{k}={n}" for k, n in sorted(v["stop_reasons"].items())), v["tokens"]]
            for task, v in [*r["tasks"].items(), ("total", r["overall"])]]
    head = (f"{r['run_dir']}: {r['new_traces']} new trace(s), {r['skipped_done']} already done; model {r['model']}, "
            f"seed {r['seed']}; {r['new_tokens']} tokens in {r['seconds']} s ({r['tokens_per_s']} tokens/s)\n")
    return head + table(rows, ["task", "traces", "correct", "wrong", "invalid", "acc %", "mean steps", "stop reasons", "tokens"])


@app.command("generate")
def generate_cli(task: Optional[str] = typer.Option(None, "--task", "-t", help="BIG-Bench Mistake task whose questions to answer "
                                                    "(with --questions: only that task's questions)."),
                 questions: Optional[Path] = typer.Option(None, "--questions", help="JSONL file of questions: task, input, target (id optional)."),
                 out: Path = typer.Option(..., "--out", help="Run directory (rerun the same command to resume)."),
                 limit: Optional[int] = typer.Option(None, "--limit", help="First N questions."),
                 max_steps: int = typer.Option(16, "--max-steps", help="Cap on the steps of a trace."),
                 max_tokens: int = typer.Option(160, "--max-tokens", help="Cap on the tokens of a step."),
                 batch_size: int = BtBatch,
                 seed: int = typer.Option(0, "--seed", help="torch seed (greedy decoding uses none; stored with the run)."),
                 model: Optional[str] = ModelOpt, gguf_file: Optional[str] = GgufOpt, dtype: str = DtypeOpt,
                 device: str = DeviceOpt, cache_dir: Optional[Path] = CacheOpt, threads: Optional[int] = ThreadsOpt,
                 backend: str = BackendOpt, base_url: Optional[str] = BaseUrlOpt, concurrency: int = ConcurrencyOpt,
                 logprobs_mode: str = LogprobsModeOpt, request_timeout: float = TimeoutOpt, retries: int = RetriesOpt,
                 prompt_format: str = PromptFormatOpt,
                 shard: Optional[str] = BtShard,
                 data_dir: Optional[Path] = DataDir, as_json: bool = JsonOut) -> None:
    """Write chains of thought one "Thought N:" step at a time (greedy, newline stop), scored by exact match."""
    def run() -> dict:
        import torch
        from tqdm import tqdm

        from backtrack.methods.decoding import DecodeConfig
        from backtrack.runs.generate import GenerateConfig, generate, select_questions
        from backtrack.runs.shard import parse_shard

        parse_shard(shard)  # a bad --shard fails before the model loads
        torch.manual_seed(seed)
        decode = DecodeConfig(max_steps=max_steps, max_tokens=max_tokens, batch_size=batch_size)
        probe = GenerateConfig(model="?", task=task, questions=str(questions) if questions else None, limit=limit,
                               seed=seed, decode=decode)
        select_questions(probe, data_dir)  # fails fast on a bad question file, before loading a model
        gen = load_any_generator(backend, model, gguf_file, dtype, device, cache_dir, threads, base_url, concurrency,
                                 logprobs_mode, request_timeout, retries, prompt_format)
        config = GenerateConfig(model=gen.name, task=task, questions=probe.questions, limit=limit, seed=seed, decode=decode)
        bars: list = []
        counts = {"tokens": 0}

        def on_start(todo: int, done: int) -> None:
            if done:
                typer.echo(f"resuming: {done} trace(s) already in {out}", err=True)
            bars.append(tqdm(total=todo, desc="traces", unit="trace", file=sys.stderr))

        def on_record(record: dict) -> None:
            bar = bars[0]
            counts["tokens"] += record["generation"]["tokens"]
            bar.set_postfix_str(f"{counts['tokens'] / max(bar.format_dict['elapsed'], 1e-9):.1f} tokens/s", refresh=False)
            bar.update(1)

        try:
            return generate(config, gen, out, data_dir, on_record, on_start, shard=parse_shard(shard))
        except KeyboardInterrupt:
            fail(f"\ninterrupted: every finished trace is in {out / 'samples.jsonl'}; rerun the same command to resume", 130)
        finally:
            for bar in bars:
                bar.close()

    emit(guarded(run), as_json, render_generate)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

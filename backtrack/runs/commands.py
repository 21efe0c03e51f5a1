"""What each run command does, from its validated option groups to the dict it prints: select the
items, load the model, make the locator, and hand the work to the executor (backtrack/runs/executor.py).
cli.py only declares the commands; every argument is checked (the option groups' __post_init__, the
item selection, the locator spec) before a model loads or a run directory is written."""
from __future__ import annotations

from typing import Any

from backtrack.lm.backends import BackendConfig, load_lm
from backtrack.methods.backtracking import BacktrackConfig, Verifier
from backtrack.runs.cache import OutcomeCache
from backtrack.runs.executor import Work
from backtrack.runs.kinds import run_kind
from backtrack.runs.options import (BacktrackOptions, Batching, DecodeOptions, FinderOptions, LocateOptions,
                                    QuestionBatch, QuestionsFile, RunOptions, Selection, TracesFile)


def make_locator(spec: str, seed: int, sel: Selection, backend: BackendConfig, lm: Any = None):
    """A locator from its spec; bare 'trained' is the default classifier, trained once and cached;
    prompt:METHOD asks `lm` (the run's own model)."""
    from reward_model.registry import LocatorOptions, make_locator as make

    return make(spec, LocatorOptions(seed=seed, data_dir=sel.data_dir, generator=lm, cache_dir=backend.cache))


def _verifier(cfg: Any, locator: Any, loc: LocateOptions, seed: int, sel: Selection, backend: BackendConfig, lm: Any):
    """The Verifier of a guarded run (None for the paper's algorithm). --threshold applies to it only
    when it is the run's own locator; another verifier uses its own."""
    if cfg.verifier is None:
        return None
    if cfg.verifier == cfg.locator:
        return Verifier(locator, loc.threshold)
    return Verifier(make_locator(cfg.verifier, seed, sel, backend, lm), None)


def _correction_setup(cfg: Any, run: RunOptions, sel: Selection, loc: LocateOptions, backend: BackendConfig, lm: Any):
    """The locator, the verifier and the outcome cache of a run that corrects traces."""
    locator = make_locator(loc.locator, run.seed, sel, backend, lm)
    return locator, _verifier(cfg, locator, loc, run.seed, sel, backend, lm), \
        OutcomeCache(backend.cache / "backtrack_outcomes.jsonl")


def _correctable(traces: list) -> list:
    """Traces bbm can backtrack: of one of the five tasks (it needs their few-shot prompt) and with a
    target (it scores before and after). Checked before the model loads."""
    from bigbench_mistake.tasks import get_task

    for t in traces:
        get_task(t.task)
        if t.target is None:
            raise ValueError(f"trace {t.id} has no target: backtracking scores answers before and after")
    return traces


def _bt_config(bt: BacktrackOptions, decode: DecodeOptions, batch: Batching, seed: int) -> BacktrackConfig:
    return BacktrackConfig(n_samples=bt.samples, temperature=bt.temperature, selection=bt.selection, seed=seed,
                           max_steps=decode.max_steps, max_step_tokens=decode.max_step_tokens,
                           stop_repeats=decode.stop_repeats, step_cap_factor=decode.step_cap_factor,
                           batch_size=batch.batch_size, rounds=bt.rounds, accept=bt.accept)


def backtrack(run: RunOptions, sel: Selection, files: TracesFile, decode: DecodeOptions, batch: Batching,
              loc: LocateOptions, bt: BacktrackOptions, backend: BackendConfig) -> dict[str, Any]:
    from backtrack.runs.experiment import BacktrackRunConfig, run_backtrack

    traces = _correctable(sel.traces(files.traces))
    bt_cfg = _bt_config(bt, decode, batch, run.seed)
    probe = dict(locator=loc.locator, tasks=sel.tasks, limit=sel.limit, traces_files=tuple(map(str, files.traces)),
                 threshold=loc.threshold, batch_size=batch.batch_size, verifier=loc.verifier, backtrack=bt_cfg)
    BacktrackRunConfig(model="?", **probe)  # its checks (e.g. --rounds with gold) before the model loads
    lm = load_lm(backend)
    cfg = BacktrackRunConfig(model=lm.name, **probe)
    locator, judge, cache = _correction_setup(cfg, run, sel, loc, backend, lm)

    def work(w: Work) -> None:
        run_backtrack(w.todo, locator, w.lm, cfg, cache, w.write, set(), w.step, judge)

    return {"locator": loc.locator, "model": lm.name,
            **run_kind("backtrack", cfg.to_json(), traces, run.out, run.shard, lm, work)}


def pipeline(run: RunOptions, sel: Selection, files: QuestionsFile, decode: DecodeOptions, batch: Batching,
             loc: LocateOptions, bt: BacktrackOptions, backend: BackendConfig) -> dict[str, Any]:
    from backtrack.runs.pipeline import PipelineConfig, before_after, run_pipeline

    items = sel.questions(files.questions)
    probe = dict(locator=loc.locator, tasks=sel.tasks, limit=sel.limit,
                 questions_file=str(files.questions) if files.questions else None, threshold=loc.threshold,
                 batch_size=batch.batch_size, verifier=loc.verifier, backtrack=_bt_config(bt, decode, batch, run.seed))
    PipelineConfig(model="?", **probe)
    lm = load_lm(backend)
    cfg = PipelineConfig(model=lm.name, **probe)
    locator, judge, cache = _correction_setup(cfg, run, sel, loc, backend, lm)

    def work(w: Work) -> None:
        run_pipeline(w.todo, w.lm, locator, cfg, cache, w.write, set(), w.step, judge)

    def stories(records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"corrections": [s for s in map(before_after, records) if s]}

    return {"locator": loc.locator, "model": lm.name,
            **run_kind("pipeline", cfg.to_json(), items, run.out, run.shard, lm, work, summary=stories)}


def simulate(run: RunOptions, sel: Selection, decode: DecodeOptions, batch: Batching, bt: BacktrackOptions,
             backend: BackendConfig, accuracies: tuple[float, ...], rm_seed: int) -> dict[str, Any]:
    from backtrack.runs.simulate import SimulateConfig, run_simulate, simulated_draws
    from bigbench_mistake.dataset import load_all

    traces = sel.traces()
    probe = dict(accuracies=accuracies, tasks=sel.tasks, limit=sel.limit, seed=rm_seed, batch_size=batch.batch_size,
                 backtrack=_bt_config(bt, decode, batch, run.seed))
    SimulateConfig(model="?", **probe)
    lm = load_lm(backend)
    cfg = SimulateConfig(model=lm.name, **probe)
    draws = simulated_draws(traces, load_all(sel.data_dir), rm_seed)
    cache = OutcomeCache(backend.cache / "backtrack_outcomes.jsonl")

    def work(w: Work) -> dict[str, Any]:
        return {"pairs_computed": run_simulate(w.todo, draws, w.lm, cfg, cache, w.write, set(), w.step)}

    out = run_kind("simulate", cfg.to_json(), traces, run.out, run.shard, lm, work)
    return {"model": lm.name, "cache_hits": cache.hits, **out}


def compare(run: RunOptions, sel: Selection, files: QuestionsFile, decode: DecodeOptions, batch: QuestionBatch,
            loc: LocateOptions, bt: BacktrackOptions, backend: BackendConfig, strategies: tuple[str, ...],
            sc_samples: int, sc_temperature: float, located_weight: float) -> dict[str, Any]:
    from backtrack.methods.strategies import StrategyConfig, get_strategy
    from backtrack.runs.compare import run_compare

    for name in strategies:
        get_strategy(name)
    if bt.rounds != 1:
        raise ValueError("compare: the backtrack strategy corrects one mistake per question (--rounds 1)")
    config = StrategyConfig(max_steps=decode.max_steps, max_step_tokens=decode.max_step_tokens, seed=run.seed,
                            stop_repeats=decode.stop_repeats, step_cap_factor=decode.step_cap_factor,
                            bt_selection=bt.selection, bt_accept=bt.accept,
                            bt_samples=bt.samples, bt_temperature=bt.temperature, sc_samples=sc_samples,
                            sc_temperature=sc_temperature, located_weight=located_weight, threshold=loc.threshold)
    items = sel.questions(files.questions)
    lm = load_lm(backend)
    return run_compare(items, list(strategies), config, lm, run.out, locator_spec=loc.locator,
                       make_locator=lambda counting: make_locator(loc.locator, run.seed, sel, backend, counting),
                       shard=run.shard, batch_size=batch.batch_size)


def find(run: RunOptions, sel: Selection, files: TracesFile, finder: FinderOptions, batch: Batching,
         backend: BackendConfig) -> dict[str, Any]:
    from backtrack.runs.find import run_find

    traces = sel.traces(files.traces)
    return run_find(traces, finder.finder_config(), load_lm(backend), run.out, shard=run.shard,
                    batch_size=batch.batch_size)


def generate(run: RunOptions, sel: Selection, files: QuestionsFile, decode: DecodeOptions, batch: Batching,
             backend: BackendConfig) -> dict[str, Any]:
    from backtrack.methods.decoding import DecodeConfig
    from backtrack.runs.generate import GenerateConfig, generate as run_generate, select_questions
    from backtrack.runs.shard import parse_shard

    if not files.questions and len(sel.tasks) != 1:
        raise ValueError("generate: give one --task (the dataset's questions of that task) or --questions FILE")
    task = sel.tasks[0] if len(sel.tasks) == 1 else None
    decode_cfg = DecodeConfig(max_steps=decode.max_steps, max_tokens=decode.max_step_tokens, batch_size=batch.batch_size,
                              stop_repeats=decode.stop_repeats, step_cap_factor=decode.step_cap_factor)
    probe = dict(task=task, questions=str(files.questions) if files.questions else None, limit=sel.limit,
                 seed=run.seed, decode=decode_cfg)
    if not select_questions(GenerateConfig(model="?", **probe), sel.data_dir):
        raise ValueError("no questions selected (check --task, --limit and the questions file)")
    lm = load_lm(backend)
    if backend.engine == "hf":
        import torch

        torch.manual_seed(run.seed)
    return run_generate(GenerateConfig(model=lm.name, **probe), lm, run.out, sel.data_dir, shard=parse_shard(run.shard))

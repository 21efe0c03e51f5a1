"""`bbm generate`: the paper's trace generation (few-shot "Thought N:" prompt, greedy, newline stop)
over BIG-Bench Mistake questions or a question file, one JSONL record per trace in a run directory.

Each record is in the dataset's shape (task, id, input, steps, answer, target, mistake_index) plus
`correct`, `answer_status` ("correct" | "wrong" | "invalid", exact match after the task's
normalisation), `invalid_reason`, and `generation` (model, seed, tokens, seconds, stop reason,
per-step tokens and log-probs). `mistake_index` is null: generated traces carry no mistake
annotation (`mistake_annotated: false` says so), but the file feeds `bbm data validate` and every
command that reads traces.

Rerunning the same command resumes: questions whose id is already in samples.jsonl are skipped.
`limit` is not part of the run's config, so a rerun with a larger --limit extends the same run.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from bigbench_mistake.questions import Question, first_per_task, questions_from_traces, read_questions  # noqa: F401 (re-exported)
from bigbench_mistake.tasks import get_task

from backtrack.methods.decoding import DecodeConfig, DecodedTrace, TraceRequest, iter_decode_traces, with_loop_rule
from backtrack.lm.generator import LM
from backtrack.runs.executor import Work, execute
from backtrack.runs.shard import WHOLE, Shard


@dataclass(frozen=True)
class GenerateConfig:
    model: str                       # the generator's name (model + dtype)
    task: str | None = None          # a BIG-Bench Mistake task, or a filter on the question file
    questions: str | None = None     # JSONL file with task, input, target (and optional id)
    limit: int | None = None         # first N questions of each task (not part of the run's identity)
    seed: int = 0
    decode: DecodeConfig = DecodeConfig()

    def __post_init__(self) -> None:
        if self.task is None and self.questions is None:
            raise ValueError("give a task (--task) or a question file (--questions)")
        if self.task is not None:
            get_task(self.task)
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")

    def run_config(self) -> dict[str, Any]:
        """What identifies the run directory: everything that changes a record."""
        d = asdict(self)
        d.pop("limit")
        with_loop_rule(d["decode"])
        d["kind"] = "generate"
        return d


def dataset_questions(task: str, data_dir: str | Path | None = None) -> list[Question]:
    """The task's questions from BIG-Bench Mistake (each distinct input once, in file order)."""
    from bigbench_mistake.dataset import load_task

    return questions_from_traces(load_task(task, data_dir))


def select_questions(config: GenerateConfig, data_dir: str | Path | None = None) -> list[Question]:
    qs = read_questions(config.questions) if config.questions else dataset_questions(config.task, data_dir)
    if config.questions and config.task:
        qs = [q for q in qs if q.task == config.task]
    return first_per_task(qs, (), config.limit)


def make_record(q: Question, trace: DecodedTrace, config: GenerateConfig) -> dict[str, Any]:
    scored = get_task(q.task).score(trace.steps, q.target)
    return {
        "task": q.task, "id": q.id, "input": q.input, "steps": list(trace.steps), "answer": scored.answer,
        "target": q.target, "mistake_index": None, "mistake_annotated": False,
        "correct": scored.correct, "answer_status": scored.status, "invalid_reason": scored.invalid_reason,
        "generation": {
            "model": config.model, "seed": config.seed, "tokens": trace.n_tokens,
            "seconds": round(trace.seconds, 3), "stop_reason": trace.stop_reason,
            "step_tokens": [s.n_tokens for s in trace.new_steps],
            "step_logprobs": [round(s.logprob, 6) for s in trace.new_steps],
            "step_stop_reasons": [s.stop_reason for s in trace.new_steps],
        },
    }


def results_from_records(config: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The part of results.json that depends only on the records (what `bbm merge` recomputes)."""
    return {**summarise(records), "model": config["model"], "seed": config["seed"]}


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def block(rs: Sequence[dict[str, Any]]) -> dict[str, Any]:
        n = len(rs)
        status = {k: sum(r["answer_status"] == k for r in rs) for k in ("correct", "wrong", "invalid")}
        stops: dict[str, int] = {}
        for r in rs:
            stops[r["generation"]["stop_reason"]] = stops.get(r["generation"]["stop_reason"], 0) + 1
        tokens = sum(r["generation"]["tokens"] for r in rs)
        return {"traces": n, **status, "accuracy": round(100 * status["correct"] / n, 2) if n else None,
                "stop_reasons": stops, "tokens": tokens,
                "mean_steps": round(sum(len(r["steps"]) for r in rs) / n, 2) if n else None}

    tasks = sorted({r["task"] for r in records})
    return {"overall": block(records), "tasks": {t: block([r for r in records if r["task"] == t]) for t in tasks}}


def generate(config: GenerateConfig, lm: LM, out_dir: str | Path, data_dir: str | Path | None = None,
             shard: Shard = WHOLE) -> dict[str, Any]:
    """Decode every selected question (of this shard) not yet in out_dir; each record is on disk before
    the next is decoded. Records carry `item_index`, the question's position in the full list.
    results.json covers the selected questions (a run directory may hold more: --limit is not part of
    the run's identity)."""
    if lm.name != config.model:
        raise ValueError(f"config names model {config.model!r} but the model is {lm.name!r}")
    questions = select_questions(config, data_dir)
    mine = {q.id for _, q in shard.select(questions)}
    counts = {"tokens": 0, "seconds": 0.0}

    def work(w: Work) -> None:
        start = time.perf_counter()
        requests = [TraceRequest(q.task, q.input) for q in w.todo]
        for i, trace in iter_decode_traces(w.lm, requests, config.decode):
            w.write(make_record(w.todo[i], trace, config))
            counts["tokens"] += trace.n_tokens
            w.step(1)
        counts["seconds"] = time.perf_counter() - start

    def results(cfg: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
        return results_from_records(cfg, [r for r in records if r["id"] in mine])

    out = execute(config.run_config(), questions, out_dir, shard, lm, work, results, key_field="id")
    seconds = counts["seconds"]
    return {**out["results"], "run_dir": out["run_dir"], "new_traces": out["new_items"],
            "skipped_done": out["skipped_done"], "dropped_partial_lines": out["dropped_partial_lines"],
            "seconds": round(seconds, 2), "new_tokens": counts["tokens"],
            "tokens_per_s": round(counts["tokens"] / seconds, 2) if out["new_items"] and seconds else None}

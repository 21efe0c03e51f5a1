"""Backtracking (Tyen et al. 2023, section 5): correct a trace at its first mistake.

Given a trace and a mistake location j (from any locator):
  1. re-sample step j `n_samples` times at `temperature`, with the same prompt and steps 0..j-1;
  2. drop samples identical to the mistaken step (after whitespace normalisation);
  3. keep the surviving sample with the highest log-probability (or mean log-prob per token);
  4. finish the trace greedily from there.
No location -> the trace is kept as it is. If every sample repeats the mistake, the trace is kept
and counted as `uncorrectable`. With `rounds` > 1 the locator is asked again about the new trace.

Backtracking one trace at one location is deterministic (the sampling seed is derived from the run
seed, the trace id, the location and the round), which is what makes the cache in `cache.py` sound.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import get_task

from .decoding import DecodeConfig, TraceRequest, decode_traces
from .generator import Generator, Step

SELECTIONS = ("logprob", "mean_logprob")


@dataclass(frozen=True)
class BacktrackConfig:
    n_samples: int = 8
    temperature: float = 1.0
    selection: str = "logprob"  # "logprob": highest sum; "mean_logprob": highest per-token mean (length-normalised)
    top_k: int | None = None
    top_p: float | None = None
    max_step_tokens: int = 160
    max_steps: int = 64  # cap on the whole trace when finishing greedily (dyck traces run to ~40 steps)
    batch_size: int = 8  # traces finished together
    rounds: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ValueError("n_samples must be >= 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0 (backtracking samples; use greedy decoding for T=0)")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.rounds < 1:
            raise ValueError("rounds must be >= 1")
        if self.max_step_tokens < 1 or self.max_steps < 1 or self.batch_size < 1:
            raise ValueError("max_step_tokens, max_steps and batch_size must be >= 1")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be >= 1 when given")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1] when given")

    def sampling_key(self) -> dict[str, Any]:
        """Every setting that changes which samples are drawn, which one is kept, or how the trace ends."""
        return {k: v for k, v in asdict(self).items() if k != "batch_size"}  # batching never changes greedy output


def normalise_whitespace(text: str) -> str:
    return " ".join(text.split())


def sample_seed(seed: int, trace_id: str, location: int, round_index: int) -> int:
    digest = hashlib.sha256(f"{seed}|{trace_id}|{location}|{round_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def selection_score(step: Step, selection: str) -> float:
    if selection == "mean_logprob":
        return step.logprob / max(step.n_tokens, 1)
    return step.logprob


def choose_replacement(samples: Sequence[Step], mistaken_step: str, selection: str) -> tuple[int | None, list[dict]]:
    """Index of the kept sample (None if every sample repeats the mistake) and a record of each sample."""
    bad = normalise_whitespace(mistaken_step)
    considered = [
        {"text": s.text, "logprob": s.logprob, "n_tokens": s.n_tokens, "stop_reason": s.stop_reason,
         "same_as_mistake": normalise_whitespace(s.text) == bad}
        for s in samples
    ]
    survivors = [i for i, c in enumerate(considered) if not c["same_as_mistake"]]
    if not survivors:
        return None, considered
    # max() keeps the first of equal scores: ties go to the earliest sample, deterministically.
    best = max(survivors, key=lambda i: selection_score(samples[i], selection))
    for i, c in enumerate(considered):
        c["chosen"] = i == best
    return best, considered


@dataclass(frozen=True)
class Outcome:
    """One backtracking step on one trace: what was there, what was sampled, what came out."""
    location: int | None
    steps: tuple[str, ...]
    stop_reason: str  # "unchanged" | "uncorrectable" | the finished trace's stop reason
    samples: tuple[dict, ...]
    tokens: int
    seconds: float


def backtrack_batch(traces: Sequence[Trace], locations: Sequence[int | None], generator: Generator,
                    config: BacktrackConfig, round_index: int = 0) -> list[Outcome]:
    """One round of backtracking for a batch of traces at given locations; the greedy finishes of
    the whole batch run together so the backend can batch them."""
    if len(traces) != len(locations):
        raise ValueError("one location per trace")
    pending: list[tuple[int, list[str]]] = []  # (position in batch, accepted steps incl. replacement)
    partial: dict[int, dict[str, Any]] = {}
    out: list[Outcome | None] = [None] * len(traces)
    for i, (trace, loc) in enumerate(zip(traces, locations)):
        if loc is None:
            out[i] = Outcome(None, trace.steps, "unchanged", (), 0, 0.0)
            continue
        if not 0 <= loc < len(trace.steps):
            raise ValueError(f"{trace.id}: location {loc} outside 0..{len(trace.steps) - 1}")
        start = time.perf_counter()
        spec = get_task(trace.task)
        prompt = spec.prompt(trace.input, trace.steps[:loc])
        samples = generator.sample_steps(prompt, config.n_samples, config.temperature,
                                         sample_seed(config.seed, trace.id, loc, round_index),
                                         config.max_step_tokens, top_k=config.top_k, top_p=config.top_p)
        best, considered = choose_replacement(samples, trace.steps[loc], config.selection)
        sampled_tokens = sum(s.n_tokens for s in samples)
        if best is None:
            out[i] = Outcome(loc, trace.steps, "uncorrectable", tuple(considered), sampled_tokens,
                             time.perf_counter() - start)
            continue
        partial[i] = {"loc": loc, "samples": tuple(considered), "tokens": sampled_tokens,
                      "seconds": time.perf_counter() - start}
        pending.append((i, [*trace.steps[:loc], samples[best].text]))
    if pending:
        start = time.perf_counter()
        finished = decode_traces(generator, [TraceRequest(traces[i].task, traces[i].input, tuple(steps))
                                             for i, steps in pending],
                                 DecodeConfig(config.max_steps, config.max_step_tokens, config.batch_size))
        share = (time.perf_counter() - start) / len(pending)
        for (i, _), d in zip(pending, finished):
            p = partial[i]
            # A replacement that already gives the answer ends the trace: decode_traces returns it as is.
            out[i] = Outcome(p["loc"], d.steps, d.stop_reason, p["samples"], p["tokens"] + d.n_tokens,
                             p["seconds"] + share)
    return [o for o in out if o is not None]

"""Backtracking (Tyen et al. 2023, section 5): correct a trace at its first mistake.

Given a trace and a mistake location j (from any locator):
  1. re-sample step j `n_samples` times at `temperature`, with the same prompt and steps 0..j-1;
  2. drop samples identical to the mistaken step (after whitespace normalisation);
  3. keep the surviving sample with the highest log-probability (or mean log-prob per token);
  4. finish the trace greedily from there.
No location -> the trace is kept as it is. If every sample repeats the mistake, the trace is kept
and counted as `uncorrectable`. With `rounds` > 1 the locator is asked again about the new trace.
That is the paper's algorithm: `selection="logprob", accept="always"` (the defaults).

Two guards go beyond the paper (both need a *verifier*, a locator that reads text):
- `selection="verifier"`: each survivor is scored in place (steps 0..j-1 plus the sample) and the one
  the verifier thinks least likely to be a mistake ranks first; log-probability breaks ties.
- `accept="answered"`: a finished trace that ends without an answer is rejected; `accept="verified"`
  also rejects one in which the verifier finds a mistake at or before step j. A rejected candidate
  is followed by the next-ranked survivor, up to all of them; if none is accepted the original trace
  is kept (stop reason `rejected`). Every attempt is recorded. A causal verifier (one that judges
  steps 0..j by those steps alone: the trained classifiers, the checks) rejects a sample in place,
  before its trace is finished, when it finds a mistake at or before step j: the verdict the finished
  trace would get, for none of its tokens (attempt stop reason `not finished`).

Backtracking one trace at one location is deterministic (the sampling seed is derived from the run
seed, the trace id, the location and the round), which is what makes the cache in `cache.py` sound.

Log-prob selection needs the log-prob of each sample under the distribution it was drawn from. A
backend that cannot give it (an OpenAI-compatible server returning temperature-1 log-probs, asked to
sample at another temperature) reports NaN, and `selection="logprob"|"mean_logprob"` refuses it
rather than rank samples by numbers that mean something else. (The verifier selection only breaks
ties with log-probs; unknown ones leave ties in sample order.)
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import get_task
from reward_model.locator import Locator, decision_threshold, first_mistake

from backtrack.methods.decoding import (MAX_STEP_TOKENS, MAX_STEPS, STEP_CAP_FACTOR, STOP_REPEATS, DecodeConfig,
                                        TraceRequest, decode_traces, stop_fields)
from backtrack.lm.generator import LM, Step, StepRequest, stable_int

SELECTIONS = ("logprob", "mean_logprob", "verifier")
# Samples decoded together at most (2 traces x 8 samples). More streams use the CPU's matrix units
# better, but llama.cpp's unified cache makes every stream attend over all the cells of all of them:
# 16 streams decoded at 23 tokens/s on the development CPU, 64 streams of 8 long traces far slower.
SAMPLE_STREAMS = 16
ACCEPTS = ("always", "answered", "verified")
NOT_FINISHED = "not finished"  # an attempt's stop reason when a causal verifier rejected the sample in place


@dataclass(frozen=True)
class BacktrackConfig:
    n_samples: int = 8
    temperature: float = 1.0
    selection: str = "logprob"  # "logprob": highest sum; "mean_logprob": highest per-token mean (length-normalised);
                                # "verifier": lowest verifier score at the replaced step, log-prob breaks ties
    accept: str = "always"      # "always" (the paper) | "answered" | "verified": see the module docstring
    top_k: int | None = None
    top_p: float | None = None
    max_step_tokens: int = MAX_STEP_TOKENS
    max_steps: int = MAX_STEPS  # cap on the whole trace when finishing greedily
    stop_repeats: int = STOP_REPEATS  # finishing stops after this many identical steps in a row (0: never)
    step_cap_factor: float = STEP_CAP_FACTOR  # and at this times the task's longest dataset trace (0: no such cap)
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
        if self.accept not in ACCEPTS:
            raise ValueError(f"accept must be one of {ACCEPTS}, got {self.accept!r}")
        if self.rounds < 1:
            raise ValueError("rounds must be >= 1")
        if self.max_step_tokens < 1 or self.max_steps < 1 or self.batch_size < 1:
            raise ValueError("max_step_tokens, max_steps and batch_size must be >= 1")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be >= 1 when given")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1] when given")

    @property
    def needs_verifier(self) -> bool:
        return self.selection == "verifier" or self.accept == "verified"

    def sampling_key(self) -> dict[str, Any]:
        """Every setting that changes which samples are drawn, which one is kept, or how the trace ends.
        (The verifier's identity is added by the caller, who knows it.)"""
        key = {k: v for k, v in asdict(self).items() if k != "batch_size"}  # batching never changes greedy output
        if self.accept == "always":
            del key["accept"]  # the paper's algorithm keeps the keys it had before `accept` existed
        return stop_fields(key)  # likewise: without the stops, the keys of runs made before they existed


def normalise_whitespace(text: str) -> str:
    return " ".join(text.split())


def sample_seed(seed: int, trace_id: str, location: int, round_index: int) -> int:
    return stable_int(f"{seed}|{trace_id}|{location}|{round_index}")


def selection_score(step: Step, selection: str) -> float:
    if selection == "mean_logprob":
        return step.logprob / max(step.n_tokens, 1)
    return step.logprob


def consider(samples: Sequence[Step], mistaken_step: str) -> list[dict]:
    """A record of each sample; `same_as_mistake` marks the copies of the mistaken step."""
    bad = normalise_whitespace(mistaken_step)
    return [{"text": s.text, "logprob": s.logprob, "n_tokens": s.n_tokens, "stop_reason": s.stop_reason,
             "same_as_mistake": normalise_whitespace(s.text) == bad} for s in samples]


def rank_survivors(samples: Sequence[Step], considered: Sequence[dict], selection: str,
                   verifier_scores: Sequence[float] | None = None) -> list[int]:
    """Indices of the samples that differ from the mistake, best first. Sorting is stable, so equal
    scores keep sample order: ties go to the earliest sample, deterministically."""
    survivors = [i for i, c in enumerate(considered) if not c["same_as_mistake"]]
    if selection == "verifier":
        if verifier_scores is None:
            raise ValueError("selection 'verifier' needs the verifier's scores")
        return sorted(survivors, key=lambda i: (verifier_scores[i], _tie_break(samples[i])))
    return sorted(survivors, key=lambda i: -selection_score(samples[i], selection))


def _tie_break(step: Step) -> float:
    """Higher log-prob first among equal verifier scores; an unknown (NaN) one ties, so sample order decides."""
    return 0.0 if math.isnan(step.logprob) else -step.logprob


def require_known_logprobs(samples: Sequence[Step], config: "BacktrackConfig", lm_name: str) -> None:
    """Refuse to rank by log-prob when the backend could not say what the samples' log-probs are."""
    if config.selection in ("logprob", "mean_logprob") and any(math.isnan(s.logprob) for s in samples):
        filters = " with top-k/top-p" if config.top_k is not None or config.top_p is not None else ""
        raise ValueError(
            f"backtracking's selection {config.selection!r} ranks samples by log-probability, but {lm_name} "
            f"cannot report the log-probs of samples drawn at temperature {config.temperature}{filters} (NaN): "
            "its log-probs are of the temperature-1 distribution. Sample at temperature 1 without top-k/top-p "
            "(the paper's setting), use a --logprobs-mode that reports the sampled distribution's log-probs "
            "(vLLM: --logprobs-mode processed), or --selection verifier")


def choose_replacement(samples: Sequence[Step], mistaken_step: str, selection: str) -> tuple[int | None, list[dict]]:
    """Index of the kept sample (None if every sample repeats the mistake) and a record of each sample
    (the paper's rule: the best survivor by log-probability)."""
    considered = consider(samples, mistaken_step)
    ranked = rank_survivors(samples, considered, selection)
    best = ranked[0] if ranked else None
    if best is not None:
        for i, c in enumerate(considered):
            c["chosen"] = i == best
    return best, considered


@dataclass(frozen=True)
class Outcome:
    """One backtracking step on one trace: what was there, what was sampled, what came out."""
    location: int | None
    steps: tuple[str, ...]
    stop_reason: str  # "unchanged" | "uncorrectable" | "rejected" | the finished trace's stop reason
    samples: tuple[dict, ...]
    tokens: int
    seconds: float
    attempts: tuple[dict, ...] = ()  # each finished candidate: sample index, stop reason, answer, accepted, why


@dataclass(frozen=True)
class Verifier:
    """The locator that judges samples and finished traces (selection 'verifier', accept 'verified')."""
    locator: Locator
    threshold: float | None = None  # None: the locator's own

    @property
    def name(self) -> str:
        return f"{self.locator.name}@{decision_threshold(self.locator, self.threshold)}"

    def in_place_scores(self, trace: Trace, candidates: Sequence[str], location: int) -> list[list[float]]:
        """The verifier's scores of steps 0..location with each candidate as step `location`."""
        probes = [trace.replace(id=f"{trace.id}#candidate{k}", steps=(*trace.steps[:location], text),
                                mistake_index=None, extra={}) for k, text in enumerate(candidates)]
        return self.locator.scores(probes) if probes else []

    def step_scores(self, trace: Trace, candidates: Sequence[str], location: int) -> list[float]:
        """The verifier's score of each candidate as step `location` (steps before it unchanged)."""
        return [s[location] for s in self.in_place_scores(trace, candidates, location)]

    def first(self, step_scores: Sequence[float]) -> int | None:
        """The first step these scores flag, at the verifier's threshold."""
        return first_mistake(step_scores, decision_threshold(self.locator, self.threshold))

    def first_mistakes(self, traces: Sequence[Trace]) -> list[int | None]:
        return [self.first(s) for s in self.locator.scores(traces)]

    @property
    def causal(self) -> bool:
        """Whether its verdict on steps 0..j holds whatever follows them (reward_model/locator.py)."""
        return bool(getattr(self.locator, "causal", False))

    def in_place_first_mistakes(self, trace: Trace, candidates: Sequence[str], location: int) -> list[int | None]:
        """The first mistake the verifier finds in steps 0..location with each candidate as step `location`."""
        return [self.first(s) for s in self.in_place_scores(trace, candidates, location)]


def _verdict(trace: Trace, steps: Sequence[str], location: int, accept: str,
             verified_first: int | None) -> tuple[bool, str]:
    """Whether a finished candidate trace is accepted under `accept`, and why (not)."""
    if accept == "always":
        return True, "accepted"
    if not get_task(trace.task).has_answer(steps):
        return False, "no answer"
    if accept == "verified" and verified_first is not None and verified_first <= location:
        return False, f"verifier finds a mistake at step {verified_first}"
    return True, "accepted"


def backtrack_batch(traces: Sequence[Trace], locations: Sequence[int | None], generator: LM,
                    config: BacktrackConfig, round_index: int = 0,
                    verifier: Verifier | None = None) -> list[Outcome]:
    """One round of backtracking for a batch of traces at given locations. Candidates are finished
    greedily for the whole batch together (so the backend can batch them); under a guarded `accept`
    a rejected trace moves on to its next-ranked sample in the next pass."""
    if len(traces) != len(locations):
        raise ValueError("one location per trace")
    if config.needs_verifier and verifier is None:
        raise ValueError(f"selection {config.selection!r} / accept {config.accept!r} need a verifier (a locator "
                         "that reads text)")
    state: dict[int, dict[str, Any]] = {}  # position in batch -> ranked candidates, attempts so far, cost
    out: list[Outcome | None] = [None] * len(traces)
    located = []
    for i, (trace, loc) in enumerate(zip(traces, locations)):
        if loc is None:
            out[i] = Outcome(None, trace.steps, "unchanged", (), 0, 0.0)
        elif not 0 <= loc < len(trace.steps):
            raise ValueError(f"{trace.id}: location {loc} outside 0..{len(trace.steps) - 1}")
        else:
            located.append(i)
    # the samples of several traces are drawn in one call (a backend may decode them all together),
    # at most SAMPLE_STREAMS streams at a time; each trace's samples depend only on its own seed
    per_call = max(1, SAMPLE_STREAMS // config.n_samples)
    for start_at in range(0, len(located), per_call):
        group = located[start_at:start_at + per_call]
        start = time.perf_counter()
        drawn = generator.generate_steps([
            StepRequest(get_task(traces[i].task).prompt(traces[i].input, traces[i].steps[:locations[i]]),
                        n=config.n_samples, temperature=config.temperature,
                        seed=sample_seed(config.seed, traces[i].id, locations[i], round_index),
                        max_tokens=config.max_step_tokens, top_k=config.top_k, top_p=config.top_p)
            for i in group])
        share = (time.perf_counter() - start) / len(group)
        for i, samples in zip(group, drawn):
            require_known_logprobs(samples, config, generator.name)
            trace, loc = traces[i], locations[i]
            start = time.perf_counter()
            considered = consider(samples, trace.steps[loc])
            pre_check = config.accept == "verified" and verifier.causal
            # each sample in place (steps 0..loc-1 + the sample), scored once for both uses below
            in_place_scores = (verifier.in_place_scores(trace, [s.text for s in samples], loc)
                               if config.selection == "verifier" or pre_check else None)
            scores = None
            if config.selection == "verifier":
                scores = [s[loc] for s in in_place_scores]
                for c, v in zip(considered, scores):
                    c["verifier_score"] = round(float(v), 6)
            ranked = rank_survivors(samples, considered, config.selection, scores)
            sampled_tokens = sum(s.n_tokens for s in samples)
            seconds = share + time.perf_counter() - start
            if not ranked:
                out[i] = Outcome(loc, trace.steps, "uncorrectable", tuple(considered), sampled_tokens, seconds)
                continue
            if config.accept == "always":
                ranked = ranked[:1]  # the paper keeps the best survivor, whatever its trace turns into
            in_place: dict[int, int] = {}
            if pre_check:
                # a causal verifier judges steps 0..loc the same whatever follows: a sample it finds a
                # mistake at or before is rejected as it would be once finished, without finishing it
                firsts = {k: verifier.first(in_place_scores[k]) for k in ranked}
                in_place = {k: f for k, f in firsts.items() if f is not None and f <= loc}
            state[i] = {"loc": loc, "samples": samples, "considered": considered, "ranked": ranked, "attempts": [],
                        "in_place": in_place, "tokens": sampled_tokens, "seconds": seconds}

    def next_try(i: int) -> int | None:
        """Trace i's next candidate worth finishing (those rejected in place are recorded as attempts)."""
        st = state[i]
        while len(st["attempts"]) < len(st["ranked"]):
            k = st["ranked"][len(st["attempts"])]
            if k not in st["in_place"]:
                return k
            st["attempts"].append({"sample": k, "stop_reason": NOT_FINISHED, "tokens": 0, "answer": None,
                                   "verifier_first_mistake": st["in_place"][k], "accepted": False,
                                   "why": f"verifier finds a mistake at step {st['in_place'][k]}",
                                   "steps": [st["samples"][k].text]})
        return None

    def rejected(i: int) -> Outcome:
        st = state[i]
        return Outcome(st["loc"], traces[i].steps, "rejected", tuple(st["considered"]), st["tokens"], st["seconds"],
                       tuple(st["attempts"]))

    pending = sorted(state)
    while pending:
        tries = []
        for i in pending:
            k = next_try(i)
            if k is None:
                out[i] = rejected(i)
            else:
                tries.append((i, k))
        if not tries:
            break
        start = time.perf_counter()
        finished = decode_traces(generator, [TraceRequest(traces[i].task, traces[i].input,
                                                          (*traces[i].steps[:state[i]["loc"]],
                                                           state[i]["samples"][k].text)) for i, k in tries],
                                 DecodeConfig(config.max_steps, config.max_step_tokens, config.batch_size,
                                              stop_repeats=config.stop_repeats,
                                              step_cap_factor=config.step_cap_factor))
        firsts: list[int | None] = [None] * len(tries)
        if config.accept == "verified":
            firsts = verifier.first_mistakes([traces[i].replace(steps=d.steps, mistake_index=None, extra={})
                                              for (i, _), d in zip(tries, finished)])
        share = (time.perf_counter() - start) / len(tries)
        still = []
        for (i, k), d, first in zip(tries, finished, firsts):
            st = state[i]
            ok, why = _verdict(traces[i], d.steps, st["loc"], config.accept, first)
            answer = get_task(traces[i].task).extract_answer(d.steps)
            st["attempts"].append({"sample": k, "stop_reason": d.stop_reason, "tokens": d.n_tokens,
                                   "answer": answer.strip() if isinstance(answer, str) else None,
                                   "verifier_first_mistake": first, "accepted": ok, "why": why,
                                   "steps": list(d.steps[st["loc"]:])})
            st["tokens"] += d.n_tokens
            st["seconds"] += share
            if ok:
                for j, c in enumerate(st["considered"]):
                    c["chosen"] = j == k
                # A replacement that already gives the answer ends the trace: decode_traces returns it as is.
                out[i] = Outcome(st["loc"], d.steps, d.stop_reason, tuple(st["considered"]), st["tokens"],
                                 st["seconds"], tuple(st["attempts"]) if config.accept != "always" else ())
            elif len(st["attempts"]) < len(st["ranked"]):
                still.append(i)
            else:
                out[i] = rejected(i)
        pending = still
    return [o for o in out if o is not None]

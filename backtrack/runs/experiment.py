"""The backtracking experiment (the paper's Table 6): locate, backtrack, score, per trace, resumably.

Each finished trace is one record in the run directory's samples.jsonl, in the dataset's shape (the
corrected trace's `steps` and `answer`; `mistake_index` is null because nobody has annotated the
new trace) plus the original trace, every round's location and samples, tokens and seconds.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

from bigbench_mistake.records import Trace
from bigbench_mistake.tasks import get_task
from reward_model.locator import Locator, locate

from backtrack.methods.backtracking import BacktrackConfig, Outcome, Verifier, backtrack_batch
from backtrack.methods.decoding import STOP_TOKEN_CAP, stop_fields
from backtrack.runs.cache import OutcomeCache, outcome_key
from backtrack.lm.generator import LM, generator_identity

LABEL_READING_LOCATORS = ("gold", "simulated")  # they read the dataset's label, valid for the original trace only
TEXT_READING_LOCATORS = ("trained", "checks", "prompt")  # they judge any text, so they can also verify replacements
LOCATED_AT_TOKEN_CAP = "token_cap"  # a round's `located_by` when bbm's capped-step rule named the step (`located`)


def reads_labels(locator: str) -> bool:
    """Whether a locator spec reads the dataset's label (gold, simulated) instead of the trace's text."""
    return locator.partition(":")[0] in LABEL_READING_LOCATORS


def reads_text(locator: str) -> bool:
    """Whether a locator spec judges any text (so it can also verify replacements)."""
    return locator.partition(":")[0] in TEXT_READING_LOCATORS


def default_verifier(locator: str) -> str:
    """The verifier of a guarded run: the run's own locator when it reads text, else the trained one."""
    return locator if reads_text(locator) else "trained"


@dataclass(frozen=True)
class CorrectionRunConfig:
    """What a run that corrects traces records (bbm backtrack on given traces, bbm pipeline on its own)."""
    locator: str
    model: str
    backtrack: BacktrackConfig = field(default_factory=BacktrackConfig)
    tasks: tuple[str, ...] = ()
    limit: int | None = None  # items per task
    threshold: float | None = None  # None: the locator's own (a trained locator's fitted threshold)
    batch_size: int = 8
    verifier: str | None = None  # locator spec judging samples/new traces (selection verifier, accept verified)

    def __post_init__(self) -> None:
        if self.backtrack.needs_verifier and self.verifier is None:
            object.__setattr__(self, "verifier", default_verifier(self.locator))
        if self.verifier is not None and not reads_text(self.verifier):
            raise ValueError(f"verifier {self.verifier!r} cannot judge new text; use trained[:DIR], "
                             "checks[:generic] or prompt:METHOD")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must be in [0, 1]")
        if self.backtrack.rounds > 1 and reads_labels(self.locator):
            raise ValueError(f"--rounds > 1 needs a locator that reads the new trace; {self.locator!r} only knows "
                             "the dataset's label of the original trace")


@dataclass(frozen=True)
class BacktrackRunConfig(CorrectionRunConfig):
    traces_files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": "backtrack", **config_json(self)}


def config_json(cfg: Any) -> dict[str, Any]:
    """asdict(cfg), leaving out the guard settings at their paper defaults, so that run directories
    written before they existed still resume under the same command."""
    d = asdict(cfg)
    if d.get("verifier") is None:
        d.pop("verifier", None)
    if d["backtrack"].get("accept") == "always":
        del d["backtrack"]["accept"]
    stop_fields(d["backtrack"])
    if not reads_labels(cfg.locator):
        d["capped_step_is_mistake"] = True  # see `located`: runs made before the rule located otherwise
    return d


def answer_fields(task: str, steps: Sequence[str], target: str) -> dict[str, Any]:
    spec = get_task(task)
    raw = spec.extract_answer(steps)
    scored = spec.score(steps, target)
    return {"answer": raw.strip() if isinstance(raw, str) else None, "status": scored.status,
            "invalid_reason": scored.invalid_reason, "strict_status": spec.score_strict(steps, target).status}


def _outcome_to_dict(o: Outcome) -> dict[str, Any]:
    chosen = next((s["text"] for s in o.samples if s.get("chosen")), None)
    d = {"location": o.location, "stop_reason": o.stop_reason, "replacement": chosen, "samples": list(o.samples),
         "steps": list(o.steps), "tokens": o.tokens, "seconds": round(o.seconds, 3)}
    if o.attempts:
        d["attempts"] = list(o.attempts)
    return d


def backtrack_with_cache(traces: Sequence[Trace], locations: Sequence[int | None], generator: LM,
                         config: BacktrackConfig, cache: OutcomeCache,
                         round_index: int = 0, verifier: Verifier | None = None) -> list[dict[str, Any]]:
    """Outcomes as dicts (with `cached`), computing only the (trace, location) pairs not in the cache."""
    sampling = config.sampling_key()
    if config.needs_verifier and verifier is not None:
        sampling["verifier"] = verifier.name  # another verifier keeps or rejects other samples
    identity = generator_identity(generator)
    keys = [outcome_key(t, loc, round_index, identity, sampling) for t, loc in zip(traces, locations)]
    found = [cache.get(k) if loc is not None else None for k, loc in zip(keys, locations)]
    todo = [i for i, (f, loc) in enumerate(zip(found, locations)) if f is None]
    fresh = backtrack_batch([traces[i] for i in todo], [locations[i] for i in todo], generator, config,
                            round_index, verifier) if todo else []
    out: list[dict[str, Any]] = [dict(f, cached=True) if f is not None else {} for f in found]
    for i, o in zip(todo, fresh):
        d = _outcome_to_dict(o)
        if o.location is not None:
            cache.put(keys[i], d)
        out[i] = dict(d, cached=False)
    return out


def broken_off(trace: Trace) -> bool:
    """A generated trace whose last step ran to the token cap (no newline, no answer): `generation`
    metadata as `bbm generate` and the pipeline write it."""
    generation = trace.extra.get("generation")
    return isinstance(generation, dict) and generation.get("stop_reason") == STOP_TOKEN_CAP


def located(locator: Locator, traces: Sequence[Trace], cfg: BacktrackRunConfig) -> tuple[list[int | None], list[bool]]:
    """The locator's first mistakes, and one rule of bbm's own for locators that read the text: a trace
    broken off at the token cap is wrong at that step at the latest, so when the locator finds nothing
    before it, the capped step is the mistake (second list: where this rule named it). Such a step is
    often one piece written over and over (`= (5 + 2 - 6) = (5 + 2 - 6) = ...`), which every arithmetic
    check passes."""
    locations = locate(locator, traces, cfg.threshold)
    if reads_labels(cfg.locator):
        return locations, [False] * len(traces)
    capped = [loc is None and broken_off(t) for t, loc in zip(traces, locations)]
    return [len(t.steps) - 1 if c else loc for t, loc, c in zip(traces, locations, capped)], capped


def backtrack_traces(traces: Sequence[Trace], locator: Locator, generator: LM, cfg: BacktrackRunConfig,
                     cache: OutcomeCache, verifier: Verifier | None = None) -> list[dict[str, Any]]:
    """Locate -> backtrack (-> locate again, for rounds > 1) for a batch; one record per trace."""
    start = time.perf_counter()
    current = list(traces)
    rounds: list[list[dict[str, Any]]] = [[] for _ in traces]
    active = list(range(len(traces)))
    for r in range(cfg.backtrack.rounds):
        batch = [current[i] for i in active]
        locations, capped = located(locator, batch, cfg)
        outcomes = backtrack_with_cache(batch, locations, generator, cfg.backtrack, cache, r, verifier)
        still = []
        for i, o, c in zip(active, outcomes, capped):
            if c:
                o = {**o, "located_by": LOCATED_AT_TOKEN_CAP}
            rounds[i].append(o)
            if o["location"] is not None and o["stop_reason"] not in ("uncorrectable", "rejected"):
                # The new trace has no label: later rounds must locate from its text.
                current[i] = current[i].replace(steps=tuple(o["steps"]), mistake_index=None, extra={})
                still.append(i)
        active = still
        if not active:
            break
    share = (time.perf_counter() - start) / max(len(traces), 1)
    records = []
    for orig, new, rs in zip(traces, current, rounds):
        before = answer_fields(orig.task, orig.steps, orig.target)
        after = answer_fields(new.task, new.steps, new.target)
        records.append({
            "key": orig.id, "task": orig.task, "id": orig.id, "input": orig.input,
            "steps": list(new.steps), "answer": after["answer"], "target": orig.target, "mistake_index": None,
            "status": after["status"], "invalid_reason": after["invalid_reason"],
            "original_steps": list(orig.steps), "original_answer": before["answer"],
            "original_status": before["status"], "gold_mistake_index": orig.mistake_index,
            "strict_status": after["strict_status"], "original_strict_status": before["strict_status"],
            "rounds": [{k: v for k, v in o.items() if k != "steps"} for o in rs],
            "tokens": sum(o["tokens"] for o in rs if not o["cached"]),
            "tokens_including_cached": sum(o["tokens"] for o in rs),
            "seconds": round(share, 3),
        })
    return records


def run_backtrack(traces: Sequence[Trace], locator: Locator, generator: LM, cfg: BacktrackRunConfig,
                  cache: OutcomeCache, write: Callable[[dict[str, Any]], None],
                  done: set[str], on_batch: Callable[[int], None] | None = None,
                  verifier: Verifier | None = None) -> int:
    """Backtrack every trace not in `done`, writing each record as soon as its batch finishes."""
    todo = [t for t in traces if t.id not in done]
    for start in range(0, len(todo), cfg.batch_size):
        batch = todo[start:start + cfg.batch_size]
        for rec in backtrack_traces(batch, locator, generator, cfg, cache, verifier):
            write(rec)
        if on_batch:
            on_batch(len(batch))
    return len(todo)


def _pct(x: float, n: int) -> float | None:
    return round(100.0 * x / n, 2) if n else None


def results_from_records(config: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json of a backtrack run from its records (used by `bbm merge` for sharded runs)."""
    return summarise_backtrack(records)


def summarise_backtrack(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Table 6: per task, accuracy change on traces whose original answer was correct (delta_acc_correct,
    the paper's Δaccuracy✓) and on those that were wrong or invalid (delta_acc_wrong, Δaccuracy✗)."""
    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r)

    def block(rs: list[dict[str, Any]]) -> dict[str, Any]:
        right = [r for r in rs if r["original_status"] == "correct"]
        wrong = [r for r in rs if r["original_status"] != "correct"]
        right_after = sum(r["status"] == "correct" for r in right)
        wrong_after = sum(r["status"] == "correct" for r in wrong)
        ended: dict[str, int] = {}  # how the last round of each backtracked trace ended: the "why" of a row
        for r in rs:
            if r["rounds"][0]["location"] is not None:
                reason = r["rounds"][-1]["stop_reason"]
                ended[reason] = ended.get(reason, 0) + 1
        return {
            "n": len(rs), "n_originally_correct": len(right), "n_originally_wrong": len(wrong),
            "accuracy_before": _pct(len(right), len(rs)),
            "accuracy_after": _pct(right_after + wrong_after, len(rs)),
            "delta_acc_correct": _pct(right_after - len(right), len(right)),
            "delta_acc_wrong": _pct(wrong_after, len(wrong)),
            "net_change": _pct(right_after + wrong_after - len(right), len(rs)),  # accuracy after - before, points
            "fixed": wrong_after, "broken": len(right) - right_after,
            "backtracked_ended": dict(sorted(ended.items())),
            "backtracked": sum(r["rounds"][0]["location"] is not None for r in rs),
            "located_at_token_cap": sum(r["rounds"][0].get("located_by") == LOCATED_AT_TOKEN_CAP for r in rs),
            "uncorrectable": sum(any(o["stop_reason"] == "uncorrectable" for o in r["rounds"]) for r in rs),
            "rejected": sum(any(o["stop_reason"] == "rejected" for o in r["rounds"]) for r in rs),
            "changed_answer": sum(r["answer"] != r["original_answer"] for r in rs),
            "invalid_after": sum(r["status"] == "invalid" for r in rs),
            "invalid_before": sum(r["original_status"] == "invalid" for r in rs),
            # answers the paper's strict regex alone (no tidy) scores differently, before / after
            "strict_differs_before": sum(r.get("original_strict_status", r["original_status"]) != r["original_status"]
                                         for r in rs),
            "strict_differs_after": sum(r.get("strict_status", r["status"]) != r["status"] for r in rs),
            "tokens": sum(r["tokens"] for r in rs),
            "seconds": round(sum(r["seconds"] for r in rs), 2),
        }

    return {"tasks": {t: block(rs) for t, rs in by_task.items()},
            "overall": block([r for rs in by_task.values() for r in rs])}

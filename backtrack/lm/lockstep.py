"""Independent jobs whose model calls are made together: several questions, each run by plain
sequential code (a strategy after another), advance in lockstep so that one model call holds a
request of every job.

Why: a strategy that decodes one trace (cot, least-to-most, backtracking's greedy finish) sends a
server one request at a time, while a server that batches (vLLM) serves many for little more. On a
2-core CPU it did not pay (README, "Prompting strategies": llama.cpp's one KV cache makes every
token attend over every question's prompt). Rewriting every strategy to take several questions
would duplicate each one; running each question's code in its own thread and gathering their calls
leaves the strategies as they are.

How: each job gets a Seat, an LM whose calls wait for the coordinator. A round starts when every
job still running has asked (or finished); the coordinator then makes one generate_steps call with
the step requests of every seat that asked for steps, in seat order, and one loglikelihood call with
the rest, and hands each seat its part. Which requests share a call therefore depends only on what
the jobs ask, never on thread timing, so a run is as repeatable as the backend is for a given batch.
Only the coordinator's thread touches the model; anything else a job reads from it (a backend's
tokenizer, chat_prefix) goes through the same lock.

Seconds: a seat is charged its share of each call it was part of (the call's wall time split equally
among the seats in it) plus the CPU time of its own thread between calls (not its wall time, which
would count the other jobs' turns at the interpreter lock too), so the seats' seconds add up to
about the wall time of the whole run, and a seat alone is charged what it took.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence, TypeVar

from backtrack.lm.generator import LM, LoglikelihoodRequest, Step, StepRequest

T = TypeVar("T")
KINDS = ("generate_steps", "loglikelihood")


class Cancelled(RuntimeError):
    """Raised inside a job when another job failed: the run stops at the next model call."""


class Seat:
    """One job's view of the model: an LM whose calls go through the Lockstep's coordinator."""

    def __init__(self, lockstep: "Lockstep", index: int):
        self._lockstep, self.index = lockstep, index
        self.name = lockstep.lm.name
        self.charged = 0.0  # seconds: shares of the calls this seat was part of
        self.own = 0.0  # seconds: this seat's CPU time between its calls (while its job runs)
        self._since: float | None = None  # thread CPU time when the running stretch began
        self._thread: int | None = None  # the thread running this seat's job (thread_time is per thread)

    @property
    def seconds(self) -> float:
        """Seconds charged to this seat so far, the running stretch included."""
        running = time.thread_time() - self._since if self._since is not None and self._mine() else 0.0
        return self.charged + self.own + running

    def __getattr__(self, item: str) -> Any:
        if item.startswith("_"):
            raise AttributeError(item)
        value = getattr(self._lockstep.lm, item)
        if not callable(value):
            return value

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lockstep.model_lock:
                return value(*args, **kwargs)
        return locked

    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        return self._ask("generate_steps", list(requests)) if requests else []

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        return self._ask("loglikelihood", list(requests)) if requests else []

    def _ask(self, kind: str, requests: list) -> list:
        self._stop_clock()
        try:
            return self._lockstep._ask(self.index, kind, requests)
        finally:
            self._start_clock()

    def _mine(self) -> bool:
        return threading.get_ident() == self._thread

    def _start_clock(self) -> None:
        self._thread, self._since = threading.get_ident(), time.thread_time()

    def _stop_clock(self) -> None:
        if self._since is not None:
            self.own += time.thread_time() - self._since
            self._since = None


class Lockstep:
    """Runs jobs in lockstep over `lm`, `width` at a time (see the module docstring). A seat serves one
    job after another and persists between run() calls, so what a caller builds on seat i (a
    counter, a memo, a locator that charges its calls to the counter) can be kept."""

    def __init__(self, lm: LM, width: int):
        if width < 1:
            raise ValueError("width must be >= 1")
        self.lm = lm
        self.seats = [Seat(self, i) for i in range(width)]
        self.model_lock = threading.RLock()
        self._cond = threading.Condition()
        self._pending: dict[int, tuple[str, list]] = {}
        self._replies: dict[int, tuple[bool, Any]] = {}
        self._live: set[int] = set()
        self._failed = False

    def _ask(self, seat: int, kind: str, requests: list) -> list:
        with self._cond:
            if self._failed:
                raise Cancelled("another job of this batch failed")
            self._pending[seat] = (kind, requests)
            self._cond.notify_all()
            self._cond.wait_for(lambda: seat in self._replies)
            ok, value = self._replies.pop(seat)
        if not ok:
            raise value
        return value

    def run(self, jobs: Sequence[Callable[[Seat], T]],
            on_done: Callable[[int, T], None] | None = None) -> list[T]:
        """Run the jobs, at most `width` at a time: job j gets the lowest free seat when one frees up
        (at a round's start, so which jobs share a call does not depend on timing either). Returns
        their results in order; on_done(j, result) is called in the caller's thread as job j finishes
        (to write its records at once). The first failure (in job order) is raised once every running
        job has stopped; the others are cancelled at their next model call, and no new job starts."""
        results: dict[int, Any] = {}
        errors: dict[int, BaseException] = {}
        finished: list[int] = []  # job indexes, in the order the coordinator will see them
        next_job = 0
        self._failed = False
        self._live = set()

        def main(seat: Seat, j: int) -> None:
            seat._start_clock()
            try:
                results[j] = jobs[j](seat)
            except BaseException as e:  # handed to the caller's thread below
                errors[j] = e
            finally:
                seat._stop_clock()
                with self._cond:
                    self._failed = self._failed or j in errors
                    self._live.discard(seat.index)
                    finished.append(j)
                    self._cond.notify_all()

        threads = []
        reported = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: all(i in self._pending for i in self._live))
                done_now, reported = finished[reported:], len(finished)
                free = [i for i in range(len(self.seats)) if i not in self._live]
                starting = [] if self._failed else list(zip(free, range(next_job, len(jobs))))
                self._live.update(i for i, _ in starting)
                next_job += len(starting)
                asks = [] if starting else sorted(self._pending.items())
                if not starting:
                    self._pending.clear()
            for j in done_now:
                if on_done is not None and j in results:
                    on_done(j, results[j])
            for i, j in starting:
                t = threading.Thread(target=main, args=(self.seats[i], j), name=f"lockstep-{i}", daemon=True)
                threads.append(t)
                t.start()
            if starting:
                continue  # wait for the new jobs' first requests: they join this round
            if not asks:
                break
            if self._failed:  # another job failed: the rest stop at this call instead of making it
                with self._cond:
                    self._replies.update({i: (False, Cancelled("another job of this batch failed")) for i, _ in asks})
                    self._cond.notify_all()
                continue
            self._call(asks)
        for t in threads:
            t.join()
        if errors:
            real = [j for j in sorted(errors) if not isinstance(errors[j], Cancelled)]
            raise errors[(real or sorted(errors))[0]]
        return [results[j] for j in range(len(jobs))]

    def _call(self, asks: list[tuple[int, tuple[str, list]]]) -> None:
        """One model call per kind asked this round; then every asking seat gets its part (or the
        error), so no job runs while a call of its round is still being made."""
        replies: dict[int, tuple[bool, Any]] = {}
        for kind in KINDS:
            part = [(i, requests) for i, (k, requests) in asks if k == kind]
            if not part:
                continue
            flat = [r for _, requests in part for r in requests]
            start = time.perf_counter()
            try:
                with self.model_lock:
                    answers = getattr(self.lm, kind)(flat)
                offset = 0
                for i, requests in part:
                    replies[i] = (True, answers[offset:offset + len(requests)])
                    offset += len(requests)
            except BaseException as e:
                replies.update({i: (False, e) for i, _ in part})
            share = (time.perf_counter() - start) / len(part)
            for i, _ in part:
                self.seats[i].charged += share
        with self._cond:
            self._replies.update(replies)
            self._cond.notify_all()

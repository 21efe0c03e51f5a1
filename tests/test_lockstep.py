"""Lockstep: independent jobs' model calls made together, on the tiny offline model (the real LM,
spied on, not stood in for)."""
import threading

import pytest

from backtrack.lm.generator import LoglikelihoodRequest, StepRequest
from backtrack.lm.lockstep import Lockstep


class CallLog:
    """The real LM, with the size of every call kept (and the thread that made it)."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, []

    def generate_steps(self, requests):
        self.calls.append(("steps", len(requests), threading.current_thread().name))
        return self.inner.generate_steps(requests)

    def loglikelihood(self, requests):
        self.calls.append(("loglikelihood", len(requests), threading.current_thread().name))
        return self.inner.loglikelihood(requests)


def greedy_chain(question, n):
    """A job: n greedy steps, each prompt holding the steps before (as a trace is decoded)."""
    def job(lm):
        text = question
        for _ in range(n):
            [[step]] = lm.generate_steps([StepRequest(text, max_tokens=5)])
            text += step.text + "\n"
        return text
    return job


def test_jobs_get_what_they_would_alone_in_fewer_calls(tiny_generator):
    jobs = [greedy_chain(q, n) for q, n in [("Q: 1 + 2 =", 3), ("Q: 4 + 4 =", 1), ("Q: 7 - 2 =", 2)]]
    alone = [job(tiny_generator) for job in jobs]
    log = CallLog(tiny_generator)
    assert Lockstep(log, 3).run(jobs) == alone
    # a round per step of the longest job, each round holding every job still running
    assert [n for _, n, _ in log.calls] == [3, 2, 1]
    assert {thread for _, _, thread in log.calls} == {threading.main_thread().name}


def test_more_jobs_than_seats_each_done_once_in_order(tiny_generator):
    jobs = [greedy_chain(f"Q: {i} + 1 =", 1 + i % 3) for i in range(7)]
    log = CallLog(tiny_generator)
    done = []
    lockstep = Lockstep(log, 2)
    out = lockstep.run(jobs, on_done=lambda j, r: done.append(j))
    assert out == [job(tiny_generator) for job in jobs]
    assert sorted(done) == list(range(7)) and max(n for _, n, _ in log.calls) == 2
    assert sum(n for _, n, _ in log.calls) == sum(1 + i % 3 for i in range(7))
    # a job starts on the first seat that frees up, so the order is fixed by the jobs, not by timing
    again = []
    Lockstep(CallLog(tiny_generator), 2).run(jobs, on_done=lambda j, r: again.append(j))
    assert again == done
    assert all(seat.seconds > 0 for seat in lockstep.seats)


def test_steps_and_loglikelihoods_asked_in_one_round_go_as_one_call_each(tiny_generator):
    ask = LoglikelihoodRequest("Q: 1 + 1 =", " 2")

    def scores(lm):
        return lm.loglikelihood([ask, LoglikelihoodRequest("Q: 1 + 1 =", " 3")])

    log = CallLog(tiny_generator)
    out = Lockstep(log, 3).run([scores, greedy_chain("Q: 2 + 2 =", 1), scores])
    assert out[0] == out[2] == tiny_generator.loglikelihood([ask, LoglikelihoodRequest("Q: 1 + 1 =", " 3")])
    assert sorted((kind, n) for kind, n, _ in log.calls) == [("loglikelihood", 4), ("steps", 1)]


def test_a_failing_job_stops_the_run_and_its_error_reaches_the_caller(tiny_generator):
    def bad(lm):
        lm.generate_steps([StepRequest("Q: 1 =", max_tokens=2)])
        raise ValueError("job failed")

    log = CallLog(tiny_generator)
    done = []
    with pytest.raises(ValueError, match="job failed"):
        Lockstep(log, 2).run([greedy_chain("Q: 3 + 3 =", 10), bad, greedy_chain("Q: 5 =", 1)],
                             on_done=lambda j, r: done.append(j))
    # the long job was cancelled at its next call instead of running its 10 steps; the third never started
    assert len(log.calls) == 1 and done == []
    with pytest.raises(ValueError, match="width"):
        Lockstep(log, 0)

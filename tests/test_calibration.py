"""Setting the decision for a new source of traces: a target flag rate, or a small labelled sample."""
from bigbench_mistake.records import Trace
from reward_model.calibration import f1, flag_rate_threshold, labelled_threshold
from reward_model.locator import first_mistake


def trace(i, mistake):
    return Trace("gsm8k", f"t{i}", "q", ("a", "b", "c"), None, None, mistake)


def test_flag_rate_flags_that_share():
    scores = [[0.1, 0.2, 0.9], [0.3, 0.3, 0.3], [0.6, 0.1, 0.1], [0.05, 0.05, 0.05]]
    for rate, flagged in [(0.25, 1), (0.5, 2), (0.75, 3), (1.0, 4), (0.0, 0)]:
        th = flag_rate_threshold(scores, rate)
        assert sum(first_mistake(s, th) is not None for s in scores) == flagged, rate


def test_a_labelled_sample_recovers_a_source_with_another_mistake_rate():
    # a locator whose scores are shifted up on this source: with its fitted 0.5 it flags everything
    traces = [trace(i, 1 if i < 3 else None) for i in range(10)]
    scores = [[0.55, 0.9, 0.6] if t.has_mistake else [0.6, 0.62, 0.58] for t in traces]
    at_fitted = [first_mistake(s, 0.5) for s in scores]
    th = labelled_threshold(traces, scores)
    calibrated = [first_mistake(s, th) for s in scores]
    assert f1(traces, at_fitted) == 0.0 and f1(traces, calibrated) == 1.0
    assert flag_rate_threshold(scores, 0.3) == th or f1(traces, [first_mistake(s, flag_rate_threshold(scores, 0.3))
                                                                  for s in scores]) == 1.0

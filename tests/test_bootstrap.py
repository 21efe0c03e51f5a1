"""Bootstrap intervals over questions for accuracies and paired differences (bbm compare)."""
def test_bootstrap_intervals():
    from bigbench_mistake.bootstrap import accuracy_interval, difference_interval

    assert accuracy_interval([True] * 30) == [100.0, 100.0]
    low, high = accuracy_interval([True] * 15 + [False] * 15)
    assert low < 50 < high and 25 < high - low < 45  # about +-18 points with 30 questions
    same = difference_interval([True, False] * 15, [True, False] * 15)
    assert same["difference"] == 0 and not same["real"]
    clear = difference_interval([True] * 28 + [False] * 2, [False] * 25 + [True] * 5)
    assert clear["real"] and clear["interval"][0] > 0
    assert accuracy_interval([True, False] * 10) == accuracy_interval([True, False] * 10)  # seeded


def test_unpaired_difference_interval():
    from bigbench_mistake.bootstrap import unpaired_difference_interval

    same = unpaired_difference_interval([True, False] * 15, [True, False] * 5)
    assert same["difference"] == 0 and not same["real"]
    clear = unpaired_difference_interval([True] * 28 + [False] * 2, [False] * 8 + [True] * 2)
    assert clear["difference"] == 73.33 and clear["real"] and clear["interval"][0] > 0
    # the sides are not paired: different lengths are fine, and the interval is wider than the paired
    # one would be on the same 30 questions
    wide = unpaired_difference_interval([True] * 15 + [False] * 15, [True] * 15 + [False] * 15)
    assert not wide["real"] and wide["interval"][1] - wide["interval"][0] > 30
    assert unpaired_difference_interval([], [True]) is None
    assert unpaired_difference_interval([True, False] * 10, [True]) == \
        unpaired_difference_interval([True, False] * 10, [True])  # seeded

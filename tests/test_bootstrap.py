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

"""Answer extraction that tolerates other models' formatting, and leaves the paper's scores alone."""
import pytest

from bigbench_mistake.answers import tidy
from bigbench_mistake.dataset import load_all
from bigbench_mistake.tasks import get_task


@pytest.mark.parametrize("written, answer", [
    (" 0.", "0"),                                                                  # trailing full stop
    (" 18 * 18 = 324. Let's verify this by running the Python code.", "324"),      # text after, a calculation
    (" `324`", "324"), (" ```-12```", "-12"), (" **7**", "7"),                     # code fences, bold
    (" \\boxed{42}", "42"), (": 5", "5"), (' "7".', "7"),
    (" apple banana cherry.", "apple banana cherry"),
    (" ] ) }", "] ) }"), (" ).", ")."), (" .", "."),                                # Dyck: brackets keep their dot
])
def test_tidy(written, answer):
    assert tidy(written) == answer


def test_scores_of_every_dataset_trace_are_unchanged():
    traces = load_all()
    assert len(traces) == 2186
    for t in traces:
        spec = get_task(t.task)
        assert spec.score(t.steps, t.target) == spec.score_strict(t.steps, t.target), t.id


def test_other_models_answers_score_right():
    spec = get_task("multistep_arithmetic")
    for last in ("So the answer is 0.", "So the answer is 18 * 18 = 324. Let's verify this by running the Python code."):
        target = "0" if last.endswith("0.") else "324"
        assert spec.score([last], target).correct and not spec.score_strict([last], target).correct
    mc = get_task("logical_deduction")
    assert mc.score(["So the answer is **(B)**."], "(B)").correct

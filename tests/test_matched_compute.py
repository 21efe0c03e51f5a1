"""Matched compute in bbm compare: self-consistency at every k comes from the k=K samples (and equals
a run at that k), and tokens per corrected answer follow from the blocks."""
from backtrack.runs.compare import run_compare
from backtrack.runs.compute import matched_k, tokens_per_corrected
from backtrack.runs.render import render_compare
from backtrack.methods.strategies import Item, StrategyConfig

ITEMS = [Item("multistep_arithmetic", f"q{i}", f"({a} + {b}) =", str(a + b))
         for i, (a, b) in enumerate([(1, 2), (4, 3), (2, 2), (5, 1)])]


def test_sc_at_every_k_is_a_run_at_that_k(tiny_generator, tmp_path):
    cfg = dict(max_steps=3, max_step_tokens=12, sc_temperature=1.0)
    big = run_compare(ITEMS, ["cot", "self-consistency"], StrategyConfig(sc_samples=4, **cfg), tiny_generator,
                      tmp_path / "k4")
    curve = big["sc_curve"]["all"]
    assert [p["k"] for p in curve] == [1, 2, 3, 4]
    sc = big["all"]["self-consistency"]
    assert (curve[-1]["accuracy"], curve[-1]["mean_tokens"]) == (sc["accuracy"], sc["mean_tokens"])
    assert [p["mean_tokens"] for p in curve] == sorted(p["mean_tokens"] for p in curve)
    small = run_compare(ITEMS, ["self-consistency"], StrategyConfig(sc_samples=2, **cfg), tiny_generator, tmp_path / "k2")
    two = small["all"]["self-consistency"]
    assert (curve[1]["accuracy"], curve[1]["mean_tokens"]) == (two["accuracy"], two["mean_tokens"])
    assert matched_k(curve, two["mean_tokens"])["k"] == 2
    text = render_compare(big)
    assert "self-consistency at k=1..K" in text and "self-consistency vs cot" in text


def test_tokens_per_corrected_answer():
    def rec(tokens, correct):
        return {"tokens": tokens, "correct": correct}

    rows = [{"cot": rec(100, False), "x": rec(300, True)}, {"cot": rec(100, True), "x": rec(500, True)},
            {"cot": rec(100, False), "x": rec(300, False)}]
    t = tokens_per_corrected(rows, ["cot", "x"])["x"]
    assert (t["extra_tokens"], t["net_corrected"], t["tokens_per_corrected"]) == (800, 1, 800.0)
    lost = [{"cot": rec(100, True), "x": rec(300, False)}]
    assert tokens_per_corrected(lost, ["cot", "x"])["x"]["tokens_per_corrected"] is None
    cheaper = [{"cot": rec(300, False), "x": rec(100, True)}]  # more right for fewer tokens: no cost, not -200
    t = tokens_per_corrected(cheaper, ["cot", "x"])["x"]
    assert (t["extra_tokens"], t["net_corrected"], t["tokens_per_corrected"]) == (-200, 1, None)
    assert tokens_per_corrected(rows, ["x"]) == {}

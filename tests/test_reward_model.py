"""Reward model: locator specs, the simulated reward model, the checks, puzzle-aware folds, the CPU
classifier's save/load round trip and the `bbm rm` commands."""
from __future__ import annotations

import json
from collections import defaultdict

import pytest

from bigbench_mistake.dataset import group_key, load_all, load_task
from bigbench_mistake.records import Trace
from reward_model.classifier import TrainConfig, group_folds, train, StepClassifier
from reward_model.evaluation import splits
from reward_model.features import StepContext, contexts, numeric_features, FEATURE_SETS
from reward_model.features.arithmetic import check_chains, evaluate
from reward_model.features import letters, task_specific
from reward_model.locator import first_mistake, locate
from reward_model.registry import LOCATORS, LocatorOptions, make_locator
from reward_model.simple import SimulatedLocator, label_distribution


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    return load_all()


# ------------------------------------------------------------------ locators
@pytest.mark.parametrize("x", [0.5, 0.7, 0.9])
def test_simulated_accuracy_matches_x(traces, x):
    loc = make_locator(f"simulated:{x}", LocatorOptions(seed=0, distribution_traces=traces))
    preds = locate(loc, traces)
    acc = sum(p == t.mistake_index for p, t in zip(preds, traces)) / len(traces)
    assert abs(acc - x) <= 0.02, acc


def test_simulated_never_gold_when_meant_wrong(traces):
    loc = SimulatedLocator(0.3, label_distribution(traces), seed=1)
    wrong = 0
    for t in traces:
        label, meant_right = loc.choose(t)
        if meant_right:
            assert label == t.mistake_index
        else:
            wrong += 1
            assert label != t.mistake_index
            assert label is None or 0 <= label < len(t.steps)
    assert wrong > 1000


def test_simulated_is_seeded_and_batch_independent(traces):
    a = make_locator("simulated:0.6", LocatorOptions(seed=3, distribution_traces=traces))
    b = make_locator("simulated:0.6", LocatorOptions(seed=3, distribution_traces=traces))
    assert a.scores(traces[:50]) == b.scores(traces[:50]) == b.scores(traces)[:50]
    c = make_locator("simulated:0.6", LocatorOptions(seed=4, distribution_traces=traces))
    assert c.scores(traces[:200]) != a.scores(traces[:200])


def test_random_and_gold_specs(traces):
    opts = LocatorOptions(seed=0, distribution_traces=traces)
    assert locate(make_locator("gold", opts), traces) == [t.mistake_index for t in traces]
    uniform = locate(make_locator("random", opts), traces)
    assert all(p is not None and 0 <= p < len(t.steps) for p, t in zip(uniform, traces))
    dist = locate(make_locator("random:dist", opts), traces)
    assert any(p is None for p in dist)  # the task distributions include "no mistake"
    seen = label_distribution(traces)
    assert all(p in seen[t.task] for p, t in zip(dist, traces))


@pytest.mark.parametrize("spec", ["nope", "simulated:abc", "simulated:1.5", "gold:x", "random:zzz", "trained:"])
def test_bad_specs_are_errors(spec, traces):
    from reward_model.registry import check_locator_spec

    with pytest.raises(ValueError):
        check_locator_spec(spec)  # what commands run before loading anything
    with pytest.raises(ValueError):
        make_locator(spec, LocatorOptions(distribution_traces=traces))


def test_registry_is_a_plain_dict():
    assert {"gold", "random", "simulated", "trained"} <= set(LOCATORS)


def test_first_mistake_threshold():
    assert first_mistake([0.1, 0.6, 0.9], 0.5) == 1
    assert first_mistake([0.1, 0.6, 0.9], 0.7) == 2
    assert first_mistake([0.1, 0.2], 0.5) is None


# ------------------------------------------------------------------ checks
def test_arithmetic_chains():
    assert evaluate("(-9 - 5 - 0)") == -14
    assert evaluate("3 / 0") is None and evaluate("abc") is None
    assert check_chains("Let's calculate C = ((3 * 4 * 5) * (7 - -7 * 4)) = ((3 * 4 * 5) * (7 - 28)) = -1260.", {}) == (2, 1)
    assert check_chains("A = (-4 + -5 * -7 + 4) = (-4 + 35 + 4) = 35.", {}) == (2, 0)
    assert check_chains("A - B = 1 - 2 = -1", {"A": 1, "B": 2}) == (2, 0)
    assert check_chains("A - B = 1 - 2 = -1", {"A": 5, "B": 2})[1] == 1


def test_letters_check():
    ctx = StepContext("word_sorting", "q", (), 'The first letter: "kitten": "k" (11). "scan": "s" (20).')
    assert letters.features(ctx)["check_letter_number"] == 1.0
    ok = StepContext("word_sorting", "q", (), 'The second letter: "kitten": "i" (9).')
    assert letters.features(ok)["check_letter_number"] == 0.0 and letters.features(ok)["check_word_letter"] == 0.0
    bad = StepContext("word_sorting", "q", (), 'The second letter: "kitten": "k" (11).')
    assert letters.features(bad)["check_word_letter"] == 1.0


def _first_fire(trace: Trace, groups) -> int | None:
    for j, c in enumerate(contexts(trace)):
        f = numeric_features(c, groups)
        if any(v > 0 for k, v in f.items() if k.split(".", 1)[1].startswith("check_")):
            return j
    return None


@pytest.mark.parametrize("task", ["dyck_languages", "tracking_shuffled_objects", "multistep_arithmetic"])
def test_task_checks_find_most_gold_mistakes(task):
    ts = [t for t in load_task(task) if t.has_mistake][:40]
    hits = sum(_first_fire(t, FEATURE_SETS["all"]) == t.mistake_index for t in ts)
    assert hits >= 0.75 * len(ts)


def test_deduction_solver():
    t = next(t for t in load_task("logical_deduction") if "antique car show, there are five" in t.input
             and "The station wagon is the second-newest" in t.input and "convertible is older than the hatchback" in t.input)
    objects, solution, _ = task_specific._puzzle(t.input)
    order = sorted(objects, key=solution.get)
    assert order == ["motorcyle", "station wagon", "hatchback", "convertible", "truck"]


# ------------------------------------------------------------------ folds
def test_folds_keep_puzzles_together(traces):
    for seed in (0, 1):
        fold = group_folds(traces, 5, seed)
        where = defaultdict(set)
        for t, f in zip(traces, fold):
            where[group_key(t)].add(f)
        assert all(len(v) == 1 for v in where.values())
        for f in range(5):  # every task in every fold
            assert {t.task for t, x in zip(traces, fold) if x == f} == {t.task for t in traces}
    ld_groups = {group_key(t) for t in traces if t.task == "logical_deduction"}
    assert len(ld_groups) < 300  # the dataset really has puzzles with several questions
    for name, tr, te in splits(traces, "cv", 5, 0):
        assert not {group_key(traces[i]) for i in tr} & {group_key(traces[i]) for i in te}
    for name, tr, te in splits(traces, "leave-one-task-out", 5, 0):
        assert {traces[i].task for i in te} == {name} and name not in {traces[i].task for i in tr}


def test_extra_training_traces_join_every_split_and_are_never_tested():
    from reward_model.evaluation import evaluate

    tested = load_task("multistep_arithmetic")[:60] + load_task("dyck_languages")[:60]
    extra = [t.replace(id=f"extra-{t.id}", task="gsm8k") for t in load_task("word_sorting")[:50]]
    cfg = TrainConfig(features="generic", max_vocab=500, inner_folds=2)
    plain = evaluate(tested, "leave-one-task-out", cfg)
    more = evaluate(tested, "leave-one-task-out", cfg, extra=extra)
    assert [s["n_train"] for s in more["splits"]] == [s["n_train"] + 50 for s in plain["splits"]] == [110, 110]
    assert set(more["predictions"]) == {t.id for t in tested} and more["n_extra_training_traces"] == 50
    assert more["checks_alone"] == plain["checks_alone"]  # the checks learn nothing


# ------------------------------------------------------------------ classifier
@pytest.fixture(scope="module")
def small_model():
    ts = load_task("multistep_arithmetic") + load_task("tracking_shuffled_objects")[:100]
    return ts, train(ts, TrainConfig(features="all", max_vocab=2000))


def test_save_load_round_trip(small_model, tmp_path):
    ts, model = small_model
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"config.json", "vocabulary.json", "weights.safetensors"}
    loaded = StepClassifier.load(tmp_path / "m")
    assert loaded.threshold == model.threshold
    a, b = model.scores(ts), loaded.scores(ts)
    assert a == b
    loc = make_locator(f"trained:{tmp_path / 'm'}")
    assert locate(loc, ts, loc.threshold) == [first_mistake(s, model.threshold) for s in a]
    meta = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert meta["feature_set"] == "features=all"


def test_trained_model_learns(small_model):
    ts, model = small_model
    preds = locate(make_locator("gold"), ts)
    got = [first_mistake(s, model.threshold) for s in model.scores(ts)]
    assert sum(p == g for p, g in zip(preds, got)) / len(ts) > 0.7
    assert 0.05 <= model.threshold <= 0.95


def test_generic_features_never_look_at_the_task():
    t = load_task("multistep_arithmetic")[0]
    a = [numeric_features(c, FEATURE_SETS["generic"]) for c in contexts(t)]
    b = [numeric_features(StepContext("dyck_languages", c.question, c.previous, c.step), FEATURE_SETS["generic"])
         for c in contexts(t)]
    assert a == b
    assert not any(k.startswith("task_specific.") for d in a for k in d)


def test_train_config_validation():
    with pytest.raises(ValueError):
        TrainConfig(features="everything")
    with pytest.raises(ValueError):
        TrainConfig(drop_groups=("nope",))
    with pytest.raises(ValueError):
        TrainConfig(inner_folds=1)


# ------------------------------------------------------------------ CLI
def test_cli_train_and_locate(tmp_path):
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["rm", "train", "--out", str(tmp_path / "m"), "--task", "multistep_arithmetic", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["feature_set"] == "features=all"
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(t.to_record()) + "\n" for t in load_task("multistep_arithmetic")[:30]),
                   encoding="utf-8")
    r = runner.invoke(app, ["rm", "locate", str(src), "--model", str(tmp_path / "m"), "--out", str(tmp_path / "p.jsonl"), "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 30 and all(len(x["step_scores"]) == len(x["steps"]) for x in rows)
    r = runner.invoke(app, ["rm", "locate", str(src), "--locator", "gold", "--out", str(tmp_path / "g.jsonl"), "--json"])
    assert json.loads(r.output)["scores_against_file_labels"]["overall"]["accuracy_overall"] == 100.0
    r = runner.invoke(app, ["rm", "locate", str(src), "--locator", "bogus", "--out", str(tmp_path / "x.jsonl")])
    assert r.exit_code == 1 and "unknown locator" in r.output


def test_generic_state_and_comparison_checks():
    from reward_model.features import state
    from reward_model.features.arithmetic import check_comparisons

    assert check_comparisons('(2) ["being" ? "widen"] < (3) "cider"') == (1, 1)
    assert check_comparisons('"ammerman" < "atheism" < "bay"') == (2, 0)
    q = "( [ ]"
    walk = StepContext("x", q, ("We go one by one.", "( ; stack: ("), "] ; stack: ( ]")
    assert state.features(walk)["check_walk_order"] == 1.0  # the second symbol of the question is "["
    good = StepContext("x", q, ("We go one by one.", "( ; stack: ("), "[ ; stack: ( [")
    f = state.features(good)
    assert f["check_walk_order"] == 0.0 and f["check_sequence_jump"] == 0.0 and f["check_gained_other_symbol"] == 0.0
    swap = StepContext("x", "q", ("At the start: Alice: red, Bob: blue, Claire: green.",),
                       "Alice and Bob swap: Alice: green, Bob: blue, Claire: red.")
    f = state.features(swap)
    assert f["check_changed_not_named"] == 1.0 and f["check_not_conserved"] == 0.0
    ok = StepContext("x", "q", swap.previous, "Alice and Bob swap: Alice: blue, Bob: red, Claire: green.")
    assert state.features(ok)["check_changed_not_named"] == 0.0


@pytest.mark.slow
def test_default_trained_model_is_cached(tmp_path, traces):
    from reward_model.trained import default_trained_model

    def folders():  # the hidden entry is the lock file beside the model folder
        return sorted(p for p in tmp_path.iterdir() if not p.name.startswith("."))

    first = default_trained_model(tmp_path)
    made = folders()
    assert len(made) == 1 and (made[0] / "weights.safetensors").is_file()
    second = default_trained_model(tmp_path)  # loads, does not train again
    assert folders() == made
    some = traces[::50]
    assert first.scores(some) == second.scores(some)


def test_eval_writes_out_of_split_predictions_that_data_score_reproduces(tmp_path):
    """--predictions-out: one line per evaluated trace, and `bbm data score` on the file gives the
    evaluation's own accuracy (the file is what a Table 4 comparison on a subset of traces reads)."""
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["rm", "eval", "--task", "multistep_arithmetic", "--folds", "2",
                            "--predictions-out", str(tmp_path), "--json"])
    assert r.exit_code == 1 and "is a folder" in r.output  # refused before any training
    out = tmp_path / "preds.jsonl"
    r = runner.invoke(app, ["rm", "eval", "--task", "multistep_arithmetic", "--folds", "2",
                            "--predictions-out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["id"] for x in rows] == [t.id for t in load_task("multistep_arithmetic")]
    assert {x["task"] for x in rows} == {"multistep_arithmetic"} and "predictions" not in report
    r = runner.invoke(app, ["data", "score", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["scores"]["overall"]["accuracy_overall"] == report["scores"]["overall"]["accuracy_overall"]

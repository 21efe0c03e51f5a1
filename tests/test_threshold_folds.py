"""The step classifier's threshold comes from out-of-fold scores of inner folds. An inner fold whose
training part has no example of a class (here: no mistake step) cannot be fitted: it is left out,
and so are its traces, instead of stopping the training or counting its unscored traces."""
from __future__ import annotations

from bigbench_mistake.dataset import load_task
from reward_model.classifier import TrainConfig, _fit, choose_threshold, extract, group_folds, train

CONFIG = TrainConfig(features="generic", max_vocab=300, inner_folds=2)


def test_a_fold_without_mistakes_to_learn_from_leaves_the_threshold_to_the_others():
    traces = load_task("multistep_arithmetic")[:60]
    folds = group_folds(traces, CONFIG.inner_folds, CONFIG.seed)
    # fold 0 keeps no mistake: the inner model that trains on fold 0 alone (to score fold 1) cannot be fitted
    traces = [t.replace(mistake_index=None) if f == 0 else t for t, f in zip(traces, folds)]
    assert any(t.mistake_index is not None for t in traces)
    model = train(traces, CONFIG)
    feats = extract(traces, CONFIG.groups)
    fit = [i for i, f in enumerate(folds) if f == 1]
    scored = [i for i, f in enumerate(folds) if f == 0]
    inner = _fit([traces[i] for i in fit], [feats[i] for i in fit], CONFIG)
    oof = inner.step_scores([traces[i].task for i in scored], [feats[i] for i in scored])
    assert model.threshold == choose_threshold([traces[i] for i in scored], oof)
    assert model.info["threshold_traces"] == len(scored)

"""Trained locators behind the Locator interface, loading any saved model folder by its `kind`, and
the cached default model the main pipeline embeds."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from bigbench_mistake.records import Trace

from .classifier import MODEL_KIND, StepClassifier, TrainConfig, train
from .features import FEATURES_VERSION


class TrainedLocator:
    """Step scores from a fitted classifier; `threshold` is the one chosen at training time."""

    causal = True  # a step's score reads the question, the steps before it and the step, nothing later

    def __init__(self, model, path: str | Path | None = None):
        self.model = model
        self.threshold = model.threshold
        self.name = f"trained:{path}" if path is not None else "trained"

    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        return self.model.scores(traces)


def load_model(model_dir: str | Path):
    """The saved model in `model_dir`, by its kind; a damaged folder raises ModelFileError (saved.py)."""
    from .saved import ModelFileError, read_config

    cfg, meta = read_config(model_dir)
    kind = meta.get("kind")
    if kind == MODEL_KIND:
        return StepClassifier.load(model_dir)
    from .transformer import TRANSFORMER_KIND, TransformerStepClassifier

    if kind == TRANSFORMER_KIND:
        return TransformerStepClassifier.load(model_dir)
    raise ModelFileError(f"{cfg}: field 'kind' is {kind!r}; expected {MODEL_KIND!r} or {TRANSFORMER_KIND!r}")


def load_locator(model_dir: str | Path) -> TrainedLocator:
    return TrainedLocator(load_model(model_dir), model_dir)


def default_trained_model(cache_dir: str | Path, config: TrainConfig = TrainConfig(),
                          data_dir: str | Path | None = None) -> TrainedLocator:
    """The CPU classifier trained once on the shipped (or given) data and cached under `cache_dir`.
    The cache key holds the training config and a hash of the training data. Saved into a temporary
    folder and renamed into place under a lock (backtrack/lm/cache_files.py), config.json last: a
    second process setting up the same cache waits and loads the first one's model."""
    from backtrack.lm.cache_files import publish_dir
    from bigbench_mistake.dataset import load_all

    traces = load_all(data_dir)
    h = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    h.update(f"features v{FEATURES_VERSION}".encode())
    for t in traces:
        h.update(json.dumps(t.to_record(), sort_keys=True).encode())
    folder = Path(cache_dir) / f"step-logreg-{h.hexdigest()[:16]}"
    publish_dir(folder, "config.json", lambda tmp: train(traces, config).save(tmp))
    return load_locator(folder)

"""The fast CPU step classifier: logistic regression on a bag of words of the step plus the numeric
features of `reward_model.features`, trained on step-level examples.

Follows TRL's pair: a frozen `TrainConfig` and a `train(traces, config)` function. Training examples
are the steps up to the first mistake (steps before it: correct; the mistake step: wrong; later
steps unused). The decision threshold is chosen on out-of-fold scores of the training traces only
(inner puzzle-aware folds), maximising exact first-mistake accuracy; an inner fold whose training
part lacks a class (no mistake step, or no correct one) cannot be fitted and is left out with its
traces, which are never counted as "predicted: no mistake" (0.5 when no fold can be scored). The fitted model is plain
arrays (vocabulary, idf, scaler, coefficients) saved as config.json + weights.safetensors; scoring
always goes through the same numpy code, so a loaded model predicts exactly what the trained one did.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bigbench_mistake.records import Trace

from .features import FEATURE_SETS, checks_fired, contexts, numeric_features, step_text
from .locator import DEFAULT_THRESHOLD, first_mistake

MODEL_KIND = "bbm-step-logreg"
FORMAT_VERSION = 1
TOKEN_PATTERN = r"[A-Za-z]+|\d+|[^\sA-Za-z\d]"


@dataclass(frozen=True)
class TrainConfig:
    features: str = "all"  # "all" | "generic" (no group that knows the task)
    drop_groups: tuple[str, ...] = ()  # ablation: leave these feature groups out
    text: bool = True  # the bag of words of the step
    task_interactions: bool = True  # per-task copies of the numeric features (only with features="all")
    C: float = 1.0
    ngram_max: int = 2
    min_df: int = 2
    max_vocab: int = 20000
    inner_folds: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.features not in FEATURE_SETS:
            raise ValueError(f"features must be one of {', '.join(FEATURE_SETS)}, got {self.features!r}")
        unknown = set(self.drop_groups) - set(FEATURE_SETS["all"])
        if unknown:
            raise ValueError(f"unknown feature group(s) in drop_groups: {', '.join(sorted(unknown))}")
        if self.C <= 0 or self.ngram_max < 1 or self.min_df < 1 or self.max_vocab < 1:
            raise ValueError("C must be > 0; ngram_max, min_df and max_vocab must be >= 1")
        if self.inner_folds < 2:
            raise ValueError("inner_folds must be >= 2 (the threshold is chosen out of fold)")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(g for g in FEATURE_SETS[self.features] if g not in self.drop_groups and g != "text") \
            if not self.text else tuple(g for g in FEATURE_SETS[self.features] if g not in self.drop_groups)

    @property
    def uses_task(self) -> bool:
        return self.features == "all" and self.task_interactions

    def describe(self) -> str:
        parts = [f"features={self.features}"]
        if self.drop_groups:
            parts.append("without " + "+".join(self.drop_groups))
        if not self.text:
            parts.append("no bag of words")
        return ", ".join(parts)


@dataclass
class TraceFeatures:
    """Everything a trace's steps contribute, extracted once (the slow part) and reused across folds."""

    texts: list[str]
    numeric: list[dict[str, float]]


def extract(traces: Sequence[Trace], groups: Sequence[str]) -> list[TraceFeatures]:
    out = []
    for t in traces:
        ctxs = contexts(t)
        out.append(TraceFeatures([step_text(c) for c in ctxs], [numeric_features(c, groups) for c in ctxs]))
    return out


def training_steps(trace: Trace) -> tuple[int, list[int]]:
    """(number of steps used, labels: 1 = the first mistake) - later steps are not used."""
    last = len(trace.steps) if trace.mistake_index is None else trace.mistake_index + 1
    return last, [int(j == trace.mistake_index) for j in range(last)]


@dataclass
class StepClassifier:
    config: TrainConfig
    vocabulary: list[str]
    idf: np.ndarray
    numeric_names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    tasks: list[str]  # tasks with their own copy of the numeric weights ([] when not used)
    coef: np.ndarray
    intercept: float
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- scoring
    def _vectorizer(self):
        if getattr(self, "_vec", None) is None:
            self._vec = self._build_vectorizer()
        return self._vec

    def _build_vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN, ngram_range=(1, self.config.ngram_max),
                              sublinear_tf=True, vocabulary={w: i for i, w in enumerate(self.vocabulary)})
        vec.idf_ = self.idf
        return vec

    def design(self, tasks: Sequence[str], texts: Sequence[str], numeric: Sequence[dict[str, float]]):
        """The design matrix: bag of words | standardised numeric | per-task numeric copies."""
        from scipy import sparse

        blocks = []
        if self.vocabulary:
            blocks.append(self._vectorizer().transform(texts))
        num = np.array([[d.get(n, 0.0) for n in self.numeric_names] for d in numeric], dtype=np.float64)
        num = (num - self.mean) / self.scale
        blocks.append(sparse.csr_matrix(num))
        for task in self.tasks:
            mask = np.array([t == task for t in tasks], dtype=np.float64)[:, None]
            blocks.append(sparse.csr_matrix(num * mask))
        return sparse.hstack(blocks, format="csr")

    def step_scores(self, trace_tasks: Sequence[str], feats: Sequence[TraceFeatures]) -> list[list[float]]:
        tasks = [task for task, f in zip(trace_tasks, feats) for _ in f.texts]
        texts = [s for f in feats for s in f.texts]
        numeric = [d for f in feats for d in f.numeric]
        if not texts:
            return [[] for _ in feats]
        z = self.design(tasks, texts, numeric) @ self.coef + self.intercept
        p = 1.0 / (1.0 + np.exp(-z))
        out, k = [], 0
        for f in feats:
            out.append([float(v) for v in p[k:k + len(f.texts)]])
            k += len(f.texts)
        return out

    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        return self.step_scores([t.task for t in traces], extract(traces, self.config.groups))

    # ---------------------------------------------------------------- persistence
    def save(self, out_dir: str | Path) -> Path:
        from safetensors.numpy import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "kind": MODEL_KIND, "format_version": FORMAT_VERSION, "train_config": asdict(self.config),
            "feature_groups": list(self.config.groups), "feature_set": self.config.describe(),
            "numeric_names": self.numeric_names, "tasks": self.tasks, "intercept": self.intercept,
            "threshold": self.threshold, "info": self.info,
        }
        (out / "vocabulary.json").write_text(json.dumps(self.vocabulary, ensure_ascii=False), encoding="utf-8")
        save_file({"idf": self.idf, "mean": self.mean, "scale": self.scale, "coef": self.coef},
                  str(out / "weights.safetensors"))
        # config.json last: a folder with it is complete (the default model's cache counts on that)
        (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, model_dir: str | Path) -> "StepClassifier":
        model = cls(**_read_saved(Path(model_dir)))
        if model.vocabulary:
            model._vectorizer()  # build it (and import scikit-learn) at load time, not on the first batch
        return model


def _read_saved(d: Path) -> dict[str, Any]:
    """The fields of a saved StepClassifier, every file checked (see reward_model/saved.py)."""
    from .saved import RETRAIN, ModelFileError, check_finite, field, load_arrays, read_config, read_json

    cfg_path, meta = read_config(d)
    if meta.get("kind") != MODEL_KIND:
        raise ModelFileError(f"{cfg_path}: field 'kind' is {meta.get('kind')!r}, expected {MODEL_KIND!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{cfg_path}: format_version {meta.get('format_version')!r}; this bbm reads format_version "
                             f"{FORMAT_VERSION} only: train the model again with this bbm (bbm rm train)")
    raw = dict(field(meta, cfg_path, "train_config", dict))
    raw["drop_groups"] = tuple(raw.get("drop_groups", ()))
    try:
        config = TrainConfig(**raw)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{cfg_path}: field 'train_config': {e}; {RETRAIN}") from None
    names, tasks = field(meta, cfg_path, "numeric_names", list), field(meta, cfg_path, "tasks", list)
    intercept, threshold = (float(field(meta, cfg_path, k, (int, float))) for k in ("intercept", "threshold"))
    check_finite(cfg_path, "field 'intercept'", intercept)
    if not 0.0 <= threshold <= 1.0:
        raise ModelFileError(f"{cfg_path}: field 'threshold' is {threshold}, expected a number in [0, 1]; {RETRAIN}")
    vocab_path = d / "vocabulary.json"
    vocab = read_json(vocab_path)
    if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
        raise ModelFileError(f"{vocab_path}: expected a JSON list of words; {RETRAIN}")
    w_path = d / "weights.safetensors"
    w = load_arrays(w_path, ("idf", "mean", "scale", "coef"))
    sizes = {"idf": (len(vocab), f"{vocab_path} lists {len(vocab)} vocabulary words"),
             "mean": (len(names), f"config.json names {len(names)} numeric features"),
             "scale": (len(names), f"config.json names {len(names)} numeric features"),
             "coef": (len(vocab) + len(names) * (1 + len(tasks)), "the vocabulary and features take that many")}
    for name, (n, why) in sizes.items():
        if len(w[name]) != n:
            raise ModelFileError(f"{w_path}: tensor {name!r} has {len(w[name])} values, expected {n} ({why}); the "
                                 f"files do not belong together: {RETRAIN}")
    if not np.all(w["scale"] > 0):
        raise ModelFileError(f"{w_path}: tensor 'scale' holds values <= 0; {RETRAIN}")
    return dict(config=config, vocabulary=vocab, idf=w["idf"], numeric_names=names, mean=w["mean"], scale=w["scale"],
                tasks=tasks, coef=w["coef"], intercept=intercept, threshold=threshold, info=meta.get("info", {}))


# -------------------------------------------------------------------- training
def _fit(traces: Sequence[Trace], feats: Sequence[TraceFeatures], config: TrainConfig) -> StepClassifier:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    tasks, texts, numeric, labels = [], [], [], []
    for t, f in zip(traces, feats):
        last, y = training_steps(t)
        tasks += [t.task] * last
        texts += f.texts[:last]
        numeric += f.numeric[:last]
        labels += y
    if not _both_classes(traces):
        raise ValueError("training needs both correct steps and mistake steps")
    vocab, idf = [], np.zeros(0)
    if config.text:
        vec = TfidfVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN, ngram_range=(1, config.ngram_max),
                              sublinear_tf=True, min_df=config.min_df, max_features=config.max_vocab)
        vec.fit(texts)
        vocab = [w for w, _ in sorted(vec.vocabulary_.items(), key=lambda kv: kv[1])]
        idf = vec.idf_.astype(np.float64)
    names = sorted({n for d in numeric for n in d})
    num = np.array([[d.get(n, 0.0) for n in names] for d in numeric], dtype=np.float64)
    mean, scale = num.mean(axis=0), num.std(axis=0)
    scale[scale == 0] = 1.0
    task_list = sorted(set(tasks)) if config.uses_task else []
    model = StepClassifier(config, vocab, idf, names, mean, scale, task_list, np.zeros(0), 0.0)
    X = model.design(tasks, texts, numeric)
    lr = LogisticRegression(C=config.C, max_iter=2000, solver="liblinear", random_state=config.seed)
    lr.fit(X, np.array(labels))
    model.coef = lr.coef_[0].astype(np.float64)
    model.intercept = float(lr.intercept_[0])
    return model


def _both_classes(traces: Sequence[Trace]) -> bool:
    """Do the training steps of `traces` hold a mistake step and a correct step?"""
    labels = {y for t in traces for y in training_steps(t)[1]}
    return labels == {0, 1}


def group_folds(traces: Sequence[Trace], k: int, seed: int) -> list[int]:
    """A fold number per trace; all questions of one group (see `group_key`) share a fold, and every
    task is spread over the folds (largest groups first, each to the currently smallest fold)."""
    import random

    from bigbench_mistake.dataset import group_key

    rng = random.Random(seed)
    by_task: dict[str, dict[str, list[int]]] = {}
    for i, t in enumerate(traces):
        by_task.setdefault(t.task, {}).setdefault(group_key(t), []).append(i)
    fold = [0] * len(traces)
    for task in sorted(by_task):
        groups = list(by_task[task].values())
        rng.shuffle(groups)
        groups.sort(key=len, reverse=True)
        sizes = [0] * k
        for g in groups:
            f = min(range(k), key=lambda j: (sizes[j], j))
            sizes[f] += len(g)
            for i in g:
                fold[i] = f
    return fold


def choose_threshold(traces: Sequence[Trace], scores: Sequence[Sequence[float]]) -> float:
    """The threshold with the best exact first-mistake accuracy (ties: the value nearest 0.5)."""
    grid = [round(x, 3) for x in np.arange(0.05, 0.951, 0.025)]
    best = max(grid, key=lambda th: (sum(first_mistake(s, th) == t.mistake_index for t, s in zip(traces, scores)),
                                     -abs(th - 0.5)))
    return float(best)


def train(traces: Sequence[Trace], config: TrainConfig = TrainConfig(),
          feats: Sequence[TraceFeatures] | None = None) -> StepClassifier:
    """Fit on all `traces`; the threshold comes from inner out-of-fold scores on the same traces."""
    t0 = time.perf_counter()
    if feats is None:
        feats = extract(traces, config.groups)
    folds = group_folds(traces, config.inner_folds, config.seed)
    oof: dict[int, list[float]] = {}  # trace index -> out-of-fold step scores (traces of fitted folds only)
    for f in range(config.inner_folds):
        tr = [i for i, x in enumerate(folds) if x != f]
        te = [i for i, x in enumerate(folds) if x == f]
        if not te or not _both_classes([traces[i] for i in tr]):
            continue  # nothing to score, or nothing to learn one class from
        inner = _fit([traces[i] for i in tr], [feats[i] for i in tr], config)
        oof.update(zip(te, inner.step_scores([traces[i].task for i in te], [feats[i] for i in te])))
    model = _fit(traces, feats, config)
    scored = sorted(oof)
    model.threshold = (choose_threshold([traces[i] for i in scored], [oof[i] for i in scored]) if scored
                       else DEFAULT_THRESHOLD)
    model.info = {"n_traces": len(traces), "tasks": sorted({t.task for t in traces}), "seed": config.seed,
                  "threshold_traces": len(scored), "n_train_steps": sum(training_steps(t)[0] for t in traces),
                  "train_seconds": round(time.perf_counter() - t0, 2), "feature_set": config.describe()}
    return model


def checks_predictions(traces: Sequence[Trace], feats: Sequence[TraceFeatures]) -> dict[str, int | None]:
    """The hand-written checks alone, no learning: the first step where any check fires."""
    return {t.id: next((j for j, d in enumerate(f.numeric) if checks_fired(d)), None) for t, f in zip(traces, feats)}

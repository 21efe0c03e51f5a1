"""Candidate locator (issue 13): a linear probe on a generator's own hidden states at each step's end,
measured side by side with the CPU classifier and the checks alone on planted GSM8K traces.

For every trace, the model reads `Question: ...` and the steps, one `Thought N:` line each, in one
forward pass; the probe sees the final hidden state (llama.cpp's output embedding, after the last
norm) at the last token of each step's line. Like the CPU classifier it is trained on the steps up
to the first mistake (label 1 there, 0 before), and a trace's located mistake is its first step scored
at or above the threshold, fitted out of fold on the training traces (best F1). Every locator below is
trained on the same planted training traces and scored on the same held-out ones (no question
shared), with F1 = harmonic mean of the exact first-error accuracy and the no-error accuracy.

    python benchmarks/probe_locator.py --model gemma-3-270m --train 600 --heldout 240
    python benchmarks/probe_locator.py --model qwen2.5-coder-1.5b --train 300 --heldout 240

Hidden states are cached per model file and trace under --cache (one .npy each), so a stopped run
resumes and a second run only trains and scores.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def planted(gsm8k: Path, rate: float, seed: int, n_train: int, n_heldout: int):
    from bigbench_mistake.gsm8k import planted_traces
    from bigbench_mistake.records import Trace

    records = planted_traces(gsm8k, mistake_rate=rate, seed=0)
    rng = random.Random(seed)
    out = {}
    for split, n in (("train", n_train), ("heldout", n_heldout)):
        rows = [r for r in records if r["split"] == split]
        rng.shuffle(rows)
        out[split] = [Trace(r["task"], r["id"], r["input"], tuple(r["steps"]), r["answer"], r["target"],
                            r["mistake_index"], {"planted": r["planted"]}) for r in rows[:n]]
    return out


def trace_text(t) -> list[str]:
    """The pieces whose ends are the step ends: the question line, then one line per step."""
    return [f"Question: {t.input}\n"] + [f"Thought {i + 1}: {s}\n" for i, s in enumerate(t.steps)]


class HiddenStates:
    """Step-end hidden states from llama.cpp (one forward pass a trace), cached on disk."""

    def __init__(self, gguf: Path, threads: int, cache: Path):
        from backtrack.lm.embedded import sha256_file

        self.gguf, self.threads = gguf, threads
        self.cache = cache / sha256_file(gguf)[:16]
        self.cache.mkdir(parents=True, exist_ok=True)
        self._llm = None
        self.tokens = 0
        self.seconds = 0.0
        self.boundary_mismatches = 0

    def _model(self):
        if self._llm is None:
            import llama_cpp

            self._llm = llama_cpp.Llama(str(self.gguf), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_NONE,
                                        n_ctx=4096, n_batch=2048, n_ubatch=2048, n_threads=self.threads,
                                        n_threads_batch=self.threads, verbose=False)
        return self._llm

    def __call__(self, trace) -> np.ndarray:
        path = self.cache / f"{trace.id}.npy"
        if path.exists():
            return np.load(path)
        llm = self._model()
        pieces = trace_text(trace)
        text = "".join(pieces)
        full = llm.tokenize(text.encode(), add_bos=True, special=False)  # as Llama.embed tokenizes it
        ends, prefix = [], ""
        for piece in pieces:
            prefix += piece
            toks = llm.tokenize(prefix.encode(), add_bos=True, special=False)
            # The newline that ends a line can merge with the next token in some vocabularies; the
            # prefix's own last token is then not the full text's token at that position (counted).
            self.boundary_mismatches += toks != full[:len(toks)]
            ends.append(len(toks) - 1)
        t0 = time.perf_counter()
        emb = llm.embed(text, normalize=False)
        self.seconds += time.perf_counter() - t0
        self.tokens += len(full)
        emb = np.asarray(emb, dtype=np.float32)
        if len(emb) != len(full):
            raise RuntimeError(f"{trace.id}: {len(emb)} embeddings for {len(full)} tokens")
        states = emb[ends[1:]]  # one per step (the question line's end is not a step)
        np.save(path, states)
        return states


def training_rows(traces, per_step):
    from reward_model.classifier import training_steps

    X, y = [], []
    for t, s in zip(traces, per_step):
        last, labels = training_steps(t)
        X.append(s[:last])
        y += labels
    return np.concatenate(X), np.array(y)


class Probe:
    """Standardised features, L2 logistic regression; C and the threshold chosen out of fold (best F1)."""

    def __init__(self, C: float):
        self.C = C

    def fit(self, traces, per_step):
        from sklearn.linear_model import LogisticRegression

        X, y = training_rows(traces, per_step)
        self.mean, self.scale = X.mean(axis=0), X.std(axis=0) + 1e-6
        self.lr = LogisticRegression(C=self.C, max_iter=3000, class_weight="balanced")
        self.lr.fit((X - self.mean) / self.scale, y)
        return self

    def scores(self, per_step) -> list[list[float]]:
        return [list(self.lr.predict_proba((s - self.mean) / self.scale)[:, 1]) for s in per_step]


def fit_probe(traces, per_step, folds: int = 3, grid=(0.001, 0.01, 0.1, 1.0)):
    """The C with the best out-of-fold F1, refitted on all traces with its out-of-fold threshold."""
    from reward_model.calibration import f1, labelled_threshold
    from reward_model.locator import first_mistake

    fold = [i % folds for i in range(len(traces))]
    best = None
    for C in grid:
        oof = [None] * len(traces)
        for f in range(folds):
            tr = [i for i in range(len(traces)) if fold[i] != f]
            te = [i for i in range(len(traces)) if fold[i] == f]
            p = Probe(C).fit([traces[i] for i in tr], [per_step[i] for i in tr])
            for i, s in zip(te, p.scores([per_step[i] for i in te])):
                oof[i] = s
        th = labelled_threshold(traces, oof)
        score = f1(traces, [first_mistake(s, th) for s in oof])
        if best is None or score > best[0]:
            best = (score, C, th)
    probe = Probe(best[1]).fit(traces, per_step)
    probe.threshold, probe.oof_f1 = best[2], best[0]
    return probe


def evaluate(traces, scores, threshold) -> dict:
    from sklearn.metrics import roc_auc_score

    from bigbench_mistake.metrics import mistake_finding_scores
    from reward_model.calibration import f1
    from reward_model.locator import first_mistake

    preds = [first_mistake(s, threshold) for s in scores]
    m = mistake_finding_scores(traces, {t.id: p for t, p in zip(traces, preds)})["overall"]
    peaks = [max(s) if s else 0.0 for s in scores]
    # F1 from the unrounded accuracies (calibration.f1), as the figures in the README were computed
    return {"f1": round(100 * f1(traces, preds), 1), "first_error_acc": round(m["accuracy_mistake"], 1),
            "no_error_acc": round(m["accuracy_no_mistake"], 1),
            "auroc_has_mistake": round(float(roc_auc_score([t.has_mistake for t in traces], peaks)), 3),
            "threshold": round(float(threshold), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma-3-270m", help="packaged model name or a .gguf file")
    ap.add_argument("--gsm8k", default=str(ROOT.parent / "shared/data/gsm8k/train.jsonl"))
    ap.add_argument("--train", type=int, default=600, help="planted training traces")
    ap.add_argument("--heldout", type=int, default=240, help="held-out traces (no question shared)")
    ap.add_argument("--mistake-rate", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0, help="which traces are drawn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=str(Path.home() / ".cache/bbm/probe-states"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from backtrack.lm.backends import default_cache_dir
    from backtrack.lm.embedded import MODELS, model_gguf
    from reward_model.checks import ChecksLocator
    from reward_model.classifier import TrainConfig, extract, train

    gguf = model_gguf(args.model, default_cache_dir()) if args.model in MODELS else Path(args.model)
    data = planted(Path(args.gsm8k), args.mistake_rate, args.seed, args.train, args.heldout)
    tr, te = data["train"], data["heldout"]
    states = HiddenStates(gguf, args.threads, Path(args.cache))
    t0 = time.perf_counter()
    h_tr = [states(t) for t in tr]
    h_te = [states(t) for t in te]
    extract_s = time.perf_counter() - t0

    rows = {}
    probe = fit_probe(tr, h_tr)
    rows["probe (hidden states)"] = evaluate(te, probe.scores(h_te), probe.threshold) | {"C": probe.C}

    config = TrainConfig(features="generic")
    f_tr, f_te = extract(tr, config.groups), extract(te, config.groups)
    names = sorted({n for f in f_tr for d in f.numeric for n in d})

    def numeric(feats):
        return [np.array([[d.get(n, 0.0) for n in names] for d in f.numeric], dtype=np.float32) for f in feats]

    both_tr = [np.hstack([h, c]) for h, c in zip(h_tr, numeric(f_tr))]
    both_te = [np.hstack([h, c]) for h, c in zip(h_te, numeric(f_te))]
    combo = fit_probe(tr, both_tr)
    rows["probe + generic features"] = evaluate(te, combo.scores(both_te), combo.threshold) | {"C": combo.C}

    logreg = train(tr, config)
    rows["CPU classifier, generic (same training traces)"] = evaluate(te, logreg.scores(te), logreg.threshold)
    rows["checks:generic (no learning)"] = evaluate(te, ChecksLocator("generic").scores(te), 0.5)

    out = {"model": args.model, "gguf": str(gguf), "n_train": len(tr), "n_heldout": len(te),
           "heldout_with_mistake": sum(t.has_mistake for t in te), "hidden_size": int(h_tr[0].shape[1]),
           "tokens_read": states.tokens, "extract_s": round(extract_s, 1),
           "tokens_per_s": round(states.tokens / states.seconds, 1) if states.seconds else None,
           "boundary_mismatches": states.boundary_mismatches, "rows": rows}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"model {args.model}: {len(tr)} training / {len(te)} held-out traces "
          f"({out['heldout_with_mistake']} with a mistake), hidden size {out['hidden_size']}; "
          f"read {states.tokens} tokens in {extract_s:.0f} s ({out['tokens_per_s']} tokens/s; 0 = all cached)")
    print("| locator | F1 | first-error acc. | no-error acc. | AUROC (trace has a mistake) |\n|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['f1']} | {r['first_error_acc']} | {r['no_error_acc']} | {r['auroc_has_mistake']} |")


if __name__ == "__main__":
    main()

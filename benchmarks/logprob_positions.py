"""Where llama.cpp's log-probs move with the batch (the exactness gap of the README, traced to one
position): the logits after the last token of a task's few-shot prompt + question, computed

- as the last row of the prompt's chunked evaluation (the reference),
- again alone, in the same sequence (1 row instead of a chunk),
- again alone while 8 other sequences (as the n samples of a step) still hold the cell it had,
- and, for contrast, a new position decoded once with and once without those 8 sharers, and as one
  row of a 9-stream batch (the sharers each decoding a token at the same position, as samples do).

Each line prints the largest difference of a log-prob over the whole vocabulary and over the
reference's 5 most likely tokens.

    python benchmarks/logprob_positions.py --model qwen2.5-coder-1.5b --threads 1 [--kernels invariant]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "bbm"))
    ap.add_argument("--kernels", choices=("fast", "invariant"), default="fast", help="--llama-kernels")
    args = ap.parse_args()

    from backtrack.lm.backends import LlamaOptions, load_llama
    from backtrack.lm.llama_cpp_backend import _log_softmax

    def log_softmax(x: np.ndarray) -> np.ndarray:  # in float64, as the backend samples
        return _log_softmax(x.astype(np.float64))
    from bigbench_mistake.dataset import load_task
    from bigbench_mistake.tasks import TASKS

    q = load_task("multistep_arithmetic")[0]
    gen = load_llama(args.model, args.cache_dir, LlamaOptions(threads=args.threads, n_ctx=8192, prefix_states=False,
                                                              batch_invariant=args.kernels == "invariant"))
    t = gen.tokenize(TASKS["multistep_arithmetic"].prompt(q.input, q.steps[:2]))
    L, ll, mem = len(t), gen.ll, gen.mem
    pinned: set[int] = set()
    [(s0, first)] = gen._load_prompts([t], pinned)
    ref = log_softmax(first)
    top = np.argsort(-ref)[:5]

    def show(what: str, a: np.ndarray, b: np.ndarray) -> None:
        print(f"{what}: max |Δ log-prob| {np.abs(a - b).max():.5f} over the vocabulary, "
              f"{np.abs(a[top] - b[top]).max():.5f} over the top 5")

    def redo_last() -> np.ndarray:
        ll.llama_memory_seq_rm(mem, s0, L - 1, -1)
        gen._decode([(t[L - 1], L - 1, s0, True)], pinned)
        return log_softmax(gen._logits(0))

    def next_token() -> np.ndarray:
        gen._decode([(int(top[0]), L, s0, True)], pinned)
        out = log_softmax(gen._logits(0))
        ll.llama_memory_seq_rm(mem, s0, L, -1)
        return out

    print(f"{args.model}: a prompt of {L} tokens, {gen.threads} thread(s), {args.kernels} kernels")
    show("last token alone vs in the chunk", ref, redo_last())
    alone_next = next_token()
    sharers = []
    for _ in range(8):
        s = gen._new_seq(pinned | {s0})
        pinned.add(s)
        ll.llama_memory_seq_cp(mem, s0, s, 0, L)
        gen.seqs[s] = list(t)
        sharers.append(s)
    show("next position, 8 sharers vs none", alone_next, next_token())
    show("last token alone while 8 sharers hold its old cell vs in the chunk", ref, redo_last())
    # as the 9 samples of a step: each stream decodes its own token at L in one llama_decode
    ll.llama_memory_seq_rm(mem, s0, L, -1)
    gen._decode([(int(top[0]), L, s0, True)] + [(int(top[k % 5]), L, s, False) for k, s in enumerate(sharers, 1)],
                pinned)
    show("next position as 1 row of a 9-stream batch vs alone", alone_next, log_softmax(gen._logits(0)))
    for s in sharers:
        ll.llama_memory_seq_rm(mem, s, L, -1)
    ll.llama_memory_seq_rm(mem, s0, L, -1)
    for s in sharers:
        gen._free_seq(s)
    show("last token alone once the sharers are gone vs in the chunk", ref, redo_last())
    gen.close()


if __name__ == "__main__":
    main()

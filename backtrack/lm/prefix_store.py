"""Token prefixes whose KV state is kept on disk, so a later run does not compute them again.

Why: on a CPU, the ~2,000-token few-shot prompt of a task costs about a minute for a 1.5B model
(30-38 tokens/s of prompt processing) and a second run pays it again for every task. The llama.cpp
backend keeps prefixes in memory within a run; this store keeps the ones worth keeping across runs.

Which prefixes: a prompt that *branches off* a live sequence after at least `min_tokens` shared
tokens (two questions of one task share the few-shot prompt, then differ) has found a prefix that
several prompts share; it is saved once, up to the last line both prompts complete (the backend cuts
it there), unless a saved prefix already covers the start of it. A
prompt that merely extends a sequence (the next step of the same trace, the samples of a step)
saves nothing, so the store holds about one prefix per task and model, not one per question.

Each prefix is two files in the store's folder, named by a hash of its token ids: `H.kv` (the
sequence state llama.cpp writes) and `H.json` (the token ids, written last: a prefix exists once its
.json does). Both are written under a temporary name and renamed, so concurrent runs never read a
half-written file. The folder is per model file and llama.cpp version (the caller names it), since
a KV state is only valid for the model and kernels that computed it; the context settings that shape
the cache (f16 K and V without flash attention, or q8_0 with it for `--llama-kernels invariant`, whose
folder name ends in +invariant; every position kept) are fixed in the backend, and llama.cpp refuses
a state of another layout (the prefix is then computed).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence


class PrefixStore:
    def __init__(self, folder: str | Path, min_tokens: int = 1024):
        self.folder = Path(folder)
        self.min_tokens = min_tokens
        self.folder.mkdir(parents=True, exist_ok=True)
        self.saved: dict[str, tuple[int, ...]] = {}  # hash -> token ids
        for meta in sorted(self.folder.glob("*.json")):
            try:
                tokens = tuple(json.loads(meta.read_text(encoding="utf-8"))["tokens"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a damaged entry is never used; the prefix is computed instead
            if (self.folder / f"{meta.stem}.kv").is_file() and meta.stem == token_hash(tokens):
                self.saved[meta.stem] = tokens

    def longest(self, tokens: Sequence[int]) -> tuple[Path, int] | None:
        """The saved prefix of `tokens` with the most tokens: (its .kv file, its length), or None."""
        best = None
        for h, saved in self.saved.items():
            if len(saved) <= len(tokens) and tuple(tokens[:len(saved)]) == saved:
                if best is None or len(saved) > best[1]:
                    best = (self.folder / f"{h}.kv", len(saved))
        return best

    def wanted(self, tokens: Sequence[int], shared: int) -> bool:
        """Whether the first `shared` tokens of `tokens`, where it branches off a live sequence (the
        caller decides that), should be saved: at least min_tokens of them, and no saved prefix
        covers their start."""
        return shared >= self.min_tokens and self.longest(tokens[:shared]) is None

    def publish(self, tokens: Sequence[int], write_kv) -> None:
        """Save a prefix: `write_kv(path)` writes the KV state to `path` (returns False on failure)."""
        h = token_hash(tokens)
        kv, meta = self.folder / f"{h}.kv", self.folder / f"{h}.json"
        tmp = self.folder / f".{h}.{os.getpid()}.tmp"
        try:
            if not write_kv(tmp):
                return
            os.replace(tmp, kv)
            tmp.write_text(json.dumps({"tokens": list(tokens)}), encoding="utf-8")
            os.replace(tmp, meta)
        finally:
            tmp.unlink(missing_ok=True)
        self.saved[h] = tuple(tokens)


def token_hash(tokens: Sequence[int]) -> str:
    return hashlib.sha256(b"".join(int(t).to_bytes(4, "little", signed=True) for t in tokens)).hexdigest()[:32]

"""The llama.cpp backend of the LM interface, in process, through llama-cpp-python's low-level API.

Why it exists: on a CPU, llama.cpp runs a 4-bit GGUF several times faster than torch runs the same
model dequantised, and a CPU run of a 1.5B model is dominated by the ~2,000-token few-shot prompt.
So this backend (1) never computes a token prefix twice while its KV cells are still held, and
(2) decodes every stream of a call (each greedy request, each sample of each sampled request) in
one llama_decode per token, which costs little more than one stream on a memory-bound CPU.

How:
- One context with a *unified* KV cache: all sequences share one pool of cells, and
  llama_memory_seq_cp(src, dst, 0, L) only adds `dst` to the cells of src's first L positions, with
  no copy. The n samples of a step thus share their prompt's cells, and so do all the traces of a
  task that share its few-shot prompt.
- A pool of sequence ids, each remembering the tokens its cells hold, most recently used last. A
  new prompt is tokenised whole (so cached and uncached paths see the same tokens), matched against
  every live sequence for the longest common token prefix, and only the rest is evaluated. When the
  cells run out, the least recently used sequences are dropped. The few-shot prompt of a task is
  therefore computed once per task and reused across questions, traces and samples, as long as
  some sequence of that task is alive (the pool holds `n_seq_max` of them).
- Across runs, with `prefix_dir`: a prefix that prompts branch off (a task's few-shot prompt) is
  saved to disk once, and a later run loads it instead of computing it (backtrack/lm/prefix_store.py).
- Sampling is done here, in numpy, from the logits llama.cpp returns: softmax(logits / T) in float64,
  with top-k / top-p only when asked for, so a step's log-prob is exact under the distribution it
  was drawn from. Sample k of a request draws from numpy's PCG64 seeded with (seed, k): a sample
  does not depend on n or on what else is in the batch. Greedy steps report temperature-1 log-probs.
- Log-probs depend on llama.cpp's kernels, whose summation order changes with the batch shape (one
  token vs a chunk of the prompt, one stream vs eight) and with where a sequence's cells lie in the
  shared pool. Measured on this repo's CPUs, a sample's log-prob against a separate forward pass over
  prefix + sample: within 1e-3 (sum over 20 tokens) on one Qwen2.5-Coder-1.5B prompt, up to 0.43
  nats over 64 tokens on the benchmark's (README); Gemma 3 270M up to 0.93. Turning off weight
  repacking and flash attention did not remove the differences, so the defaults stay (they are faster).
  Traced to single positions (benchmarks/logprob_positions.py, a ~2,100-token prompt, 1 thread; the
  largest change among the 5 likeliest tokens, Qwen / Gemma): a token decoded as one row of a
  9-stream batch instead of alone moves by 0.196 / 0.294 nats; the prompt's last token evaluated
  alone instead of in its chunk, 0.080 / 0.001, and again while samples branched from it still hold
  its old cell, 0.264 / 0.304. A sample's log-prob is always that of the logits it was drawn from.
- `batch_invariant` (`--llama-kernels invariant`) removes those differences: no weight repacking,
  ggml's tiled K-quant matmul off, flash attention over a q8_0 cache (ggml's row-by-row kernel for
  every batch shape). Greedy steps are then the same bit for bit whatever the batch, and a sample's
  log-prob equals a separate forward pass while the sequence's cells lie in position order in the
  pool (flash attention adds them up in pool order). Qwen2.5-1.5B on 2 cores: 0.78x the greedy
  decoding speed, prompts at half speed (README).
A step ends at the first token whose text holds a newline (counted; text after the newline dropped),
at an end-of-generation token, or at max_tokens, as in every backend (backtrack/lm/generator.py).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from backtrack.lm.generator import (STOP_EOS, STOP_MAX_TOKENS, STOP_NEWLINE, LoglikelihoodRequest, RawStep, Step,
                                    StepRequest, check_context)
from backtrack.lm.prefix_store import PrefixStore


_QUIET = None  # the process's llama.cpp log callback (set once, never freed)
_DECODED = False  # whether this process has run a llama_decode (ggml reads some settings once, at the first)
_FLASH_ATTN_ENABLED = 1  # enum llama_flash_attn_type
_GGML_TYPE_Q8_0 = 8      # enum ggml_type


# The CPU features of the portable build that README and .ci/run install (their CMAKE_ARGS), as
# llama.cpp's system info names them: runs and caches made with that build keep the bare name.
PORTABLE_BUILD = frozenset({"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2", "LLAMAFILE", "OPENMP", "REPACK"})


def build_tag(system_info: str, gpu: bool) -> str:
    """The part of a generator's name that says which llama.cpp build computes, besides its version.

    The instruction sets a build is compiled for pick its kernels, and the kernels change greedy
    paths: an AVX-512 build and the portable AVX2 one, same version, same file, decoded 2 of 8
    batched greedy traces differently (README, "A faster llama.cpp build"). So any build other
    than the portable one is named by the CPU features it adds (+) and lacks (-), and a GPU build
    by +gpu: a run made with one build never resumes with, nor shares a cache with, another."""
    cpu = system_info.split("CPU :", 1)[1] if "CPU :" in system_info else ""
    cpu = re.split(r"\|\s*\w+ :", cpu, maxsplit=1)[0]  # up to the next backend's section, if any
    on = {name for name, value in re.findall(r"(\w+) = (\w+)", cpu) if value == "1"}
    tag = "".join(f"+{f.lower()}" for f in sorted(on - PORTABLE_BUILD))
    tag += "".join(f"-{f.lower()}" for f in sorted(PORTABLE_BUILD - on))
    return tag + ("+gpu" if gpu else "")


def _use_invariant_kernels() -> None:
    """Turn off ggml's tiled K-quant matmul (taken from 8 rows up, so a row's result would depend on
    how many rows share its batch). ggml reads GGML_CPU_TILED_MM once per process, at the first
    matmul: after a decode with the tiled path on, it cannot be turned off."""
    if os.environ.get("GGML_CPU_TILED_MM") == "0":
        return
    if _DECODED:
        raise ValueError("batch-invariant kernels must be chosen before this process's first llama.cpp decode "
                         "(or set GGML_CPU_TILED_MM=0 in the environment)")
    os.environ["GGML_CPU_TILED_MM"] = "0"


@dataclass(frozen=True)
class LlamaCppConfig:
    model_path: str
    label: str | None = None        # the model's name in runs (default: the file name)
    sha256: str | None = None       # the file's hash, part of the generator's name (cache keys)
    n_threads: int | None = None    # default: every core this process may use
    n_ctx: int = 32768              # KV cells shared by all sequences (~0.9 GB at f16 for Qwen2.5-1.5B)
    n_batch: int = 512              # tokens per llama_decode when evaluating prompts
    n_seq_max: int = 128            # sequences at once (one call's streams and the pool kept between calls)
    keep_seqs: int = 16             # sequences kept between calls for prefix reuse, most recently used
    prefix_dir: str | None = None   # KV states of shared prefixes kept on disk across runs, in a folder per
                                    # model file and llama.cpp build under this one (None: never)
    prefix_min_tokens: int = 1024   # the shortest shared prefix worth saving
    batch_invariant: bool = False   # kernels whose result for a row does not depend on the other rows of
                                    # the batch nor on where its cells lie: exact log-probs (see above)

    def __post_init__(self) -> None:
        if not Path(self.model_path).is_file():
            raise FileNotFoundError(f"GGUF file {self.model_path!r} not found")
        if self.n_threads is not None and self.n_threads < 1:
            raise ValueError("n_threads must be >= 1")
        if self.n_ctx < 256 or self.n_batch < 1 or not 2 <= self.n_seq_max <= 256:
            raise ValueError("n_ctx must be >= 256, n_batch >= 1 and n_seq_max in 2..256")
        if not 1 <= self.keep_seqs <= self.n_seq_max:
            raise ValueError("keep_seqs must be in 1..n_seq_max")


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max()
    z = x - m
    return z - np.log(np.exp(z).sum())


def sampling_logprobs(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None) -> np.ndarray:
    """log-probabilities of the distribution a token is drawn from (-inf outside top-k / top-p)."""
    lp = _log_softmax(logits.astype(np.float64) / temperature)
    if top_k is not None and top_k < lp.size:
        kth = np.partition(lp, -top_k)[-top_k]
        lp = np.where(lp >= kth, lp, -np.inf)
        lp = lp - np.log(np.exp(lp).sum())
    if top_p is not None and top_p < 1:
        order = np.argsort(-lp, kind="stable")
        cum = np.cumsum(np.exp(lp[order]))
        keep = order[: int(np.searchsorted(cum, top_p)) + 1]  # the smallest set reaching top_p
        masked = np.full_like(lp, -np.inf)
        masked[keep] = lp[keep]
        lp = masked - np.log(np.exp(masked[keep]).sum())
    return lp


def _pick(s: "_Stream") -> tuple[int, float]:
    """The next token of a stream and its log-prob under the distribution it is drawn from. One pass
    of exp over the vocabulary (this runs once per stream per token: it is most of bbm's own cost)."""
    if s.greedy:
        tok = int(np.argmax(s.logits))
        z = s.logits.astype(np.float64)
        m = z[tok]
        return tok, float(-np.log(np.exp(z - m).sum()))  # log softmax at temperature 1 of the argmax
    if s.top_k is not None or s.top_p is not None:
        lp = sampling_logprobs(s.logits, s.temperature, s.top_k, s.top_p)
        p = np.exp(lp)
    else:
        z = s.logits.astype(np.float64) / s.temperature
        p = np.exp(z - z.max())
        lp = None
    cdf = np.cumsum(p)
    tok = int(min(np.searchsorted(cdf, s.rng.random() * cdf[-1], side="right"), p.size - 1))
    while p[tok] == 0:  # the float edge of the cdf, or a token outside top-k/top-p: step back to a kept one
        tok -= 1
    if lp is not None:
        return tok, float(lp[tok])
    return tok, float(np.log(p[tok]) - np.log(cdf[-1]))


@dataclass
class _Stream:
    """One sequence being decoded: a greedy step, or sample k of a prompt."""
    seq: int
    pos: int
    logits: np.ndarray | None
    greedy: bool
    max_tokens: int
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    rng: np.random.Generator | None = None
    tokens: list | None = None
    logprobs: list | None = None
    pieces: list | None = None
    stop: str | None = None


class LlamaCppGenerator:
    libraries = ("llama_cpp_python",)  # what computes the outputs (cache keys: generator_identity)

    def __init__(self, config: LlamaCppConfig):
        import llama_cpp as ll

        self.ll = ll
        self.config = config
        ll.llama_backend_init()
        self._silence()
        if config.batch_invariant:
            _use_invariant_kernels()
        mp = ll.llama_model_default_params()
        mp.use_extra_bufts = not config.batch_invariant  # repacked weights: gemm kernels that see the batch
        self.model = ll.llama_model_load_from_file(config.model_path.encode(), mp)
        if not self.model:
            raise ValueError(f"llama.cpp could not load {config.model_path!r}")
        cp = ll.llama_context_default_params()
        threads = config.n_threads or len(os.sched_getaffinity(0))
        cp.n_ctx = config.n_ctx
        cp.n_batch = config.n_batch
        cp.n_ubatch = config.n_batch
        cp.n_seq_max = config.n_seq_max
        cp.n_threads = cp.n_threads_batch = threads
        cp.kv_unified = True   # one pool of cells: seq_cp shares cells instead of copying them
        cp.swa_full = True     # sliding-window layers keep every position, so any prefix can be reused
        cp.no_perf = True
        if config.batch_invariant:
            # flash attention over a q8_0 cache takes ggml's row-by-row path for every batch shape
            # (an f16 cache takes a tiled path from 64 rows and splits one row's cells among threads)
            cp.flash_attn_type = _FLASH_ATTN_ENABLED
            cp.type_k = cp.type_v = _GGML_TYPE_Q8_0
        else:
            # Flash attention off: on this repo's 2-core CPUs it decoded 8-25% slower than plain attention
            # (Qwen2.5-1.5B, 957-token prompt: 1 stream 8.8 vs 10.0 tokens/s, 16 streams 20.4 vs 28.3).
            cp.flash_attn_type = 0
        self.ctx = ll.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise ValueError(f"llama.cpp could not create a context of {config.n_ctx} cells")
        self.mem = ll.llama_get_memory(self.ctx)
        self.vocab = ll.llama_model_get_vocab(self.model)
        self.n_vocab = ll.llama_vocab_n_tokens(self.vocab)
        self.n_ctx = ll.llama_n_ctx(self.ctx)
        self.threads = threads
        # the default model params offload every layer when the build can (a CUDA/Metal wheel)
        self.device = "gpu" if ll.llama_supports_gpu_offload() else "cpu"
        self.batch = ll.llama_batch_init(max(config.n_batch, config.n_seq_max), 0, 1)
        self._pieces = [self._piece(t) for t in range(self.n_vocab)]
        self._newline = np.array([b"\n" in p for p in self._pieces])
        self._eog = np.array([bool(ll.llama_vocab_is_eog(self.vocab, t)) for t in range(self.n_vocab)])
        self.seqs: dict[int, list[int]] = {}     # live sequence id -> the tokens its cells hold
        self._clock = 0
        self._used: dict[int, int] = {}          # sequence id -> last use (for eviction)
        self.prompt_tokens_evaluated = 0          # counters for benchmarks and tests
        self.prompt_tokens_reused = 0
        self.prompt_tokens_restored = 0           # of those reused, loaded from the prefix store
        self.decode_calls = 0
        self.generated_tokens = 0
        # called as on_progress(prompt tokens evaluated, tokens generated) about every
        # `progress_every_s` seconds inside a long call, so a progress display can move mid-call
        self.on_progress = None
        self.progress_every_s = 10.0
        self._last_progress = 0.0
        digest = config.sha256 or _quick_digest(config.model_path)
        label = config.label or Path(config.model_path).name
        build = build_tag(ll.llama_print_system_info().decode(errors="replace"), self.device == "gpu")
        engine = f"llama.cpp-{ll.__version__}{build}{'+invariant' if config.batch_invariant else ''}"
        self.name = f"{label}#{digest[:12]}@{engine}"
        self.store = (PrefixStore(Path(config.prefix_dir) / f"{digest[:16]}-{engine}", config.prefix_min_tokens)
                      if config.prefix_dir else None)

    # ------------------------------------------------------------------ plumbing
    def _silence(self) -> None:
        global _QUIET
        if _QUIET is None:  # one callback for the process: the C side keeps the pointer for ever
            @self.ll.llama_log_callback
            def quiet(level, text, user_data):  # llama.cpp logs every load at INFO on stderr
                return None

            _QUIET = quiet
            self.ll.llama_log_set(_QUIET, ctypes.c_void_p())

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.ll.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.ll.llama_token_to_piece(self.vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (self.ll.llama_token * cap)()
        n = self.ll.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        if n < 0:
            cap = -n
            buf = (self.ll.llama_token * cap)()
            n = self.ll.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        return list(buf[:n])

    def chat_prefix(self, user: str) -> str:
        """The model's chat template (from the GGUF) applied to one user message, assistant turn open."""
        from backtrack.lm.chat_format import render_chat_template

        tmpl = self.ll.llama_model_chat_template(self.model, None)
        if not tmpl:
            raise ValueError(f"{self.name}: the GGUF has no chat template; use --prompt-format raw")
        return render_chat_template(tmpl.decode("utf-8"), user)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self._pieces[t] for t in tokens).decode("utf-8", errors="replace")

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self.ll.llama_batch_free(self.batch)
            self.ll.llama_free(self.ctx)
            self.ll.llama_model_free(self.model)
            self.ctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _touch(self, seq: int) -> None:
        self._clock += 1
        self._used[seq] = self._clock

    def _free_seq(self, seq: int) -> None:
        self.ll.llama_memory_seq_rm(self.mem, seq, -1, -1)
        self.seqs.pop(seq, None)
        self._used.pop(seq, None)

    def _new_seq(self, pinned: set[int]) -> int:
        for s in range(self.config.n_seq_max):
            if s not in self.seqs and s not in pinned:
                self.seqs[s] = []
                return s
        victim = min((s for s in self.seqs if s not in pinned), key=lambda s: self._used.get(s, 0), default=None)
        if victim is None:
            raise RuntimeError(f"more than {self.config.n_seq_max} sequences needed at once; raise n_seq_max")
        self._free_seq(victim)
        self.seqs[victim] = []
        return victim

    def _trim(self, current: set[int]) -> None:
        """Drop all but the `keep_seqs` most recently used sequences (never those of the call just
        made). Why: with a unified cache llama.cpp attends over every cell up to the highest one in
        use, whichever sequence owns it, so cells kept for reuse that nobody needs make every
        token's attention dearer (measured: 64 streams over ~23k cells decoded slower than 8)."""
        by_age = sorted(self.seqs, key=lambda s: self._used.get(s, 0), reverse=True)
        for s in by_age[self.config.keep_seqs:]:
            if s not in current:
                self._free_seq(s)

    def _decode(self, entries: list[tuple[int, int, int, bool]], pinned: set[int]) -> None:
        """One llama_decode of (token, position, seq, wants logits) entries; on a full cache, drop
        the least recently used sequences outside `pinned` and try again."""
        b = self.batch
        for i, (tok, pos, seq, logits) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)
        global _DECODED
        _DECODED = True
        while True:
            rc = self.ll.llama_decode(self.ctx, b)
            self.decode_calls += 1
            if rc == 0:
                self._report()
                return
            idle = sorted((s for s in self.seqs if s not in pinned), key=lambda s: self._used.get(s, 0))
            if rc != 1 or not idle:
                raise RuntimeError(f"llama_decode failed (code {rc}) with {len(entries)} tokens; the KV cache holds "
                                   f"{self.n_ctx} cells: raise n_ctx or lower the batch size")
            for s in idle[: max(1, len(idle) // 2)]:
                self._free_seq(s)

    def _report(self) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if now - self._last_progress >= self.progress_every_s:
            self._last_progress = now
            self.on_progress(self.prompt_tokens_evaluated, self.generated_tokens)

    def _logits(self, i: int) -> np.ndarray:
        ptr = self.ll.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    # ------------------------------------------------------------------ prompts
    def _check_length(self, n_prompt: int, max_tokens: int) -> None:
        check_context(n_prompt, max_tokens, self.n_ctx, "n_ctx")

    def _best_donor(self, toks: list[int]) -> tuple[int | None, int]:
        best, best_len = None, 0
        for s, have in self.seqs.items():
            n = _common_prefix(have, toks)
            if n > best_len:
                best, best_len = s, n
        return best, best_len

    def _load_prompts(self, prompts: list[list[int]], pinned: set[int]) -> list[tuple[int, np.ndarray]]:
        """Put each token list into a sequence, reusing the longest cached prefix of any live
        sequence, and evaluate the rest; returns (sequence id, logits after the last token) each.
        Prompts of one call that share a prefix no sequence holds yet (the first questions of a task)
        are loaded in waves: the first evaluates the shared prefix once, the others then reuse it."""
        for toks in prompts:
            self._restore(toks, pinned)
        done: dict[int, tuple[int, np.ndarray]] = {}
        remaining = list(range(len(prompts)))
        while remaining:
            wave, deferred = [], []
            for i in remaining:
                _, cached = self._best_donor(prompts[i])
                shared = max((_common_prefix(prompts[j], prompts[i]) for j in wave), default=0)
                (deferred if shared > cached + 32 else wave).append(i)
            done.update(zip(wave, self._load_wave([prompts[i] for i in wave], pinned)))
            remaining = deferred
        return [done[i] for i in range(len(prompts))]

    def _restore(self, toks: list[int], pinned: set[int]) -> None:
        """Load the longest saved prefix of `toks` into a new sequence when it beats every live one by
        more than 256 tokens. A state llama.cpp cannot load (no free cells, damaged file) is skipped."""
        found = self.store.longest(toks) if self.store is not None else None
        if found is None or found[1] <= self._best_donor(toks)[1] + 256:
            return
        path, n = found
        seq = self._new_seq(pinned)
        buf, got = (self.ll.llama_token * n)(), ctypes.c_size_t(0)
        rc = self.ll.llama_state_seq_load_file(self.ctx, str(path).encode(), seq, buf, n, ctypes.byref(got))
        if rc == 0 or got.value != n or list(buf) != toks[:n]:
            self._free_seq(seq)
            return
        self.seqs[seq] = list(toks[:n])
        self._touch(seq)
        self.prompt_tokens_restored += n

    def _save_prefix(self, donor: int, prefix: list[int], pinned: set[int]) -> None:
        """Write the KV state of `donor`'s first len(prefix) cells to the store (through a scratch
        sequence that shares those cells, so the donor is untouched)."""
        scratch = self._new_seq(pinned | {donor})
        self.ll.llama_memory_seq_cp(self.mem, donor, scratch, 0, len(prefix))
        arr = (self.ll.llama_token * len(prefix))(*prefix)

        def write(path: Path) -> bool:
            return self.ll.llama_state_seq_save_file(self.ctx, str(path).encode(), scratch, arr, len(prefix)) > 0

        try:
            self.store.publish(prefix, write)
        finally:
            self._free_seq(scratch)

    def _load_wave(self, prompts: list[list[int]], pinned: set[int]) -> list[tuple[int, np.ndarray]]:
        plans = []
        for toks in prompts:
            donor, n = self._best_donor(toks)
            if donor is not None and self.store is not None and n < len(self.seqs[donor]):
                # a branch: keep the lines both prompts share (two questions of a task also share the
                # start of a question line, "Q: ((", which a third question need not)
                cut = next((i + 1 for i in range(n - 1, -1, -1) if self._newline[toks[i]]), 0)
                if self.store.wanted(toks, cut):
                    self._save_prefix(donor, toks[:cut], pinned)
            plans.append((donor, min(n, len(toks) - 1)))  # the last token is always evaluated: its logits are needed
        seq_of: list[int] = []
        donors = {d for d, _ in plans if d is not None}  # never evicted to make room in this wave
        for toks, (donor, n) in zip(prompts, plans):
            # extend the donor in place when it would lose little, else branch off a new sequence
            # (keeping the donor alive for other prompts that share its longer prefix)
            if donor is not None and donor not in pinned and len(self.seqs[donor]) - n <= 16:
                seq = donor
            else:
                seq = self._new_seq(pinned | donors)
                if donor is not None and n > 0:
                    self.ll.llama_memory_seq_cp(self.mem, donor, seq, 0, n)
            pinned.add(seq)
            seq_of.append(seq)
        for seq, toks, (_, n) in zip(seq_of, prompts, plans):
            self.ll.llama_memory_seq_rm(self.mem, seq, n, -1)
            self.seqs[seq] = list(toks[:n])
            self._touch(seq)
            self.prompt_tokens_reused += n
        # evaluate the uncached remainders, several prompts per llama_decode
        work = [(i, p) for i, (toks, (_, n)) in enumerate(zip(prompts, plans)) for p in range(n, len(toks))]
        last: dict[int, np.ndarray] = {}
        for start in range(0, len(work), self.config.n_batch):
            chunk = work[start:start + self.config.n_batch]
            entries = [(prompts[i][p], p, seq_of[i], p == len(prompts[i]) - 1) for i, p in chunk]
            self._decode(entries, pinned)
            for b, ((i, p), e) in enumerate(zip(chunk, entries)):
                if e[3]:
                    last[i] = self._logits(b)  # llama_get_logits_ith takes the token's index in the batch
            self.prompt_tokens_evaluated += len(chunk)
            self._report()
        for seq, toks in zip(seq_of, prompts):
            self.seqs[seq] = list(toks)
        return [(seq_of[i], last[i]) for i in range(len(prompts))]

    # ------------------------------------------------------------------ decoding
    def _run(self, streams: list[_Stream], pinned: set[int]) -> list[RawStep]:
        for s in streams:
            s.tokens, s.logprobs, s.pieces = [], [], []
        live = list(streams)
        while live:
            entries = []
            for s in live:
                tok, logprob = _pick(s)
                s.tokens.append(tok)
                self.generated_tokens += 1
                s.logprobs.append(logprob)
                s.pieces.append(self._pieces[tok])
                if self._eog[tok]:
                    s.stop = STOP_EOS
                elif self._newline[tok]:
                    s.stop = STOP_NEWLINE
                elif len(s.tokens) >= s.max_tokens:
                    s.stop = STOP_MAX_TOKENS
                else:
                    entries.append((tok, s.pos, s.seq, True))
                if s.stop is None and s.pos + 1 >= self.n_ctx:
                    raise ValueError(f"a step outgrew the context of {self.n_ctx} tokens")
            stepping = [s for s in live if s.stop is None]
            if stepping:
                self._decode(entries, pinned)
                for i, s in enumerate(stepping):
                    s.logits = self._logits(i)
                    self.seqs[s.seq].append(s.tokens[-1])
                    s.pos += 1
            live = stepping
        out = []
        for s in streams:
            text = b"".join(s.pieces).decode("utf-8", errors="replace")
            if s.stop == STOP_NEWLINE:
                text = text.split("\n", 1)[0]
            elif s.stop == STOP_EOS:
                text = b"".join(s.pieces[:-1]).decode("utf-8", errors="replace")
            out.append(RawStep(tuple(s.tokens), tuple(s.logprobs), text.strip(), s.stop))
        return out

    def raw_steps(self, requests: Sequence[StepRequest], first_index: Sequence[int] | None = None
                  ) -> list[list[RawStep]]:
        """The n RawSteps of each request, every stream of the call decoded together; sample k of
        request i draws from PCG64(seed, first_index[i] + k) (first_index: all 0 unless given)."""
        toks = [self.tokenize(r.prompt) for r in requests]
        for t, r in zip(toks, requests):
            self._check_length(len(t), r.max_tokens)
        pinned: set[int] = set()
        loaded = self._load_prompts(toks, pinned)
        streams, owner = [], []
        for i, (r, (seq, logits), t) in enumerate(zip(requests, loaded, toks)):
            for k in range(r.n):
                if k == 0:
                    s = seq
                else:  # sample k shares the prompt's cells
                    s = self._new_seq(pinned)
                    pinned.add(s)
                    self.ll.llama_memory_seq_cp(self.mem, seq, s, 0, len(t))
                    self.seqs[s] = list(t)
                if r.greedy:
                    streams.append(_Stream(s, len(t), logits, True, r.max_tokens))
                else:
                    self._touch(s)
                    first = first_index[i] if first_index is not None else 0
                    rng = np.random.Generator(np.random.PCG64([int(r.seed) & 0xFFFFFFFFFFFFFFFF, first + k]))
                    streams.append(_Stream(s, len(t), logits, False, r.max_tokens, r.temperature, r.top_k, r.top_p, rng))
                owner.append(i)
        steps = self._run(streams, pinned)
        self._trim(pinned)
        out: list[list[RawStep]] = [[] for _ in requests]
        for i, st in zip(owner, steps):
            out[i].append(st)
        return out

    def raw_samples(self, prompts: Sequence[str], counts: Sequence[int], temperature: float,
                    seeds: Sequence[int], first_index: Sequence[int], max_tokens: int,
                    top_k: int | None = None, top_p: float | None = None) -> list[list[RawStep]]:
        """counts[i] samples of prompts[i]; sample k of prompt i draws from PCG64(seeds[i], first_index[i] + k)."""
        if not temperature > 0:
            raise ValueError(f"sampling needs a temperature > 0, got {temperature}")
        return self.raw_steps([StepRequest(p, n=c, temperature=temperature, seed=s, max_tokens=max_tokens,
                                           top_k=top_k, top_p=top_p) for p, c, s in zip(prompts, counts, seeds)],
                              first_index)

    # ------------------------------------------------------------------ the LM interface
    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        return [[r.to_step() for r in raws] for raws in self.raw_steps(requests)]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        prompts: dict[str, list[int]] = {}  # each prompt tokenised once per call
        out = []
        for r in requests:
            if not r.continuation:
                out.append(0.0)
                continue
            if r.prompt not in prompts:
                prompts[r.prompt] = self.tokenize(r.prompt)
            cont = self.tokenize(r.continuation, add_special=False)
            out.append(float(sum(self.token_logprobs(prompts[r.prompt], cont))))
        return out

    def token_logprobs(self, prompt_tokens: Sequence[int], continuation: Sequence[int],
                       temperature: float = 1.0) -> list[float]:
        """log P(each continuation token | prompt, earlier tokens) at `temperature`, by one forward pass."""
        toks = list(prompt_tokens) + list(continuation)
        self._check_length(len(toks), 0)
        pinned: set[int] = set()
        # load only the prompt (reusing its cached prefix); the continuation is evaluated in one pass
        [(seq, first)] = self._load_prompts([list(prompt_tokens)], pinned)
        out = [float(_log_softmax(first.astype(np.float64) / temperature)[continuation[0]])] if continuation else []
        base = len(prompt_tokens)
        for start in range(0, len(continuation) - 1, self.config.n_batch):
            chunk = range(start, min(start + self.config.n_batch, len(continuation) - 1))
            self._decode([(continuation[j], base + j, seq, True) for j in chunk], pinned)
            for i, j in enumerate(chunk):
                lp = _log_softmax(self._logits(i).astype(np.float64) / temperature)
                out.append(float(lp[continuation[j + 1]]))
            self.seqs[seq].extend(continuation[j] for j in chunk)
        self._trim(pinned)
        return out


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    # compare in blocks first: prompts share thousands of tokens
    while i + 256 <= n and a[i:i + 256] == b[i:i + 256]:
        i += 256
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _quick_digest(path: str) -> str:
    """A content digest of a model file without reading all of it: size + first and last MiB."""
    p = Path(path)
    h = hashlib.sha256(str(p.stat().st_size).encode())
    with open(p, "rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, p.stat().st_size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()

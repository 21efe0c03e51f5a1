"""The transformers backend of the LM interface: any causal LM from a local folder, a hub id,
a .gguf file, or the embedded default model (backtrack/lm/embedded.py).

How it decodes (all internal; callers only see backtrack.lm.generator.LM):
- A prompt string is always tokenised whole (`tokenizer(prompt)`, BOS included), exactly as an
  uncached reference would. KV-cache reuse is then a pure optimisation: a small store keeps the KV
  cache of recently decoded token sequences, and a new prompt reuses the longest shared *token*
  prefix and encodes only the rest. Because reuse is decided on token ids, a boundary that tokenises
  differently once the step and "\\nThought N+1:" are appended (e.g. a trailing space) simply shortens
  the reused prefix; it can never make cached and uncached paths see different tokens.
- generate_steps sorts one call's requests into batches:
  - greedy requests with the same token cap (greedy_raw) and one-sample requests with the same
    sampling settings are decoded together: each prompt's uncached remainder is encoded on its own,
    then the caches are left-padded into one batch with explicit position ids, so each row sees
    exactly its own positions (sliding-window layers included, since padding sits only on the left);
  - a request for n > 1 samples (sample_raw) encodes its prompt once and repeats its cache n times.
  Sample k of a request draws from its own torch.Generator seeded by (seed, k) (sample_generator),
  so a sample does not depend on n or on batching. Sampling uses the full softmax(logits / T) unless
  top_k / top_p are given explicitly; the returned log-prob is under the distribution actually
  sampled (after any top-k/top-p renormalisation). Greedy steps report temperature-1 log-probs.
- loglikelihood scores tokenizer(continuation, add_special_tokens=False) after the prompt's tokens,
  i.e. the tokens the model would have to emit to write it; a prompt is prefilled once per call.
A step stops at the first token whose text contains a newline (that token is counted, and text after
the newline inside it is dropped), at an EOS token, or at max_tokens. A prompt whose tokens plus
max_tokens exceed the model's context (`model_context`) is refused before any forward pass.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from backtrack.lm.generator import (LoglikelihoodRequest, RawStep, STOP_EOS, STOP_MAX_TOKENS, STOP_NEWLINE, Step,
                                    StepRequest, check_context, stable_int)

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelConfig:
    """What to load and how. model=None means the embedded default (needs cache_dir)."""
    model: str | None = None          # local folder, hub id, or path to a .gguf file
    gguf_file: str | None = None      # GGUF file name inside `model` (folder or hub repo)
    dtype: str = "auto"               # auto: bfloat16 on CPUs with native bf16 (and on GPUs that have it), else float32
    device: str = "cpu"
    cache_dir: str | None = None      # where the embedded model is converted (the CLI: BBM_CACHE_DIR, ~/.cache/bbm)
    prefix_cache_tokens: int = 16384  # KV-cache tokens kept for prefix reuse (~18 KB/token for Gemma 3 270M in bf16: ~300 MB)

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.model is None and self.gguf_file is not None:
            raise ValueError("gguf_file needs model (the folder or hub repo holding it)")
        if self.model is None and not self.cache_dir:
            raise ValueError("the embedded model needs cache_dir")
        if self.prefix_cache_tokens < 0:
            raise ValueError("prefix_cache_tokens must be >= 0")


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_dtype(name: str, device: str):
    import torch

    if name == "auto":
        if device.startswith("cuda"):
            name = "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float16"
        else:
            name = "bfloat16" if cpu_has_native_bf16() else "float32"
    return getattr(torch, name)


def load_generator(config: ModelConfig) -> "HFGenerator":
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if config.model is None:
        from backtrack.lm.embedded import EMBEDDED_NAME, embedded_model_dir

        source, gguf, label = str(embedded_model_dir(config.cache_dir)), None, EMBEDDED_NAME
    elif config.model.endswith(".gguf") and Path(config.model).is_file():
        path = Path(config.model)
        source, gguf, label = str(path.parent), path.name, config.model
    else:
        if not Path(config.model).exists() and (config.model.startswith((".", "/", "~")) or config.model.count("/") > 1):
            raise FileNotFoundError(f"model {config.model!r}: no such file or folder")
        source, gguf, label = config.model, config.gguf_file, config.model + (f":{config.gguf_file}" if config.gguf_file else "")
    dtype = resolve_dtype(config.dtype, config.device)
    kw: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kw)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kw).to(config.device).eval()
    except OSError as e:  # e.g. a hub id with no network: say which model, keep the cause
        raise FileNotFoundError(f"could not load model {label!r}: {e}") from e
    name = f"{label}@{str(dtype).removeprefix('torch.')}"
    return HFGenerator(model, tokenizer, name=name, prefix_cache_tokens=config.prefix_cache_tokens)


def model_context(model, tokenizer) -> tuple[int | None, str]:
    """(the most tokens the model takes, where that number comes from): its position limit
    (max_position_embeddings of the text config), else the tokenizer's model_max_length when that is
    a real number (transformers puts 1e30 there when it is unset); (None, "") when neither says."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    n = getattr(config, "max_position_embeddings", None)
    if isinstance(n, int) and n > 0:
        return n, "max_position_embeddings"
    n = getattr(tokenizer, "model_max_length", None)
    if isinstance(n, int) and 0 < n < 10 ** 8:
        return n, "the tokenizer's model_max_length"
    return None, ""


def newline_token_ids(tokenizer, vocab: int) -> list[int]:
    """Ids of the tokens whose text contains a newline. Decoding all of a 262k vocabulary one token at
    a time takes seconds, so only tokens whose raw form can hold a newline (a literal one, byte-level
    BPE's "Ċ", SentencePiece's byte "<0x0A>") are decoded to confirm."""
    n = min(vocab, len(tokenizer))
    raw = tokenizer.convert_ids_to_tokens(list(range(n)))
    candidates = [i for i, t in enumerate(raw) if t is not None and ("\n" in t or "\u010a" in t or "<0x0A>" in t)]
    return [i for i in candidates if "\n" in tokenizer.decode([i])]


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class PrefixStore:
    """KV caches of recently decoded token sequences (batch 1 each), least recently used dropped first."""

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self.entries: list[tuple[tuple[int, ...], list[tuple[Any, Any]]]] = []  # most recent last

    def lookup(self, tokens: Sequence[int]) -> tuple[int, list[tuple[Any, Any]] | None]:
        """(n, kv of the first n tokens) for the longest stored prefix, n < len(tokens)."""
        best, best_i = 0, -1
        for i, (toks, _) in enumerate(self.entries):
            n = min(_lcp(toks, tokens), len(tokens) - 1)  # keep >= 1 token to encode: we need its logits
            if n > best:
                best, best_i = n, i
        if best_i < 0:
            return 0, None
        entry = self.entries.pop(best_i)
        self.entries.append(entry)
        return best, [(k[:, :, :best], v[:, :, :best]) for k, v in entry[1]]

    def add(self, tokens: Sequence[int], kv: list[tuple[Any, Any]]) -> None:
        if self.max_tokens == 0 or len(tokens) > self.max_tokens:
            return
        tokens = tuple(tokens)
        # an entry that is a prefix of the new one can serve no lookup the new one cannot
        self.entries = [e for e in self.entries if not (len(e[0]) <= len(tokens) and tokens[:len(e[0])] == e[0])]
        self.entries.append((tokens, kv))
        while sum(len(t) for t, _ in self.entries) > self.max_tokens:
            self.entries.pop(0)


class HFGenerator:
    """The LM interface over a transformers causal LM; see the module docstring for how it decodes."""

    libraries = ("torch", "transformers")  # what computes the outputs (cache keys: generator_identity)

    def __init__(self, model, tokenizer, name: str, prefix_cache_tokens: int = 16384):
        import torch

        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.device = next(model.parameters()).device
        self.store = PrefixStore(prefix_cache_tokens)
        vocab = model.get_output_embeddings().weight.shape[0]
        self.newline = torch.zeros(vocab, dtype=torch.bool)
        self.newline[newline_token_ids(tokenizer, vocab)] = True
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos |= set(gen_eos) if isinstance(gen_eos, (list, tuple)) else {gen_eos}
        self.eos = {e for e in eos if e is not None}
        import inspect

        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.stats = {"forward_calls": 0, "prompt_tokens": 0, "reused_tokens": 0, "generated_tokens": 0}
        self.context, self._context_source = model_context(model, tokenizer)

    # ------------------------------------------------------------------ tokenisation
    def encode(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def _check_length(self, n_prompt: int, max_tokens: int) -> None:
        check_context(n_prompt, max_tokens, self.context, self._context_source)

    def _step_text(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True).split("\n", 1)[0].strip()

    # ------------------------------------------------------------------ model calls
    def _forward(self, input_ids, cache, attention_mask=None, position_ids=None, logits_to_keep: int = 1):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=True, logits_to_keep=logits_to_keep, **{self._cache_kw: cache})
        self.stats["forward_calls"] += 1
        return out.logits

    def _prefill(self, tokens: list[int]):
        """(GrowingCache holding all of `tokens`, float32 logits after the last token), reusing the store."""
        import torch

        from backtrack.lm.kv_cache import GrowingCache

        n, kv = self.store.lookup(tokens)
        cache = GrowingCache(self.model.config, kv)
        rest = torch.tensor([tokens[n:]], device=self.device)
        positions = torch.arange(n, len(tokens), device=self.device)[None]
        mask = torch.ones(1, len(tokens), dtype=torch.long, device=self.device)
        logits = self._forward(rest, cache, mask, positions)[0, -1].float()
        self.stats["prompt_tokens"] += len(tokens)
        self.stats["reused_tokens"] += n
        self.store.add(tokens, [(layer.keys, layer.values) for layer in cache.layers])
        return cache, logits

    # ------------------------------------------------------------------ the LM interface
    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        out: list[list[Step]] = [[] for _ in requests]
        together: dict[tuple, list[int]] = {}  # greedy and one-sample requests, by shared settings
        for i, r in enumerate(requests):
            if r.n > 1:
                out[i] = [x.to_step() for x in self.sample_raw(r.prompt, r.n, r.temperature, r.seed, r.max_tokens,
                                                               r.top_k, r.top_p)]
            else:
                together.setdefault((r.temperature, r.max_tokens, r.top_k, r.top_p), []).append(i)
        for (temperature, max_tokens, top_k, top_p), rows in together.items():
            prompts = [requests[i].prompt for i in rows]
            if temperature == 0:
                raws = self.greedy_raw(prompts, max_tokens)
            else:  # row j draws from the stream of (its seed, sample 0)
                pick = sampling_pick([sample_generator(requests[i].seed, 0) for i in rows], temperature, top_k, top_p)
                raws = self._decode_prompts(prompts, max_tokens, pick)
            for i, raw in zip(rows, raws):
                out[i] = [raw.to_step()]
        return out

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        by_prompt: dict[str, list[int]] = {}  # each prompt is prefilled once for all its continuations
        for i, r in enumerate(requests):
            by_prompt.setdefault(r.prompt, []).append(i)
        out = [0.0] * len(requests)
        for prompt, rows in by_prompt.items():
            for i, lp in zip(rows, self.continuation_logprobs(prompt, [requests[i].continuation for i in rows])):
                out[i] = lp
        return out

    # ------------------------------------------------------------------ greedy
    def greedy_raw(self, prompts: Sequence[str], max_tokens: int) -> list[RawStep]:
        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        return self._decode_prompts(prompts, max_tokens, self._greedy_pick)

    def _decode_prompts(self, prompts: Sequence[str], max_tokens: int, pick) -> list[RawStep]:
        """One step for each prompt, decoded together; every finished row's cache goes to the store."""
        import torch

        from backtrack.lm.kv_cache import GrowingCache

        if not prompts:
            return []
        with torch.inference_mode():
            toks = [self.encode(p) for p in prompts]
            for t in toks:
                self._check_length(len(t), max_tokens)
            caches, logits = zip(*(self._prefill(t) for t in toks))
            lengths = [len(t) for t in toks]
            width = max(lengths)
            kv = []  # left-pad every row's cache to one batch; padded slots are masked out
            for layer in range(len(caches[0].layers)):
                k0 = caches[0].layers[layer].keys
                keys = k0.new_zeros((len(toks), k0.shape[1], width, k0.shape[3]))
                values = torch.zeros_like(keys)
                for i, c in enumerate(caches):
                    keys[i, :, width - lengths[i]:] = c.layers[layer].keys[0]
                    values[i, :, width - lengths[i]:] = c.layers[layer].values[0]
                kv.append((keys, values))
            del caches
            mask = torch.zeros(len(toks), width, dtype=torch.long, device=self.device)
            for i, n in enumerate(lengths):
                mask[i, width - n:] = 1
            return self._decode(GrowingCache(self.model.config, kv), mask, torch.stack(logits),
                                torch.tensor(lengths, device=self.device), max_tokens, pick=pick, keep=(toks, lengths))

    @staticmethod
    def _greedy_pick(logits, rows):
        import torch

        logp = torch.log_softmax(logits, dim=-1)
        chosen = logits.argmax(dim=-1)
        return chosen, logp.gather(1, chosen[:, None])[:, 0]

    # ------------------------------------------------------------------ the shared decode loop
    def _decode(self, cache, mask, logits, positions, max_tokens, pick, keep=None) -> list[RawStep]:
        """Decode every row until it stops. `pick(logits, rows) -> (token ids, log-probs)`; `keep` =
        (prompt tokens, lengths) to store each finished greedy row's cache for the next step."""
        import torch

        batch = logits.shape[0]
        rows = list(range(batch))  # original index of each live row
        generated: list[list[int]] = [[] for _ in range(batch)]
        logps: list[list[float]] = [[] for _ in range(batch)]
        done: dict[int, RawStep] = {}
        while True:
            chosen, chosen_logp = pick(logits, rows)
            ids, lps = chosen.tolist(), chosen_logp.tolist()
            still = []
            for j, r in enumerate(rows):
                generated[r].append(ids[j])
                logps[r].append(lps[j])
                if ids[j] in self.eos:
                    reason = STOP_EOS
                elif self.newline[ids[j]]:
                    reason = STOP_NEWLINE
                elif len(generated[r]) >= max_tokens:
                    reason = STOP_MAX_TOKENS
                else:
                    still.append(j)
                    continue
                done[r] = RawStep(tuple(generated[r]), tuple(logps[r]), self._step_text(generated[r]), reason)
                if keep is not None:  # the cache holds the prompt and every generated token but this last one
                    toks, lengths = keep
                    n = lengths[r] + len(generated[r]) - 1
                    self.store.add(toks[r] + generated[r][:-1],
                                   [(layer.keys[j:j + 1, :, -n:].clone(), layer.values[j:j + 1, :, -n:].clone())
                                    for layer in cache.layers])
            self.stats["generated_tokens"] += len(rows)
            if not still:
                break
            if len(still) < len(rows):
                index = torch.tensor(still, device=self.device)
                cache.batch_select_indices(index)
                mask, positions, chosen = mask[index], positions[index], chosen[index]
                rows = [rows[j] for j in still]
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
            logits = self._forward(chosen[:, None], cache, mask, positions[:, None])[:, -1].float()
            positions = positions + 1
        return [done[r] for r in range(batch)]

    # ------------------------------------------------------------------ sampling
    def sample_raw(self, prompt: str, n: int, temperature: float, seed: int, max_tokens: int,
                   top_k: int | None = None, top_p: float | None = None, first_index: int = 0) -> list[RawStep]:
        """n samples of one prompt; sample i uses the random stream of (seed, first_index + i), so
        samples drawn in several calls with first_index = 0, n1, n1 + n2, ... equal one call drawing
        them all."""
        import torch

        if not temperature > 0:
            raise ValueError(f"sampling needs a temperature > 0, got {temperature} (greedy_raw decodes at 0)")
        StepRequest(prompt, n=n, temperature=temperature, seed=seed, max_tokens=max_tokens, top_k=top_k,
                    top_p=top_p)  # validated as any request is (raises on a bad n, cap, top-k or top-p)
        pick = sampling_pick([sample_generator(seed, i) for i in range(first_index, first_index + n)],
                             temperature, top_k, top_p)
        with torch.inference_mode():
            toks = self.encode(prompt)
            self._check_length(len(toks), max_tokens)
            cache, logits = self._prefill(toks)
            cache = self._windowed(cache)
            cache.batch_repeat_interleave(n)
            mask = torch.ones(n, len(toks), dtype=torch.long, device=self.device)
            positions = torch.full((n,), len(toks), device=self.device)
            return self._decode(cache, mask, logits[None].expand(n, -1), positions, max_tokens, pick)

    def _windowed(self, cache):
        """The same cache, but sliding-window layers keep only their window: the n sample rows then
        hold n copies of the window, not of the whole prefix. (Not for greedy_raw, whose finished
        rows go back to the prefix store and so need every position.)"""
        from backtrack.lm.kv_cache import GrowingCache

        if not any(layer.is_sliding for layer in cache.layers):
            return cache
        windowed = GrowingCache(self.model.config, history=False)
        for mine, full in zip(windowed.layers, cache.layers):
            if mine.is_sliding:
                start = mine.window_start(full.cumulative_length)
                mine.restore(full.keys[:, :, start:], full.values[:, :, start:], full.cumulative_length)
            else:
                mine.update(full.keys, full.values)
        return windowed

    # ------------------------------------------------------------------ scoring
    def continuation_logprobs(self, prompt: str, continuations: Sequence[str]) -> list[float]:
        """log P(continuation | prompt) for each continuation, the prompt prefilled once."""
        import torch

        from backtrack.lm.kv_cache import GrowingCache

        out = []
        with torch.inference_mode():
            toks = self.encode(prompt)
            scored = [list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) for text in continuations]
            self._check_length(len(toks), max((len(ids) for ids in scored), default=0))
            cache, last = self._prefill(toks)
            kv = [(layer.keys, layer.values) for layer in cache.layers]
            for ids in scored:
                if not ids:
                    out.append(0.0)
                    continue
                total = torch.log_softmax(last, -1)[ids[0]].item()
                if len(ids) > 1:
                    c = GrowingCache(self.model.config, kv)
                    inp = torch.tensor([ids[:-1]], device=self.device)
                    mask = torch.ones(1, len(toks) + len(ids) - 1, dtype=torch.long, device=self.device)
                    pos = torch.arange(len(toks), len(toks) + len(ids) - 1, device=self.device)[None]
                    logits = self._forward(inp, c, mask, pos, logits_to_keep=len(ids) - 1)[0].float()
                    lp = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:], device=self.device)[:, None])
                    total += lp.sum().item()
                out.append(total)
        return out


def sample_generator(seed: int, index: int):
    """The random stream of sample `index` under `seed` (independent of n and of batching)."""
    import torch

    return torch.Generator(device="cpu").manual_seed(stable_int(f"{seed}:{index}", 8) >> 1)


def sampling_pick(gens, temperature: float, top_k: int | None, top_p: float | None):
    """_decode's pick for sampling: row r (original index) draws with gens[r] by inverting the CDF."""
    import torch

    def pick(logits, rows):
        logp = filtered_logprobs(logits, temperature, top_k, top_p)
        u = torch.stack([torch.rand((), generator=gens[r], dtype=torch.float64) for r in rows])
        cdf = logp.double().exp().cpu().cumsum(dim=-1)
        chosen = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)[:, 0].clamp_(max=logits.shape[-1] - 1)
        chosen = chosen.to(logits.device)
        return chosen, logp.gather(1, chosen[:, None])[:, 0]

    return pick


def filtered_logprobs(logits, temperature: float, top_k: int | None, top_p: float | None):
    """log-probs of the distribution actually sampled: softmax(logits / T), then top-k, then top-p,
    renormalised (filtered tokens get -inf). No filter applies unless asked for."""
    import torch

    logp = torch.log_softmax(logits / temperature, dim=-1)
    if top_k is not None and top_k < logp.shape[-1]:
        kth = logp.topk(top_k, dim=-1).values[:, -1:]
        logp = logp.masked_fill(logp < kth, float("-inf"))
        logp = torch.log_softmax(logp, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_lp, order = logp.sort(dim=-1, descending=True)
        before = sorted_lp.exp().cumsum(dim=-1) - sorted_lp.exp()  # mass of strictly better tokens
        drop_sorted = before >= top_p  # keep the smallest head whose mass reaches top_p
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        logp = torch.log_softmax(logp.masked_fill(drop, float("-inf")), dim=-1)
    return logp

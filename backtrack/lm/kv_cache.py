"""A KV cache that grows in place: transformers' DynamicCache, minus its per-token copy.

DynamicCache appends a decoded token with torch.cat, which copies every layer's whole cache at every
token: for a 2,000-token few-shot prefix that copy costs about as much as the attention itself.
Here each layer writes into a preallocated buffer with headroom and hands attention a view of the
filled part; the buffer is reallocated only when full (or after a batch reshuffle), so appending is
amortised O(new tokens).

Sliding-window layers (Gemma 3 has 5 of every 6) hand attention only the window (from a block
boundary, see KV_BLOCK) plus the new tokens, so attention costs O(window), not O(prefix), and they
report matching `get_mask_sizes`, from which transformers builds the masks. With history=True
they still keep every position, because the generator's prefix store reuses a finished step's
cache as the prefix of the next one; with history=False (sampling rows, never stored) they keep
only what the window needs.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

# The transformers versions this module was tested with; pyproject.toml pins the same range
# (tests/test_transformers_pin.py keeps the two equal). The imports below are transformers internals,
# which move between minor releases.
SUPPORTED_TRANSFORMERS = ">=5.24,<5.25"

try:
    from transformers.cache_utils import (
        DYNAMIC_LAYER_TYPE_MAPPING,
        Cache,
        DynamicCache,
        DynamicLayer,
        DynamicSlidingWindowLayer,
        get_layer_types_and_kwargs,
    )
except ImportError as e:
    from importlib.metadata import version

    raise ImportError(f"bbm's KV cache needs transformers{SUPPORTED_TRANSFORMERS}, but transformers "
                      f"{version('transformers')} is installed ({e}); install a supported version: "
                      f"pip install 'transformers{SUPPORTED_TRANSFORMERS}'") from e

HEADROOM = 256  # tokens of free space added on reallocation (a step is at most a few dozen tokens)
# PyTorch's CPU attention kernel sums keys in blocks of 512 counted from the first key it is given.
# Handing it keys that start at a multiple of 512 (absolute position) keeps its blocks where a
# full-length cache puts them, so the output is bit-identical however the prefix was cached
# (checked in tests/test_kv_cache.py); any other start changes the rounding in the last bits.
KV_BLOCK = 512


def _append(layer, key_states: torch.Tensor, value_states: torch.Tensor) -> int:
    """Write the new states after the stored ones, in place when the buffer allows; returns how many
    tokens were stored before."""
    keys = layer.keys
    n = keys.shape[-2] if keys is not None and keys.dim() == 4 else 0
    m = key_states.shape[-2]
    buf = getattr(layer, "_kbuf", None)
    in_place = (buf is not None and n > 0 and keys.data_ptr() == buf.data_ptr() and keys.stride() == buf.stride()
                and keys.shape[:2] == key_states.shape[:2] and n + m <= buf.shape[-2])
    if not in_place:  # first call, full buffer, or keys replaced (batch select / repeat): reallocate
        shape = list(key_states.shape)
        shape[-2] = n + m + (max(HEADROOM, (n + m) // 2) if n else HEADROOM)  # a first fill gets no slack to spare
        layer._kbuf = key_states.new_empty(shape)
        layer._vbuf = value_states.new_empty(shape[:-1] + [value_states.shape[-1]])
        if n:
            layer._kbuf[:, :, :n] = keys
            layer._vbuf[:, :, :n] = layer.values
    layer._kbuf[:, :, n:n + m] = key_states
    layer._vbuf[:, :, n:n + m] = value_states
    layer.keys, layer.values = layer._kbuf[:, :, :n + m], layer._vbuf[:, :, :n + m]
    return n


class GrowingLayer(DynamicLayer):
    """A full-attention layer: returns every cached position, like DynamicLayer."""

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        _append(self, key_states, value_states)
        return self.keys, self.values


class GrowingSlidingLayer(DynamicSlidingWindowLayer):
    """A sliding-window layer: returns the cached positions from `window_start(n)` on plus the new
    ones (the mask hides those outside each query's window)."""

    def __init__(self, sliding_window: int, history: bool = True, **kwargs):
        super().__init__(sliding_window=sliding_window)
        self.history = history
        self.offset = 0  # absolute position of the buffer's first entry (> 0 only without history)

    def window_start(self, n: int) -> int:
        """First absolute position handed to attention when n positions are cached: the window's
        start, rounded down to a multiple of KV_BLOCK, so attention sees the same key blocks
        whatever was cached before (see KV_BLOCK)."""
        return max(0, n - (self.sliding_window - 1)) // KV_BLOCK * KV_BLOCK

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        start = self.window_start(self.cumulative_length)
        return self.cumulative_length + query_length - start, start

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = self.cumulative_length
        self.cumulative_length += key_states.shape[-2]
        _append(self, key_states, value_states)
        start = self.window_start(n) - self.offset
        out = self.keys[:, :, start:], self.values[:, :, start:]
        if not self.history:  # drop what no later token can see, once it is worth a copy
            keep = self.window_start(self.cumulative_length) - self.offset
            if keep > HEADROOM:
                self.keys, self.values = self.keys[:, :, keep:], self.values[:, :, keep:]
                self.offset += keep
        return out

    def restore(self, keys, values, length: int) -> None:
        """Fill an empty layer with the last keys.shape[-2] of `length` positions."""
        if not self.is_initialized:
            self.lazy_initialization(keys, values)
        _append(self, keys, values)
        self.offset = length - keys.shape[-2]
        self.cumulative_length = length


class GrowingCache(DynamicCache):
    """DynamicCache(config=...) with growing layers; `kv` pre-fills it like DynamicCache(kv)."""

    def __init__(self, config, kv: Iterable[tuple[Any, Any]] | None = None, history: bool = True):
        layer_types, kwargs = get_layer_types_and_kwargs(config.get_text_config(decoder=True))
        layers = []
        for kind, kw in zip(layer_types, kwargs):
            cls = DYNAMIC_LAYER_TYPE_MAPPING[kind]
            if cls is DynamicLayer:
                layers.append(GrowingLayer())
            elif cls is DynamicSlidingWindowLayer:
                layers.append(GrowingSlidingLayer(history=history, **kw))
            else:  # any other kind of layer (chunked, linear attention, ...) keeps transformers' own class
                layers.append(cls(**kw))
        Cache.__init__(self, layers=layers)
        for layer, (k, v) in zip(self.layers, kv or ()):
            layer.update(k, v)

"""GrowingCache hands attention what transformers' DynamicCache(config) hands it (the same keys at
the same positions), and appends in place."""
import torch
from transformers import DynamicCache, Gemma3TextConfig

from backtrack.lm.kv_cache import HEADROOM, GrowingCache

CONFIG = Gemma3TextConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                          num_key_value_heads=1, head_dim=8, sliding_window=16,
                          layer_types=["sliding_attention", "full_attention"])


def _states(batch, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, n, 8, generator=g), torch.randn(batch, 1, n, 8, generator=g)


def _same_as_dynamic(history: bool, sizes, batch=2, select_at=None):
    ours, ref = GrowingCache(CONFIG, history=history), DynamicCache(config=CONFIG)
    for step, n in enumerate(sizes):
        if step == select_at:
            for c in (ours, ref):
                c.batch_select_indices(torch.tensor([1]))
            batch = 1
        for layer in range(2):
            (length, offset), (ref_length, ref_offset) = (c.layers[layer].get_mask_sizes(n) for c in (ours, ref))
            k, v = _states(batch, n, seed=10 * step + layer)
            got, want = ours.layers[layer].update(k, v), ref.layers[layer].update(k, v)
            # the same keys at the same absolute positions; ours may start earlier (a block boundary)
            assert got[0].shape[-2] == length and want[0].shape[-2] == ref_length
            assert offset <= ref_offset and length - (ref_offset - offset) == ref_length
            assert torch.equal(got[0][:, :, ref_offset - offset:], want[0])
            assert torch.equal(got[1][:, :, ref_offset - offset:], want[1])
        assert ours.get_seq_length() == ref.get_seq_length()


def test_growing_cache_returns_what_dynamic_cache_returns():
    # a prefill, single tokens, a chunk, then more than the headroom so the buffer is reallocated
    sizes = [20, 1, 1, 5, 1, HEADROOM + 3, 1, 1]
    _same_as_dynamic(True, sizes)
    _same_as_dynamic(False, sizes)
    _same_as_dynamic(True, sizes, select_at=3)


def test_appends_are_in_place_and_history_is_kept():
    cache = GrowingCache(CONFIG)
    k, v = _states(1, 30, 0)
    cache.update(k, v, 0)
    buffer = cache.layers[0]._kbuf
    k1, v1 = _states(1, 1, 1)
    cache.update(k1, v1, 0)
    assert cache.layers[0]._kbuf is buffer  # no copy of the cache for a new token
    # the sliding layer still holds every position (the prefix store needs them) ...
    assert torch.equal(cache.layers[0].keys, torch.cat([k, k1], dim=-2))
    # ... unless told it never will
    short, n = GrowingCache(CONFIG, history=False), 1100 + HEADROOM
    short.update(*_states(1, n, 0), 0)
    layer = short.layers[0]
    assert layer.keys.shape[-2] < n and layer.offset + layer.keys.shape[-2] == n
    assert layer.offset <= layer.window_start(n)  # what the next token sees is still there


def test_prefilled_from_kv_like_dynamic_cache():
    kv = [_states(1, 12, 3), _states(1, 12, 4)]
    ours, ref = GrowingCache(CONFIG, kv), DynamicCache(config=CONFIG)
    for layer, (k, v) in enumerate(kv):
        ref.layers[layer].update(k, v)
    assert ours.get_seq_length() == ref.get_seq_length() == 12
    assert all(torch.equal(a.keys, b.keys) for a, b in zip(ours.layers, ref.layers))


def test_attention_output_does_not_depend_on_what_was_cached_before():
    # Gemma 3 270M's real window (512): the sliding layer hands attention keys from a 512-block
    # boundary, which keeps PyTorch's CPU attention bit-identical to attending over everything.
    config = Gemma3TextConfig(**{**CONFIG.to_dict(), "sliding_window": 512})
    q = torch.randn(1, 2, 3, 8)
    k, v = _states(1, 1400, 7)
    layer = GrowingCache(config).layers[0]
    layer.update(k[:, :, :1397], v[:, :, :1397])
    length, offset = layer.get_mask_sizes(3)
    got_k, got_v = layer.update(k[:, :, 1397:], v[:, :, 1397:])
    assert got_k.shape[-2] == length and offset % 512 == 0 and offset > 0
    pos_q, pos_k = torch.arange(1397, 1400)[:, None], torch.arange(1400)[None]
    mask = (pos_k <= pos_q) & (pos_k > pos_q - 512)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    full = sdpa(q, k.expand(1, 2, -1, -1), v.expand(1, 2, -1, -1), attn_mask=mask)
    ours = sdpa(q, got_k.expand(1, 2, -1, -1), got_v.expand(1, 2, -1, -1), attn_mask=mask[:, offset:])
    assert torch.equal(ours, full)

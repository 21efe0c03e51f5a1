"""Which engine runs a model: `--backend auto|llama|hf|openai` and `--model NAME|FOLDER|FILE.gguf`.

- llama: llama.cpp in process (backtrack/lm/llama_cpp_backend.py) on a GGUF file: a packaged model's
  name (backtrack/embedded.py) or a path. The fast path on a CPU (see benchmarks/bench_backends.py).
- hf: transformers (backtrack/lm/hf_backend.py) on a folder, a hub id, a .gguf file (dequantised) or
  a packaged model. The path for GPUs and for HF folders.
- openai: an OpenAI-compatible server (backtrack/lm/openai_backend.py).
- auto: llama on a CPU when llama-cpp-python is installed and the model is a GGUF (a packaged name
  or a .gguf file); hf otherwise. Without --model, llama runs qwen2.5-coder-1.5b and hf gemma-3-270m.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from backtrack.lm.embedded import DEFAULT_MODEL, MODELS, model_gguf

BACKENDS = ("auto", "llama", "hf", "openai")
# Without --model: the capable model on llama.cpp; transformers keeps the 270M model it converts
# (a 1.5B model dequantised for torch is slow on a CPU).
LLAMA_DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def is_gguf_model(model: str | None) -> bool:
    return model is None or model in MODELS or (model.endswith(".gguf") and Path(model).is_file())


def resolve_backend(backend: str, model: str | None, device: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "auto":
        return backend
    if device == "cpu" and is_gguf_model(model) and llama_cpp_installed():
        return "llama"
    return "hf"


@dataclass(frozen=True)
class LlamaOptions:
    threads: int | None = None
    n_ctx: int = 16384


def load_llama(model: str | None, cache_dir: str | Path, options: LlamaOptions = LlamaOptions()):
    """The llama.cpp generator of a packaged model (verified GGUF, assembled on first use) or a GGUF file."""
    from backtrack.lm.llama_cpp_backend import LlamaCppConfig, LlamaCppGenerator

    if not llama_cpp_installed():
        raise ValueError("--backend llama needs llama-cpp-python: pip install -e '.[models]' (builds llama.cpp from "
                         "source, 4-12 minutes)")
    name = model or LLAMA_DEFAULT_MODEL
    if name in MODELS:
        path, sha, label = model_gguf(name, cache_dir), MODELS[name].sha256, name
    elif name.endswith(".gguf") and Path(name).is_file():
        path, sha, label = Path(name), None, name
    else:
        raise ValueError(f"--backend llama runs GGUF files: --model {' | '.join(MODELS)} | FILE.gguf; got {name!r}")
    return LlamaCppGenerator(LlamaCppConfig(str(path), label=label, sha256=sha, n_threads=options.threads,
                                            n_ctx=options.n_ctx))


def hf_model_source(model: str | None, cache_dir: str | Path) -> str | None:
    """What the transformers backend loads for --model: None for the default packaged model (its
    converted folder), a packaged model's verified GGUF file, or the argument as given."""
    if model is None or model == DEFAULT_MODEL:
        return None
    if model in MODELS:
        return str(model_gguf(model, cache_dir))
    return model

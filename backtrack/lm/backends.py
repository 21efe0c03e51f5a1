"""Which engine runs a model: `--backend auto|llama|hf|openai` and `--model NAME|FOLDER|FILE.gguf`.

- llama: llama.cpp in process (backtrack/lm/llama_cpp_backend.py) on a GGUF file: a packaged model's
  name (backtrack/lm/embedded.py) or a path. The fast path on a CPU (see benchmarks/bench_backends.py).
- hf: transformers (backtrack/lm/hf_backend.py) on a folder, a hub id, a .gguf file (dequantised) or
  a packaged model. The path for GPUs and for HF folders.
- openai: an OpenAI-compatible server (backtrack/lm/openai_backend.py).
- auto: llama on a CPU when llama-cpp-python is installed and the model is a GGUF (a packaged name
  or a .gguf file); hf otherwise. Without --model, llama runs qwen2.5-coder-1.5b and hf gemma-3-270m.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from backtrack.lm.embedded import DEFAULT_MODEL, MODELS, model_gguf
from backtrack.lm.hf_backend import DTYPES
from backtrack.lm.openai_backend import LOGPROBS_MODES, OpenAIConfig
from bigbench_mistake.options import option

BACKENDS = ("auto", "llama", "hf", "openai")
PROMPT_FORMATS = ("raw", "chat")
LLAMA_KERNELS = ("fast", "invariant")
# torch device strings bbm can use; anything else is refused before a model loads
_DEVICE = re.compile(r"^(cpu|mps|(cuda|xpu)(:\d+)?)$")
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
    prefix_states: bool = True  # keep shared prefixes' KV state on disk under the cache dir (prefix_store.py)
    batch_invariant: bool = False  # kernels whose results do not depend on the batch (LlamaCppConfig)


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
                                            n_ctx=options.n_ctx, batch_invariant=options.batch_invariant,
                                            prefix_dir=str(Path(cache_dir) / "llama-prefixes") if options.prefix_states
                                            else None))


def hf_model_source(model: str | None, cache_dir: str | Path) -> str | None:
    """What the transformers backend loads for --model: None for the default packaged model (its
    converted folder), a packaged model's verified GGUF file, or the argument as given."""
    if model is None or model == DEFAULT_MODEL:
        return None
    if model in MODELS:
        return str(model_gguf(model, cache_dir))
    return model


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "bbm"


@dataclass(frozen=True)
class BackendConfig:
    """Which model runs, on which engine: the options of every command that generates."""
    backend: str = option("auto", "auto (llama on a CPU for GGUF models when llama-cpp-python is installed, else hf) "
                          "| llama: llama.cpp in process on a GGUF | hf: transformers (--model: folder, hub id or "
                          ".gguf) | openai: an OpenAI-compatible completions server (vLLM, llama.cpp, hosted) at "
                          "--base-url serving --model.")
    model: str | None = option(None, "A packaged model (qwen2.5-coder-1.5b, the default on llama.cpp | gemma-3-270m, "
                               "the default on transformers), a .gguf file, or (--backend hf) a model folder or hub "
                               "id; with --backend openai, the name the server serves.")
    gguf_file: str | None = option(None, "--backend hf: GGUF file inside --model (folder or hub repo).")
    dtype: str = option("auto", "--backend hf: auto (bfloat16 where the CPU/GPU has it natively) | float32 | "
                        "bfloat16 | float16")
    device: str = option("cpu", "torch device: cpu, cuda, cuda:N, mps.")
    cache_dir: Path | None = option(None, "Packaged models, default reward model and backtracking outcomes "
                                    "(default ~/.cache/bbm).", envvar="BBM_CACHE_DIR")
    threads: int | None = option(None, "CPU threads of the model (default: torch's / every core for llama.cpp; "
                                 "use 1 on a busy shared machine).")
    prompt_format: str = option("raw", "raw: the paper's few-shot prompt as plain text | chat: the few-shot prompt "
                                "and question as a user message in the model's chat template (--backend llama); "
                                "the steps and answers are the same either way.")
    llama_kernels: str = option("fast", "--backend llama: fast (llama.cpp's defaults; a row's results move with the "
                                "rows batched beside it) | invariant (no weight repacking or tiled matmul, flash "
                                "attention over a q8_0 KV cache: greedy traces are the same bit for bit whatever the "
                                "batch; measured on Qwen2.5-1.5B, 2 cores: 0.78x the greedy speed, prompts at half speed).")
    base_url: str | None = option(None, "--backend openai: the server's API root, e.g. http://127.0.0.1:8000/v1 "
                                  "(key for hosted endpoints: OPENAI_API_KEY).", envvar="BBM_BASE_URL")
    concurrency: int = option(OpenAIConfig.concurrency, "--backend openai: requests in flight at once.")
    logprobs_mode: str = option(OpenAIConfig.logprobs_mode, "--backend openai: raw (server returns temperature-1 "
                                "log-probs; the default of vLLM and llama.cpp) | processed (vLLM started with "
                                "--logprobs-mode processed_logprobs) | none (ask for none: no log-prob selection).")
    request_timeout: float = option(OpenAIConfig.timeout_s, "--backend openai: seconds to wait for an answer; a "
                                    "server silent that long fails the run (raise it for a slow server).")
    retries: int = option(OpenAIConfig.max_retries, "--backend openai: retries on 429/5xx and dropped connections, "
                          "with backoff (a timed-out request is not retried).")

    def __post_init__(self) -> None:
        checks = [(self.backend in BACKENDS, f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}"),
                  (self.dtype in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}"),
                  (bool(_DEVICE.match(self.device)), f"--device must be cpu, cuda, cuda:N or mps, got {self.device!r}"),
                  (self.prompt_format in PROMPT_FORMATS,
                   f"--prompt-format must be one of {', '.join(PROMPT_FORMATS)}, got {self.prompt_format!r}"),
                  (self.llama_kernels in LLAMA_KERNELS,
                   f"--llama-kernels must be one of {', '.join(LLAMA_KERNELS)}, got {self.llama_kernels!r}"),
                  (self.logprobs_mode in LOGPROBS_MODES,
                   f"--logprobs-mode must be one of {', '.join(LOGPROBS_MODES)}, got {self.logprobs_mode!r}"),
                  (self.threads is None or self.threads >= 1, f"--threads must be >= 1, got {self.threads}"),
                  (self.concurrency >= 1, f"--concurrency must be >= 1, got {self.concurrency}"),
                  (self.request_timeout > 0, f"--request-timeout must be > 0, got {self.request_timeout}"),
                  (self.retries >= 0, f"--retries must be >= 0, got {self.retries}")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        engine = self.engine
        if engine == "openai" and not (self.base_url and self.model):
            raise ValueError("--backend openai needs --base-url URL and --model NAME (the name the server serves)")
        if self.prompt_format == "chat" and engine != "llama":
            raise ValueError("--prompt-format chat needs --backend llama (the chat template comes from the GGUF)")
        if self.llama_kernels != "fast" and engine != "llama":
            raise ValueError("--llama-kernels is for --backend llama (llama.cpp in process)")
        if self.gguf_file and engine != "hf":
            raise ValueError("--gguf-file is for --backend hf; with llama pass the .gguf file as --model")

    @property
    def engine(self) -> str:
        """The backend `auto` resolves to on this machine."""
        return resolve_backend(self.backend, self.model, self.device)

    @property
    def cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()


def load_lm(config: BackendConfig):
    """The generator a BackendConfig names: llama.cpp in process, transformers, or an OpenAI-compatible
    server (the API key comes from OPENAI_API_KEY). A wrong server model name fails here, before any
    run directory is written."""
    engine = config.engine
    if engine == "openai":
        from backtrack.lm.openai_backend import OpenAIGenerator

        gen = OpenAIGenerator(OpenAIConfig(base_url=config.base_url, model=config.model,
                                           api_key=os.environ.get("OPENAI_API_KEY"), concurrency=config.concurrency,
                                           timeout_s=config.request_timeout, max_retries=config.retries,
                                           logprobs_mode=config.logprobs_mode,
                                           require_logprobs=config.logprobs_mode != "none"))
        gen.check_model()
        return gen
    print(f"loading {config.model or 'the default model'} ({engine}) ...", file=sys.stderr)
    if engine == "llama":
        gen = load_llama(config.model, config.cache, LlamaOptions(threads=config.threads,
                                                                  batch_invariant=config.llama_kernels == "invariant"))
        if config.prompt_format == "chat":
            from backtrack.lm.chat_format import ChatFormatGenerator

            gen = ChatFormatGenerator(gen, gen.chat_prefix)
        return gen
    import torch

    from backtrack.lm.hf_backend import ModelConfig, load_generator

    if config.threads:
        torch.set_num_threads(config.threads)
    return load_generator(ModelConfig(model=hf_model_source(config.model, config.cache), gguf_file=config.gguf_file,
                                      dtype=config.dtype, device=config.device, cache_dir=str(config.cache)))

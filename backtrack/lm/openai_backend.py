"""The LM interface over an OpenAI-compatible completions server (vLLM, llama.cpp, hosted).

One HTTP request per greedy step and per sample, all those of a call run through one bounded
thread pool, so a server that batches (vLLM) or several server slots see `concurrency` requests at
once. Only the stdlib is used (urllib + concurrent.futures): no new dependency for a handful of
JSON POSTs.

What the completions API gives, and how it maps onto the conventions of backtrack/lm/generator.py:
- `stop=["\\n"]` ends a step at its first newline. The server cuts the newline out of `text` but
  llama-cpp-python and vLLM still list the token holding it in `logprobs`: the step's tokens are
  those up to and including the first token whose text contains "\\n", so `Step.logprob` includes
  the stop token as the protocol asks. A server that stops without listing the stop token (llama.cpp's
  own llama-server drops it; vLLM when it does) is asked once more, without the stop string, for one
  token more: same prompt and seed give the same tokens (checked) and then the stop token with its
  log-prob (counted in `stats["stop_token_refetched"]`). Text before the newline inside the stop
  token (e.g. a ".\\n" token) is part of `text`, as with a local model.
- EOS: vLLM lists the EOS token with its log-prob (its `stop_reason` is null); llama.cpp does not,
  so there an EOS-ended step's log-prob lacks the EOS token (counted in `stats["eos_without_logprob"]`).
- Servers return log-probs of the model's own distribution (temperature 1), not of the
  temperature-scaled one actually sampled from (vLLM: unless started with
  `--logprobs-mode processed_logprobs`, then pass `logprobs_mode="processed"`). At temperature 1
  (the paper's backtracking) the two are the same; a sample drawn at another temperature, or with
  top-k/top-p, in raw mode gets `Step.logprob = nan` (unknown) rather than a number that means
  something else. Generating such steps is fine (self-consistency never reads log-probs); a caller
  that ranks by log-prob refuses NaN (backtracking's log-prob selection).
- `loglikelihood` uses `echo=True` + `logprobs`: the server scores the prompt's own tokens. A
  server that cannot (llama.cpp started without `--logits_all true`, most hosted chat-era
  endpoints) gets a `LogprobsUnavailable` error naming the fix, never a made-up number.
- Samples: one request per sample with its own seed derived from (seed, sample index)
  (`sample_seed`), so each sample is reproducible on its own (and cacheable by sample index), on
  servers that honour `seed` (vLLM, llama.cpp). `n` > 1 in one request is not used: llama.cpp's server ignores it.
- Failures: 429/5xx are retried `max_retries` times with backoff (a busy or restarting server
  recovers). A try that gets no answer within `timeout_s` is retried only `timeout_retries` times
  (a hung server stays hung; a queued request sent again only queues again), so a server that
  accepts connections but never answers fails within `OpenAIConfig.worst_case_no_answer_s` (under
  60 s by default). A refused connection before the server ever answered fails at once: there is no
  server at that URL yet. Once it has answered, a refusal is retried like a 5xx (a restart).
- Context: the prompt's token count is only known to the server, so its own "too long" error (400,
  or a 5xx from some proxies) becomes a `ContextTooLong` naming max_tokens and the context, never a
  retry; when GET /models reports the context (vLLM's `max_model_len`), max_tokens that alone
  exceed it are refused before sending.
"""
from __future__ import annotations

import json
import math
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from http.client import HTTPException
from typing import Any, Callable, Sequence

from backtrack.lm.generator import (LoglikelihoodRequest, STOP_EOS, STOP_MAX_TOKENS, STOP_NEWLINE, Step, StepRequest,
                                    stable_int)

LOGPROBS_MODES = ("raw", "processed", "none")


class ServerError(ValueError):
    """A server problem the user must fix (a ValueError so the CLI prints it as one clear line)."""


class ServerUnavailable(ServerError):
    """The server did not answer (connection refused, timeouts, 429/5xx) after every retry."""


class ServerUnreachable(ServerUnavailable):
    """Nothing listens at the URL (connection refused, unknown host)."""


class ModelNotFound(ServerError):
    pass


class ContextTooLong(ServerError):
    pass


class LogprobsUnavailable(ServerError):
    pass


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str                # e.g. http://127.0.0.1:8000/v1 (the part before /completions)
    model: str                   # the name the server serves the model under
    api_key: str | None = None   # sent as a Bearer token (hosted endpoints); never stored in configs
    concurrency: int = 4         # requests in flight at once
    timeout_s: float = 50.0      # per try: how long to wait for the connection and for the answer
    max_retries: int = 5         # retries after the first try, on 429/5xx and dropped connections
    timeout_retries: int = 0     # retries of a try that got no answer within timeout_s
    backoff_s: float = 1.0       # first wait; doubles each retry (capped at 30 s), plus up to 25% jitter
    logprobs_mode: str = "raw"   # raw: server returns temperature-1 log-probs; processed; none
    require_logprobs: bool = True  # False: steps from a server that lists no log-probs carry logprob=nan
    check_model: bool = True     # GET /models once and fail unless it lists `model`

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ValueError("model must name the model the server serves (see GET {base_url}/models)")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.timeout_s <= 0 or self.backoff_s < 0 or self.max_retries < 0 or self.timeout_retries < 0:
            raise ValueError("timeout_s must be > 0, backoff_s, max_retries and timeout_retries >= 0")
        if self.logprobs_mode not in LOGPROBS_MODES:
            raise ValueError(f"logprobs_mode must be one of {LOGPROBS_MODES}, got {self.logprobs_mode!r}")


    def backoff(self, attempt: int) -> float:
        """The longest wait before retry number `attempt` + 1 (jitter included)."""
        return min(self.backoff_s * 2 ** attempt, 30.0) * 1.25

    @property
    def worst_case_no_answer_s(self) -> float:
        """The longest one request waits on a server that accepts connections but never answers:
        timeout_retries + 1 tries of timeout_s each, and the backoff between them."""
        return (self.timeout_retries + 1) * self.timeout_s + sum(self.backoff(i) for i in range(self.timeout_retries))


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample `index` of a (seed, ...) request: distinct per index, stable across runs."""
    return stable_int(f"{seed}:{index}", 4, "big") & 0x7FFFFFFF


class OpenAIGenerator:
    """The LM interface (backtrack/lm/generator.py) over POST {base_url}/completions."""

    device = "server"  # the server's hardware and software are not known here (generator_identity)
    libraries = ()

    def __init__(self, config: OpenAIConfig, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        # The model and what the log-probs mean change results; the URL, concurrency and retries do
        # not, so n shards on n servers share one name (and one cache key).
        self.name = f"openai:{config.model}:logprobs={config.logprobs_mode}"
        self._url = config.base_url.rstrip("/") + "/completions"
        self._sleep = sleep
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="bbm-openai")
        self._lock = threading.Lock()
        self._served: list[str] | None = None  # model names from GET /models, once checked
        self.context: int | None = None  # the model's context when GET /models says it (vLLM: max_model_len)
        self.stats = {"requests": 0, "retries": 0, "answered": 0, "completions": 0, "stop_token_refetched": 0,
                      "eos_without_logprob": 0, "stop_reason_probed": 0}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """fn over items in the pool, in order. On the first error the requests not started yet are
        cancelled: a dead server then costs one request's wait, not one per queued prompt."""
        futures = [self._pool.submit(fn, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def __enter__(self) -> "OpenAIGenerator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the LM interface
    def generate_steps(self, requests: Sequence[StepRequest]) -> list[list[Step]]:
        jobs = [(r, k) for r in requests for k in range(r.n)]  # every sample of the call in one pool
        steps = iter(self._pool.map(lambda job: self._request_step(*job), jobs))
        return [[next(steps) for _ in range(r.n)] for r in requests]

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[float]:
        if self.config.logprobs_mode == "none":
            raise LogprobsUnavailable(f"{self.config.base_url}: log-probs are off (--logprobs-mode none); "
                                      "log-prob scoring needs a server that returns them")
        return list(self._pool.map(lambda r: self._echo_logprob(r.prompt, r.continuation), requests))

    def _request_step(self, r: StepRequest, k: int) -> Step:
        """Sample k of a request (its seed from (seed, k)), or its greedy step (no seed sent)."""
        if r.greedy:
            return self._step(r.prompt, r.max_tokens, 0.0, None, None, None)
        step = self._step(r.prompt, r.max_tokens, r.temperature, sample_seed(r.seed, k), r.top_k, r.top_p)
        return step if self.samples_logprobs(r) else replace(step, logprob=math.nan)

    def samples_logprobs(self, r: StepRequest) -> bool:
        """Whether the server's log-probs are those of the distribution `r` samples from: raw
        (temperature-1) log-probs are, at temperature 1 without top-k/top-p."""
        if self.config.logprobs_mode != "raw":
            return True  # processed: as sampled; none: nan anyway
        return math.isclose(r.temperature, 1.0) and r.top_k is None and (r.top_p is None or r.top_p == 1)

    # ------------------------------------------------------------------ one step
    def _step(self, prompt: str, max_tokens: int, temperature: float, seed: int | None,
              top_k: int | None, top_p: float | None) -> Step:
        if max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        body: dict[str, Any] = {"model": self.config.model, "prompt": prompt, "max_tokens": max_tokens,
                                "temperature": temperature, "stop": ["\n"], "n": 1}
        if seed is not None:
            body["seed"] = seed
        if top_k is not None:
            body["top_k"] = top_k
        if top_p is not None:
            body["top_p"] = top_p
        want_logprobs = self.config.logprobs_mode != "none"
        if want_logprobs:
            body["logprobs"] = 1
        response = self._post(body)
        response_usage = response.get("usage") or {}
        choice = self._choice(response)
        raw_text = choice.get("text") or ""
        finish = choice.get("finish_reason")
        lp = choice.get("logprobs") if want_logprobs else None
        if want_logprobs and not (lp and lp.get("tokens") is not None):
            if self.config.require_logprobs:
                raise LogprobsUnavailable(
                    f"{self.config.base_url} returned no log-probs for model {self.config.model!r} "
                    "(llama.cpp: start the server with --logits_all true); pass --logprobs-mode none to "
                    "generate without them (backtracking's log-prob selection then refuses to run)")
            lp = None
        if lp is None:  # no log-probs: text, token count (usage) and stop reason only
            return self._step_without_logprobs(body, choice, response_usage)
        tokens: list[str] = lp["tokens"]
        token_lps: list[float | None] = lp["token_logprobs"]
        newline_at = next((i for i, t in enumerate(tokens) if "\n" in t), None)
        if newline_at is not None:  # the server listed the stop token: the step ends with it
            used = token_lps[: newline_at + 1]
            return Step(raw_text.split("\n", 1)[0].strip(), _sum(used, self._url), newline_at + 1, STOP_NEWLINE)
        total = _sum(token_lps, self._url)
        if finish == "length":
            return Step(raw_text.strip(), total, len(tokens), STOP_MAX_TOKENS)
        if "stop_reason" in choice and choice["stop_reason"] is None:
            return Step(raw_text.strip(), total, len(tokens), STOP_EOS)  # vLLM: EOS, listed with its log-prob
        # Stopped, but the stop token is not listed: a newline whose token the server left out
        # (vLLM says so in stop_reason; llama.cpp's llama-server drops it silently) or an EOS.
        return self._probe_stop(body, raw_text, tokens, token_lps)

    def _step_without_logprobs(self, body: dict[str, Any], choice: dict[str, Any], usage: dict[str, Any]) -> Step:
        """Step.logprob is nan (unknown), n_tokens comes from `usage`. Newline vs EOS: vLLM says it in
        stop_reason; llama.cpp does not, so we ask for the greedy next token after the step's text:
        EOS there means the step ended at EOS, anything else that it ended at the newline. Exact for
        greedy steps; a sampled step that ended on a sampled EOS where greedy would go on is read as
        a newline stop (rare; counted in stats["stop_reason_probed"])."""
        raw_text, finish = choice.get("text") or "", choice.get("finish_reason")
        n = int(usage.get("completion_tokens") or 0)
        if finish == "length":
            return Step(raw_text.strip(), math.nan, n, STOP_MAX_TOKENS)
        if "stop_reason" in choice:
            return Step(raw_text.strip(), math.nan, n, STOP_NEWLINE if choice["stop_reason"] == "\n" else STOP_EOS)
        probe = {"model": body["model"], "prompt": body["prompt"] + raw_text, "max_tokens": 1, "temperature": 0.0}
        after = self._choice(self._post(probe))
        with self._lock:
            self.stats["stop_reason_probed"] += 1
        at_eos = not (after.get("text") or "") and after.get("finish_reason") == "stop"
        return Step(raw_text.strip(), math.nan, n, STOP_EOS if at_eos else STOP_NEWLINE)

    def _probe_stop(self, body: dict[str, Any], raw_text: str, tokens: list[str],
                    token_lps: list[float | None]) -> Step:
        """Ask again without the stop string for one token more than were listed. Same prompt, same
        seed: the server regenerates the same tokens (checked) and then the stop token itself, with
        its log-prob; no token past the listed ones means EOS. Exact, at the price of one request."""
        probe = {k: v for k, v in body.items() if k != "stop"}
        probe["max_tokens"] = len(tokens) + 1
        lp = self._choice(self._post(probe)).get("logprobs") or {}
        again, again_lps = lp.get("tokens") or [], lp.get("token_logprobs") or []
        if again[: len(tokens)] != tokens:
            raise ServerError(f"{self._url} did not regenerate the same tokens for the same prompt and seed "
                              "(needed to find the stop token's log-prob); is sampling seeded on this server?")
        with self._lock:
            self.stats["stop_token_refetched"] += 1
        total = _sum(token_lps, self._url)
        if len(again) > len(tokens) and "\n" in again[len(tokens)]:
            return Step(raw_text.split("\n", 1)[0].strip(), total + _sum([again_lps[len(tokens)]], self._url),
                        len(tokens) + 1, STOP_NEWLINE)
        with self._lock:  # EOS that the server does not list (llama.cpp): its log-prob is unknown
            self.stats["eos_without_logprob"] += 1
        return Step(raw_text.strip(), total, len(tokens), STOP_EOS)

    def _echo_logprob(self, prompt: str, continuation: str) -> float:
        """log P(continuation | prompt): the server scores prompt+continuation (echo) and we sum the
        log-probs of the tokens that start inside the continuation. max_tokens=1 (not 0): llama.cpp
        reads 0 as "no limit"; the one generated token lies past the text and is not counted."""
        full = prompt + continuation
        body = {"model": self.config.model, "prompt": full, "max_tokens": 1, "temperature": 0.0,
                "echo": True, "logprobs": 1}
        try:
            choice = self._choice(self._post(body))
        except ServerError as e:
            if isinstance(e, (ServerUnavailable, ModelNotFound, ContextTooLong)):
                raise
            raise LogprobsUnavailable(f"{self.config.base_url} cannot score a given text (echo + logprobs): {e}. "
                                      "llama.cpp: start it with --logits_all true; hosted endpoints often "
                                      "do not support echo") from None
        lp = choice.get("logprobs") or {}
        offsets, token_lps, tokens = lp.get("text_offset"), lp.get("token_logprobs"), lp.get("tokens")
        if not offsets or token_lps is None or tokens is None:
            raise LogprobsUnavailable(f"{self.config.base_url} returned no prompt log-probs for echo=True; "
                                      "log P(continuation | prompt) needs them")
        # Offsets may count from the start of the echoed text (OpenAI, llama.cpp) — check it is so.
        if offsets[0] != 0:
            raise LogprobsUnavailable(f"{self.config.base_url}: echoed text offsets do not start at 0 "
                                      f"(first is {offsets[0]}); cannot tell prompt tokens from continuation tokens")
        start, end = len(prompt), len(full)
        picked: list[float | None] = []
        for i, off in enumerate(offsets):
            tok_end = off + len(tokens[i])
            # a token belongs to the continuation when it covers any of its characters
            if tok_end > start and off < end:
                picked.append(token_lps[i])
        if not picked and continuation:
            raise LogprobsUnavailable(f"{self.config.base_url}: no echoed token covers the continuation")
        return _sum(picked, self._url)

    # ------------------------------------------------------------------ HTTP with retries
    def _choice(self, response: dict[str, Any]) -> dict[str, Any]:
        choices = response.get("choices")
        if not choices:
            raise ServerError(f"{self._url} answered without choices: {json.dumps(response)[:300]}")
        return choices[0]

    def check_model(self) -> list[str]:
        """GET {base_url}/models and fail unless it lists our model. Needed because some servers
        (llama-cpp-python) answer a request for an unknown model with their default model instead
        of an error. Runs once, before the first completion request; returns the served names."""
        with self._lock:
            if self._served is not None:
                return self._served
        answer = self._request(self.config.base_url.rstrip("/") + "/models", None)
        entries = [m for m in answer.get("data", []) if isinstance(m, dict)]
        served = [m.get("id") for m in entries]
        if self.config.model not in served:
            raise ModelNotFound(f"{self.config.base_url} does not serve model {self.config.model!r}; it serves: "
                                f"{', '.join(map(str, served)) or 'nothing'} (pass one of these as --model)")
        context = next(m.get("max_model_len") for m in entries if m.get("id") == self.config.model)
        with self._lock:
            self._served = served
            self.context = context if isinstance(context, int) and context > 0 else None
        return served

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._served is None and self.config.check_model:
            self.check_model()
        if self.context is not None and body["max_tokens"] >= self.context:  # no room left for any prompt
            raise ContextTooLong(f"{self._url}: a prompt of at least 1 token plus {body['max_tokens']} new ones "
                                 f"exceeds the context of {self.context} tokens (max_model_len of "
                                 f"{self.config.model!r}); lower --max-tokens")
        return self._request(self._url, body)

    def _request(self, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """POST body (GET when None) with the retries of the module doc; 4xx raise at once."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        cfg = self.config
        last, timeouts = "", 0
        started = time.monotonic()
        for attempt in range(cfg.max_retries + 1):
            with self._lock:
                self.stats["requests"] += 1
                if attempt:
                    self.stats["retries"] += 1
            retry_after: float | None = None
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
                with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:
                    answer = json.loads(resp.read().decode("utf-8"))
                with self._lock:
                    self.stats["answered"] += 1
                    self.stats["completions"] += body is not None
                return answer
            except urllib.error.HTTPError as e:
                detail = _error_detail(e)
                if _too_long(detail):  # some proxies send it as a 5xx: retrying cannot help
                    raise self._too_long(e.code, detail, body) from None
                if e.code == 429 or e.code >= 500:
                    last = f"HTTP {e.code}: {detail}"
                    retry_after = _retry_after(e)
                else:
                    raise self._client_error(e.code, detail) from None
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, HTTPException) as e:
                reason = getattr(e, "reason", e)
                if isinstance(reason, (socket.timeout, TimeoutError)):
                    timeouts += 1
                    last = "timeout"
                    if timeouts > cfg.timeout_retries:
                        break
                elif isinstance(reason, (ConnectionRefusedError, socket.gaierror)) and not self.stats["answered"]:
                    raise ServerUnreachable(
                        f"the server is not reachable at {cfg.base_url} ({reason}): nothing listens there. Start one, e.g. "
                        "`python -m llama_cpp.server --model FILE.gguf --logits_all true --port 8000` or "
                        "`vllm serve MODEL --port 8000`, or fix --base-url") from None
                else:
                    last = f"{type(reason).__name__}: {reason}"
            except json.JSONDecodeError as e:
                last = f"answer is not JSON ({e.msg})"
            if attempt < cfg.max_retries:
                wait = min(cfg.backoff_s * 2 ** attempt, 30.0)
                self._sleep(max(wait * (1 + 0.25 * random.random()), retry_after or 0.0))
        took, tries = time.monotonic() - started, attempt + 1
        # Only a server that answered before can have finished items: speak of them only then.
        kept = " to resume (items finished so far are kept in the run directory)" if self.stats["completions"] else ""
        if last == "timeout":
            raise ServerUnavailable(
                f"{url} sent no answer within {cfg.timeout_s:g} s ({tries} tries, {took:.0f} s in all): the server "
                "accepts connections but is hung, still loading the model, or slower than that. If it is only "
                f"slow, raise the limit with --request-timeout SECONDS (OpenAIConfig.timeout_s) and rerun the "
                f"same command{kept}")
        raise ServerUnavailable(f"server {url} did not answer after {tries} tries over {took:.0f} s (last: {last}). "
                                f"Start the server again and rerun the same command{kept}")

    def _client_error(self, code: int, detail: str) -> ServerError:
        low = detail.lower()
        if "model" in low and ("not found" in low or "does not exist" in low or code == 404):
            return ModelNotFound(f"{self._url}: the server does not serve model {self.config.model!r} "
                                 f"(HTTP {code}: {detail}); GET {self.config.base_url.rstrip('/')}/models lists its names")
        if code in (401, 403):
            return ServerError(f"{self._url}: not authorised (HTTP {code}: {detail}); set OPENAI_API_KEY")
        if code == 404:
            return ServerError(f"{self._url}: not found (HTTP 404: {detail}); --base-url should end in /v1")
        return ServerError(f"{self._url}: request refused (HTTP {code}: {detail})")


    def _too_long(self, code: int, detail: str, body: dict[str, Any] | None) -> ContextTooLong:
        """The server's "prompt too long" as the message the local backends give (their lengths are
        known here only as far as the server tells them)."""
        new = (body or {}).get("max_tokens", "?")
        context = f"the context of {self.context} tokens" if self.context else "the model's context"
        return ContextTooLong(f"{self._url}: the prompt plus {new} new ones exceeds {context} (the server said: "
                              f"HTTP {code}: {detail}); lower --max-tokens or use fewer few-shot examples")


def _too_long(detail: str) -> bool:
    low = detail.lower()
    return any(s in low for s in ("context length", "context window", "maximum context", "context size",
                                  "too long", "exceed", "n_ctx"))


def _sum(values: Sequence[float | None], where: str) -> float:
    if any(v is None for v in values):
        raise LogprobsUnavailable(f"{where} returned a null log-prob for a generated token")
    return float(sum(values))  # type: ignore[arg-type]


def _error_detail(e: urllib.error.HTTPError) -> str:
    try:
        raw = e.read().decode("utf-8", errors="replace")
    except Exception:  # the body is only for the message; its absence is not an error of its own
        return str(e.reason)
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return raw.strip()[:300] or str(e.reason)
    err = obj.get("error", obj) if isinstance(obj, dict) else obj
    if isinstance(err, dict):
        return str(err.get("message") or err.get("detail") or err)[:300]
    return str(err)[:300]


def _retry_after(e: urllib.error.HTTPError) -> float | None:
    value = e.headers.get("Retry-After") if e.headers else None
    try:
        return min(float(value), 60.0) if value is not None else None
    except ValueError:
        return None

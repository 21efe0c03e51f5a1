"""The OpenAI-compatible backend's HTTP handling against a real local HTTP server (127.0.0.1) that
answers with scripted status codes and bodies: retries/backoff on 429/5xx and dead servers, clear
4xx errors, and how completions answers map onto Steps. The end-to-end test against a real model
server is tests/test_openai_backend_server.py."""
from __future__ import annotations

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backtrack.lm.generator import LM, STOP_EOS, STOP_MAX_TOKENS, STOP_NEWLINE, LoglikelihoodRequest, StepRequest
from backtrack.lm.openai_backend import (ContextTooLong, LogprobsUnavailable, ModelNotFound, OpenAIConfig,
                                      OpenAIGenerator, ServerError, ServerUnavailable, sample_seed)


class Scripted:
    """A real HTTP server whose answers come from a list of (status, body, headers) or a function."""

    def __init__(self, answers=None, handler=None, delay_s: float = 0.0):
        self.answers = list(answers or [])
        self.handler = handler
        self.delay_s = delay_s
        self.models = ["m"]
        self.model_fields: dict = {}  # more fields of each GET /models entry (vLLM: max_model_len)
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep pytest output clean
                pass

            def do_GET(self):  # GET /v1/models
                data = json.dumps({"object": "list", "data": [{"id": m, **outer.model_fields} for m in outer.models]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    answer = outer.handler(body) if outer.handler else outer.answers.pop(0)
                time.sleep(outer.delay_s)
                with outer.lock:
                    outer.in_flight -= 1
                status, payload, headers = (*answer, {})[:3] if len(answer) == 2 else answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def completion(text, tokens, lps, finish="stop", **extra):
    choice = {"text": text, "index": 0, "finish_reason": finish,
              "logprobs": {"tokens": tokens, "token_logprobs": lps, "top_logprobs": None,
                           "text_offset": list(range(len(tokens)))}, **extra}
    return 200, {"choices": [choice]}


def gen(url, waits=None, **kw):
    kw.setdefault("backoff_s", 0.5)
    kw.setdefault("max_retries", 3)
    return OpenAIGenerator(OpenAIConfig(base_url=url, model="m", **kw),
                           sleep=(waits.append if waits is not None else (lambda s: None)))


def greedy(g, prompts, max_tokens):
    """The greedy step of each prompt, from one generate_steps call."""
    return [step for [step] in g.generate_steps([StepRequest(p, max_tokens=max_tokens) for p in prompts])]


def test_is_a_generator_and_name_leaves_out_url():
    g = gen("http://127.0.0.1:1/v1")
    assert isinstance(g, LM)
    assert g.name == "openai:m:logprobs=raw" and "127.0.0.1" not in g.name
    g.close()


def test_config_validation():
    with pytest.raises(ValueError, match="http"):
        OpenAIConfig(base_url="localhost:8000", model="m")
    with pytest.raises(ValueError, match="concurrency"):
        OpenAIConfig(base_url="http://x/v1", model="m", concurrency=0)
    with pytest.raises(ValueError, match="logprobs_mode"):
        OpenAIConfig(base_url="http://x/v1", model="m", logprobs_mode="maybe")


def test_step_includes_the_listed_newline_token():
    # llama.cpp/vLLM cut "\n" from text but list the token holding it; ".\n" keeps its "." in text
    with Scripted([completion(" Let's go", [" Let", "'s", " go", ".\n"], [-0.5, -0.25, -1.0, -0.125])]) as s:
        with gen(s.base_url) as g:
            (step,) = greedy(g, ["Thought 1:"], 16)
    assert step.text == "Let's go"
    assert step.n_tokens == 4 and step.stop_reason == STOP_NEWLINE
    assert step.logprob == pytest.approx(-1.875)
    sent = s.requests[0]
    assert sent["stop"] == ["\n"] and sent["temperature"] == 0.0 and sent["max_tokens"] == 16 and sent["logprobs"] == 1


def test_length_and_eos():
    with Scripted([completion(" a b", [" a", " b"], [-1.0, -2.0], finish="length"),
                   completion(" done", [" done", ""], [-1.0, -0.5], stop_reason=None)]) as s:
        with gen(s.base_url, concurrency=1) as g:
            a, b = greedy(g, ["p1", "p2"], 2)
    assert (a.text, a.n_tokens, a.stop_reason, a.logprob) == ("a b", 2, STOP_MAX_TOKENS, -3.0)
    assert (b.text, b.n_tokens, b.stop_reason, b.logprob) == ("done", 2, STOP_EOS, -1.5)
    assert g.stats["eos_without_logprob"] == 0  # vLLM-style: stop_reason says it was EOS


@pytest.mark.parametrize("probe_tokens,probe_lps,expected", [
    ([" hi", "\n"], [-1.0, -0.75], ("hi", 2, STOP_NEWLINE, -1.75)),  # the stop token, found by the probe
    ([" hi"], [-1.0], ("hi", 1, STOP_EOS, -1.0)),  # nothing after: EOS (llama.cpp does not list it)
])
def test_unlisted_stop_token_is_found_by_asking_again(probe_tokens, probe_lps, expected):
    # llama.cpp's llama-server style: stopped on "\n", token not listed, no stop_reason field
    def handler(body):
        if "stop" not in body:
            assert body["max_tokens"] == 2 and body["seed"] == 5
            return completion(" hi", probe_tokens, probe_lps, finish="length")
        return completion(" hi", [" hi"], [-1.0])

    with Scripted(handler=handler) as s:
        with gen(s.base_url) as g:
            step = g._step("Q:", 8, 1.0, 5, None, None)
    assert (step.text, step.n_tokens, step.stop_reason, step.logprob) == expected
    assert g.stats["stop_token_refetched"] == 1
    assert g.stats["eos_without_logprob"] == (expected[2] == STOP_EOS)


def test_probe_that_does_not_regenerate_the_same_tokens_is_an_error():
    def handler(body):
        return completion(" yo", [" yo", "\n"], [-1.0, -1.0]) if "stop" not in body else completion(" hi", [" hi"], [-1.0])

    with Scripted(handler=handler) as s:
        with gen(s.base_url) as g:
            with pytest.raises(ServerError, match="did not regenerate the same tokens"):
                greedy(g, ["Q:"], 8)


def test_retries_5xx_and_429_with_backoff_then_succeeds():
    waits: list[float] = []
    with Scripted([(503, {"error": {"message": "loading"}}), (500, {"error": "boom"}),
                   (429, {"error": "slow down"}, {"Retry-After": "7"}),
                   completion(" ok", [" ok", "\n"], [-1.0, -0.5])]) as s:
        with gen(s.base_url, waits=waits) as g:
            (step,) = greedy(g, ["p"], 4)
    assert step.text == "ok" and g.stats["retries"] == 3
    assert 0.5 <= waits[0] < 0.7 and 1.0 <= waits[1] < 1.3  # doubling, with jitter
    assert waits[2] >= 7  # Retry-After honoured


def test_gives_up_with_a_clear_error_after_retries():
    waits: list[float] = []
    with Scripted([(502, {"error": "bad gateway"})] * 4) as s:
        with gen(s.base_url, waits=waits) as g:
            with pytest.raises(ServerUnavailable, match="did not answer after 4 tries.*HTTP 502.*rerun the same command"):
                greedy(g, ["p"], 4)
    assert len(waits) == 3


def test_dead_server_is_a_clear_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    with gen(f"http://127.0.0.1:{port}/v1", max_retries=2) as g:
        with pytest.raises(ServerUnavailable, match="not reachable at .*Connection refused"):
            greedy(g, ["p"], 4)  # at once: tests/test_openai_timeouts.py has the rest


@pytest.mark.parametrize("status,message,error", [
    (404, "The model `m` does not exist.", ModelNotFound),
    (400, "This model's maximum context length is 2048 tokens", ContextTooLong),
    (400, "Requested tokens (3000) exceed context window of 2048", ContextTooLong),
    (401, "invalid api key", ServerError),
])
def test_4xx_is_not_retried_and_names_the_problem(status, message, error):
    with Scripted([(status, {"error": {"message": message}})]) as s:
        with gen(s.base_url) as g:
            with pytest.raises(error, match=message.split()[0]):
                greedy(g, ["p"], 4)
    assert len(s.requests) == 1


@pytest.mark.parametrize("probe_text,reason", [("\n", STOP_NEWLINE), ("", STOP_EOS)])
def test_missing_logprobs_refused_unless_allowed(probe_text, reason):
    answer = (200, {"choices": [{"text": " hi", "finish_reason": "stop", "logprobs": None}],
                    "usage": {"completion_tokens": 2}})
    probe = (200, {"choices": [{"text": probe_text, "finish_reason": "length" if probe_text else "stop", "logprobs": None}]})
    with Scripted([answer, answer, probe]) as s:
        with gen(s.base_url) as g:
            with pytest.raises(LogprobsUnavailable, match="no log-probs"):
                greedy(g, ["p"], 4)
        with gen(s.base_url, require_logprobs=False) as g:
            (step,) = greedy(g, ["p"], 4)
    assert step.text == "hi" and math.isnan(step.logprob) and step.n_tokens == 2 and step.stop_reason == reason
    assert s.requests[-1] == {"model": "m", "prompt": "p hi", "max_tokens": 1, "temperature": 0.0}


@pytest.mark.parametrize("mode,temperature,top_p,known", [
    ("raw", 1.0, None, True),    # temperature-1 log-probs are those of the distribution sampled
    ("raw", 0.7, None, False),   # another temperature: unknown, never the temperature-1 number
    ("raw", 1.0, 0.9, False),    # top-p changes the distribution too
    ("processed", 0.7, None, True),
])
def test_samples_whose_logprobs_the_server_cannot_give_carry_nan(mode, temperature, top_p, known):
    with Scripted(handler=lambda b: completion(" s", [" s", "\n"], [-1.0, -0.5])) as s:
        with gen(s.base_url, logprobs_mode=mode) as g:
            [steps] = g.generate_steps([StepRequest("p", n=2, temperature=temperature, seed=0, max_tokens=4,
                                                    top_p=top_p)])
    assert [(x.text, x.n_tokens, x.stop_reason) for x in steps] == [("s", 2, STOP_NEWLINE)] * 2
    assert all((x.logprob == -1.5) if known else math.isnan(x.logprob) for x in steps)
    assert all(r["temperature"] == temperature for r in s.requests)


def fixed_answer_server():
    """Every completion is the step "So the answer is 3" (with the newline token listed)."""
    return Scripted(handler=lambda b: completion(" So the answer is 3", [" So", " the", " answer", " is", " 3", "\n"],
                                                 [-0.5] * 6))


def test_self_consistency_samples_at_another_temperature_in_raw_mode():
    """Self-consistency never reads log-probs: T=0.7 against a raw-log-prob server just works."""
    from backtrack.methods.strategies import Item, StrategyConfig, get_strategy

    cfg = StrategyConfig(max_steps=2, max_step_tokens=8, sc_samples=3, sc_temperature=0.7)
    with fixed_answer_server() as s:
        with gen(s.base_url) as g:
            [r] = get_strategy("self-consistency")([Item("multistep_arithmetic", "q", "(1 + 2) =", "3")], cfg, g, None)
    assert r.answer == "3" and r.correct and r.calls == 3
    assert [b["temperature"] for b in s.requests] == [0.7] * 3 and len({b["seed"] for b in s.requests}) == 3


@pytest.mark.parametrize("selection", ["logprob", "mean_logprob"])
def test_backtracking_logprob_selection_refuses_unknown_logprobs(selection):
    from backtrack.methods.backtracking import BacktrackConfig, backtrack_batch
    from bigbench_mistake.records import Trace

    trace = Trace("multistep_arithmetic", "t", "(1 + 2) =", ("1 + 2 = 4.", "So the answer is 4"), "4", "3", 0)
    cfg = BacktrackConfig(n_samples=2, temperature=0.7, selection=selection, max_step_tokens=8, max_steps=3)
    with fixed_answer_server() as s:
        with gen(s.base_url) as g:
            with pytest.raises(ValueError, match=f"selection '{selection}' ranks samples by log-probability.*"
                                                 "temperature 0.7.*Sample at temperature 1"):
                backtrack_batch([trace], [0], g, cfg)
            # at temperature 1 the same server's log-probs are exact: backtracking runs
            [o] = backtrack_batch([trace], [0], g, BacktrackConfig(n_samples=2, selection=selection, max_step_tokens=8,
                                                                   max_steps=3))
    assert o.location == 0 and o.steps == ("So the answer is 3",)


def test_samples_get_distinct_stable_seeds_and_run_concurrently():
    with Scripted(handler=lambda b: completion(" s", [" s", "\n"], [-1.0, -1.0]), delay_s=0.2) as s:
        with gen(s.base_url, concurrency=4) as g:
            [steps] = g.generate_steps([StepRequest("p", n=4, temperature=1.0, seed=3, max_tokens=4)])
        assert len(steps) == 4 and s.max_in_flight == 4
        seeds = [r["seed"] for r in s.requests]
        assert sorted(seeds) == sorted(sample_seed(3, i) for i in range(4)) and len(set(seeds)) == 4
        with gen(s.base_url, concurrency=1) as g:
            s.max_in_flight = 0
            greedy(g, ["a", "b", "c"], 4)
        assert s.max_in_flight == 1
    assert sample_seed(0, 1) != sample_seed(1, 0)


def test_one_sample_requests_are_sent_together_each_with_the_seed_of_its_sample_0():
    with Scripted(handler=lambda b: completion(" s", [" s", "\n"], [-1.0, -1.0]), delay_s=0.2) as s:
        with gen(s.base_url, concurrency=4) as g:
            steps = g.generate_steps([StepRequest(p, temperature=1.0, seed=seed, max_tokens=4)
                                      for p, seed in zip(["a", "b", "c"], [7, 8, 9])])
        assert [len(x) for x in steps] == [1, 1, 1] and s.max_in_flight == 3
        assert sorted((r["prompt"], r["seed"]) for r in s.requests) == [("a", sample_seed(7, 0)), ("b", sample_seed(8, 0)),
                                                                       ("c", sample_seed(9, 0))]


def test_logprob_sums_the_continuation_tokens():
    prompt, cont = "Q: 1+1?\nThought 1:", " It is 2."
    full = prompt + cont
    pieces = ["Q", ": 1+1?\nThought 1", ":", " It", " is", " 2", "."]
    offsets = [sum(len(p) for p in pieces[:i]) for i in range(len(pieces))]
    assert "".join(pieces) == full
    lps = [None, -1.0, -0.5, -2.0, -0.25, -0.125, -1.0]
    with Scripted(handler=lambda b: (200, {"choices": [{"text": full + "\n", "finish_reason": "length", "logprobs": {
            "tokens": pieces + ["\n"], "token_logprobs": lps + [-9.0], "text_offset": offsets + [len(full)]}}]})) as s:
        with gen(s.base_url) as g:
            assert g.loglikelihood([LoglikelihoodRequest(prompt, cont)]) == [pytest.approx(-3.375)]
    assert s.requests[0]["echo"] is True and s.requests[0]["max_tokens"] == 1


def test_logprob_echo_refused_is_a_clear_error():
    with Scripted([(400, {"error": {"message": "echo is not supported"}})]) as s:
        with gen(s.base_url) as g:
            with pytest.raises(LogprobsUnavailable, match="echo"):
                g.loglikelihood([LoglikelihoodRequest("p", "x")])


def test_unknown_model_name_is_refused_before_generating():
    # llama-cpp-python's server answers an unknown model name with its default model: check /models first
    with Scripted([completion(" x", [" x", "\n"], [-1.0, -1.0])]) as s:
        s.models = ["gemma3-270m"]
        with gen(s.base_url) as g:
            with pytest.raises(ModelNotFound, match="does not serve model 'm'; it serves: gemma3-270m"):
                greedy(g, ["p"], 4)
        assert s.requests == []
        with gen(s.base_url, check_model=False) as g:
            assert greedy(g, ["p"], 4)[0].text == "x"

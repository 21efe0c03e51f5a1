"""How the server backend fails when there is no usable server: one that accepts connections but
never answers, a port nobody listens on, and a server that goes away in the middle of a run. Real
sockets on 127.0.0.1, small timeouts passed explicitly; the default's bound is computed, not timed."""
from __future__ import annotations

import socket
import threading

import pytest

from backtrack.lm.generator import StepRequest

from backtrack.lm.openai_backend import OpenAIConfig, OpenAIGenerator, ServerUnavailable
from tests.test_openai_backend import Scripted, completion


class SilentServer:
    """A socket that accepts every connection and never sends a byte (a hung server)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.held: list[socket.socket] = []  # keep them open: a closed one would read as a disconnect
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()
        for c in self.held:
            c.close()


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    return port


def generator(url: str, waits: list[float], **kw) -> OpenAIGenerator:
    return OpenAIGenerator(OpenAIConfig(base_url=url, model="m", backoff_s=0.5, **kw), sleep=waits.append)


def test_a_server_that_never_answers_fails_with_the_url_the_timeout_and_how_to_raise_it():
    waits: list[float] = []
    with SilentServer() as s:
        with generator(s.base_url, waits, timeout_s=0.3, max_retries=5, timeout_retries=1) as g:
            with pytest.raises(ServerUnavailable) as e:
                g.generate_steps([StepRequest("p", max_tokens=4)])
    msg = str(e.value)
    assert s.base_url in msg and "0.3 s" in msg and "--request-timeout" in msg
    assert "saved" not in msg and "kept" not in msg  # nothing ran, so nothing was saved
    assert g.stats["requests"] == 2 and len(waits) == 1  # a timeout is retried timeout_retries times, not max_retries


def test_the_default_config_gives_up_on_a_silent_server_within_60_seconds():
    config = OpenAIConfig(base_url="http://127.0.0.1:8000/v1", model="m")
    assert config.timeout_retries < config.max_retries
    # every try waits timeout_s at most, plus the backoff before each retry (jitter included)
    waits = sum(min(config.backoff_s * 2 ** i, 30.0) * 1.25 for i in range(config.timeout_retries))
    assert config.worst_case_no_answer_s == pytest.approx((config.timeout_retries + 1) * config.timeout_s + waits)
    assert config.worst_case_no_answer_s <= 60


def test_a_refused_connection_fails_at_once_saying_no_server_is_reachable():
    waits: list[float] = []
    url = f"http://127.0.0.1:{free_port()}/v1"
    with generator(url, waits, max_retries=5) as g:
        with pytest.raises(ServerUnavailable) as e:
            g.generate_steps([StepRequest("p", max_tokens=4)])
    msg = str(e.value)
    assert f"not reachable at {url}" in msg and "start" in msg.lower()
    assert "saved" not in msg and "kept" not in msg and "resume" not in msg
    assert waits == [] and g.stats["requests"] == 1


def test_a_server_that_goes_away_mid_run_is_retried_and_the_message_says_finished_items_are_kept():
    waits: list[float] = []
    with Scripted([completion(" ok", [" ok", "\n"], [-1.0, -0.5])]) as s:
        g = generator(s.base_url, waits, max_retries=2)
        ((step,),) = g.generate_steps([StepRequest("p", max_tokens=4)])
    assert step.text == "ok"
    with pytest.raises(ServerUnavailable) as e:  # the server is gone now: a restart may bring it back
        g.generate_steps([StepRequest("p2", max_tokens=4)])
    g.close()
    msg = str(e.value)
    assert s.base_url in msg and "kept in the run directory" in msg and "rerun the same command" in msg
    assert len(waits) == 2

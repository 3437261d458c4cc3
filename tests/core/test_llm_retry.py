"""Retry-After is honoured (seconds, HTTP date, retry-after-ms) up to a cap, within a total time per rollout."""
from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.core.models import llm_client
from lessonlab.core.models.llm_client import ModelCallError, RetryPolicy, retry_after_seconds
from lessonlab.core.settings import Endpoint


class FakeClock:
    """Stands in for the client's clock and sleep: waiting advances time without taking any."""

    def __init__(self):
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(llm_client, "_clock", clock.clock)
    monkeypatch.setattr(llm_client, "_sleep", clock.sleep)
    return clock


@pytest.mark.parametrize("headers, expected", [
    ({"Retry-After": "30"}, 30.0),
    ({"retry-after": "2.5"}, 2.5),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),   # the precise one wins
    ({"Retry-After": "-4"}, 0.0),
    ({"Retry-After": "soon"}, None),
    ({}, None),
])
def test_retry_after_header_forms(headers, expected):
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date():
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 17 <= retry_after_seconds({"Retry-After": when}) <= 21


def chat_once(server, retry=RetryPolicy()):
    async def go():
        endpoint = Endpoint(name="s", base_url=server.base_url, model="m", timeout=5)
        client = llm_client.make_client(endpoint)
        try:
            return await llm_client.chat(client, "m", [{"role": "user", "content": "hi"}], retry=retry)
        finally:
            await client.close()
    return asyncio.run(go())


def test_a_429_asking_for_30_seconds_waits_30_seconds(fake_clock):
    def script(req, n):
        if n == 1:
            return Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "30"})
        return Reply(body=completion("Answer: 1"))

    with ScriptedServer(script) as server:
        result = chat_once(server)
    assert result.output == "Answer: 1" and result.attempts == 2
    assert fake_clock.waits == [30.0]


def test_retry_after_is_capped_at_a_minute(fake_clock):
    def script(req, n):
        if n == 1:
            return Reply(status=503, headers={"Retry-After": "3600"})
        return Reply(body=completion("ok"))

    with ScriptedServer(script) as server:
        chat_once(server)
    assert fake_clock.waits == [60.0]


def test_total_time_per_rollout_is_bounded(fake_clock):
    with ScriptedServer(lambda req, n: Reply(status=429, headers={"Retry-After": "30"})) as server:
        with pytest.raises(ModelCallError) as failure:
            chat_once(server, RetryPolicy(max_attempts=10, max_total=100.0))
    # 30 + 30 + 30 = 90 s waited; a fourth wait would pass the 100 s limit
    assert fake_clock.waits == [30.0, 30.0, 30.0]
    assert "HTTP 429" in str(failure.value) and "100 s" in str(failure.value)
    assert failure.value.attempts == 4

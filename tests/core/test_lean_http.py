"""The lean request path of bulk runs fails exactly as the openai client does: same messages, attempts, retries."""
from __future__ import annotations

import asyncio
import socket

import pytest

from tests.helpers.scripted_server import Reply, ScriptedServer, completion, tool_call_completion
from lessonlab.core.models import llm_client
from lessonlab.core.models.lean_http import LeanChatClient
from lessonlab.core.settings import Endpoint

RETRY = llm_client.RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)

FAULTS = {
    "500 json": lambda q, n: Reply(status=500, body={"error": {"message": "boom"}}),
    "500 text with escapes": lambda q, n: Reply(status=500, body="plain \x1b[2J oops",
                                                headers={"Content-Type": "text/plain"}),
    "400 tools refused": lambda q, n: Reply(status=400, body={"error": {"message": "tools are not supported"}}),
    "429 then ok": lambda q, n: (Reply(status=429, body={}, headers={"Retry-After": "0"}) if n == 1
                                 else Reply(body=completion("fine"))),
    "dropped": lambda q, n: Reply(drop=True),
    "hang past timeout": lambda q, n: Reply(delay=1.5, body=completion("late")),
    "not json": lambda q, n: Reply(body="<html>hi</html>", headers={"Content-Type": "text/html"}),
    "wrong shape": lambda q, n: Reply(body='{"choices": 3}', headers={"Content-Type": "application/json"}),
    "tool calls": lambda q, n: Reply(body=tool_call_completion([("spell", '{"word": "ab"}')])),
}


async def outcome(base_url: str, lean: bool, params: dict) -> tuple:
    client = llm_client.make_client(Endpoint(name="x", base_url=base_url, model="m", timeout=1.0), lean=lean)
    assert isinstance(client, LeanChatClient) == lean
    try:
        reply = await llm_client.chat(client, "m", [{"role": "user", "content": "hi"}], params, retry=RETRY)
        return ("ok", reply.output, reply.attempts, reply.tool_calls, reply.prompt_tokens)
    except llm_client.ModelCallError as exc:
        return ("error", str(exc), exc.attempts, exc.retryable, llm_client.rejects_tools(exc))
    finally:
        await client.close()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_lean_path_answers_and_fails_like_the_openai_client(fault):
    params = {"tools": [{"type": "function", "function": {"name": "spell"}}]} if fault == "tool calls" else {}
    results = []
    for lean in (False, True):
        with ScriptedServer(FAULTS[fault]) as server:
            results.append(asyncio.run(outcome(server.base_url, lean, params)))
            if lean:
                assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert results[0] == results[1]


def test_a_refused_connection_reads_the_same_on_both_paths():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()
    plain, lean = (asyncio.run(outcome(url, lean, {})) for lean in (False, True))
    assert plain == lean and plain[0] == "error" and "connection error" in plain[1]


def test_the_openai_client_is_made_only_when_a_call_needs_it():
    async def calls(base_url: str) -> tuple:
        client = llm_client.make_client(Endpoint(name="x", base_url=base_url, model="m", timeout=1.0), lean=True)
        try:
            ok = await llm_client.chat(client, "m", [{"role": "user", "content": "hi"}], {}, retry=RETRY)
            made_after_success = client._openai is not None
            with pytest.raises(llm_client.ModelCallError) as failed:
                await llm_client.chat(client, "m", [{"role": "user", "content": "again"}], {}, retry=RETRY)
            return ok.output, made_after_success, str(failed.value), client._openai is not None
        finally:
            await client.close()

    script = lambda q, n: Reply(body=completion("fine")) if n == 1 else Reply(status=500, body={"error": {"message": "boom"}})
    with ScriptedServer(script) as server:
        output, made_after_success, error, made_after_failure = asyncio.run(calls(server.base_url))
    assert output == "fine" and not made_after_success
    assert error.startswith("HTTP 500 from endpoint") and made_after_failure


def test_a_reply_echoing_the_key_is_redacted_on_both_paths(monkeypatch):
    monkeypatch.setenv("LESSONLAB_TEST_KEY", "sk-test-abcdefghijklmnop")

    async def reply(base_url: str, lean: bool) -> str:
        endpoint = Endpoint(name="x", base_url=base_url, model="m", key_env="LESSONLAB_TEST_KEY", timeout=1.0)
        client = llm_client.make_client(endpoint, lean=lean)
        try:
            return (await llm_client.chat(client, "m", [{"role": "user", "content": "hi"}], retry=RETRY)).output
        finally:
            await client.close()

    with ScriptedServer(lambda q, n: Reply(body=completion("your key is sk-test-abcdefghijklmnop"))) as server:
        outputs = [asyncio.run(reply(server.base_url, lean)) for lean in (False, True)]
    assert outputs == ["your key is [redacted]"] * 2

"""The recording proxy through the openai SDK against the scripted server: lessons in, replies unchanged,
each exchange recorded once, conversations continued, bad requests refused without stopping the server."""
from __future__ import annotations

import json

import openai
import pytest

from lessonlab.core.lessons import add_lesson
from lessonlab.core.runs.trajectory import read_trajectory
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.proxy import post, proxy_for, tool_call_reply
from tests.helpers.scripted_server import Reply, ScriptedServer, completion

LESSON = "Count letters one by one before answering."


def _rows(path):
    with open_workspace(path) as ws:
        return ws.query("SELECT r.*, x.messages_json, x.output, x.steps_json, x.request_json, u.kind"
                        " FROM rollouts r JOIN rollout_texts x ON x.rollout_id = r.id JOIN runs u ON u.id = r.run_id"
                        " ORDER BY r.created_at, r.rowid")


@pytest.fixture
def lesson_ws(tmp_path):
    path = tmp_path / "ws.db"
    with open_workspace(path) as ws:
        add_lesson(ws, LESSON)
    return path


def test_plain_reply_unchanged_lessons_upstream_recorded_once(lesson_ws):
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 3"))) as upstream:
        with proxy_for(upstream.base_url, lesson_ws) as proxy:
            client = openai.OpenAI(base_url=proxy.url, api_key="sk-client-secret-123")
            raw = client.chat.completions.with_raw_response.create(
                model="whatever", messages=[{"role": "system", "content": "You are terse."},
                                            {"role": "user", "content": "How many r in strawberry?"}])
            reply = raw.parse()
    assert reply.choices[0].message.content == "Answer: 3"
    rollout_id = raw.headers["X-Lessonlab-Rollout"]
    sent = upstream.requests[0]
    assert sent["model"] == "upstream-model"
    system = sent["messages"][0]["content"]
    assert system.startswith("You are terse.\n\n") and LESSON in system
    assert sent["messages"][1] == {"role": "user", "content": "How many r in strawberry?"}
    rows = _rows(lesson_ws)
    assert [r["id"] for r in rows] == [rollout_id]
    row = rows[0]
    assert row["kind"] == "serve" and row["reward"] is None and row["status"] == "ok"
    assert row["output"] == "Answer: 3" and row["prompt_tokens"] == 11
    assert json.loads(row["messages_json"]) == sent["messages"]
    with open_workspace(lesson_ws) as ws:
        lessons = ws.query("SELECT l.lesson_id FROM snapshot_lessons l WHERE snapshot_id = ?", (row["snapshot_id"],))
        assert len(lessons) == 1
        task = ws.one("SELECT suite, name, prompt_json FROM tasks WHERE id = ?", (row["task_id"],))
    assert task["suite"] == "serve" and json.loads(task["prompt_json"]) == "How many r in strawberry?"


def test_no_system_message_gets_one_and_streamed_reply_is_forwarded(lesson_ws):
    with ScriptedServer(lambda req, n: Reply(stream_chunks=["Ans", "wer: ", "3"])) as upstream:
        with proxy_for(upstream.base_url, lesson_ws) as proxy:
            client = openai.OpenAI(base_url=proxy.url, api_key="x")
            stream = client.chat.completions.create(model="m", stream=True,
                                                    messages=[{"role": "user", "content": "count"}])
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Answer: 3"
    sent = upstream.requests[0]["messages"]
    assert sent[0]["role"] == "system" and LESSON in sent[0]["content"] and sent[1]["content"] == "count"
    rows = _rows(lesson_ws)
    assert len(rows) == 1 and rows[0]["output"] == "Answer: 3" and rows[0]["finish_reason"] == "stop"


def test_tools_pass_through_and_the_continued_conversation_is_one_rollout(lesson_ws):
    tools = [{"type": "function", "function": {"name": "spell", "description": "spell a word",
                                               "parameters": {"type": "object", "properties": {
                                                   "word": {"type": "string"}}}}}]

    def script(req, n):
        return tool_call_reply("spell", {"word": "strawberry"}) if n == 1 else Reply(body=completion("Answer: 3"))

    with ScriptedServer(script) as upstream:
        with proxy_for(upstream.base_url, lesson_ws) as proxy:
            client = openai.OpenAI(base_url=proxy.url, api_key="x")
            messages = [{"role": "user", "content": "How many r in strawberry?"}]
            first = client.chat.completions.create(model="m", messages=messages, tools=tools)
            call = first.choices[0].message.tool_calls[0]
            assert call.function.name == "spell" and json.loads(call.function.arguments) == {"word": "strawberry"}
            messages += [first.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": "s-t-r-a-w-b-e-r-r-y"}]
            second = client.chat.completions.with_raw_response.create(model="m", messages=messages, tools=tools)
    assert second.parse().choices[0].message.content == "Answer: 3"
    assert upstream.requests[0]["tools"] == tools and upstream.requests[1]["tools"] == tools
    rows = _rows(lesson_ws)
    assert len(rows) == 1 and rows[0]["id"] == second.headers["X-Lessonlab-Rollout"]
    row = rows[0]
    assert row["n_steps"] == 2 and row["tool_mode"] == "native" and row["prompt_tokens"] == 22
    assert json.loads(row["request_json"])["tools"] == tools
    prompt, steps = read_trajectory(json.loads(row["messages_json"]), row["output"], row["steps_json"])
    assert [s.index for s in steps] == [1, 2] and steps[0].tool_calls[0].name == "spell"
    assert steps[0].results[0].content == "s-t-r-a-w-b-e-r-r-y" and steps[1].final
    assert steps[1].content == "Answer: 3"


def test_episode_header_groups_and_new_conversations_are_new_rollouts(lesson_ws):
    with ScriptedServer(lambda req, n: Reply(body=completion(f"reply {n}"))) as upstream:
        with proxy_for(upstream.base_url, lesson_ws) as proxy:
            ids = []
            for text, episode in (("a", "ep-1"), ("b", "ep-1"), ("c", None), ("d", None)):
                response = post(f"{proxy.url}/chat/completions",
                                      json_body={"model": "m", "messages": [{"role": "user", "content": text}]},
                                      headers={"X-Lessonlab-Episode": episode} if episode else {})
                ids.append(response.headers["X-Lessonlab-Rollout"])
    assert ids[0] == ids[1] and len(set(ids)) == 3
    assert len(_rows(lesson_ws)) == 3


def test_malformed_json_is_400_and_the_next_request_works(lesson_ws):
    with ScriptedServer(lambda req, n: Reply(body=completion("ok"))) as upstream:
        with proxy_for(upstream.base_url, lesson_ws) as proxy:
            bad = post(f"{proxy.url}/chat/completions", content=b'{"messages": [', 
                             headers={"Content-Type": "application/json"})
            assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
            empty = post(f"{proxy.url}/chat/completions", json_body={"messages": []})
            assert empty.status_code == 400
            big = post(f"{proxy.url}/chat/completions", content=b"x" * (32 * 1024 * 1024 + 10))
            assert big.status_code == 413
            good = post(f"{proxy.url}/chat/completions", json_body={"messages": [{"role": "user", "content": "hi"}]})
            assert good.status_code == 200 and good.json()["choices"][0]["message"]["content"] == "ok"
    assert len(upstream.requests) == 1 and len(_rows(lesson_ws)) == 1


def test_client_key_never_reaches_upstream_or_workspace(lesson_ws, monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", "sk-upstream-key-777")
    seen = []

    def script(req, n):
        return Reply(body=completion("ok"))

    with ScriptedServer(script) as upstream:
        handler = upstream.httpd.RequestHandlerClass
        original = handler.do_POST

        def capture(self):
            seen.append(self.headers.get("Authorization"))
            original(self)

        handler.do_POST = capture
        with proxy_for(upstream.base_url, lesson_ws, key_env="UPSTREAM_KEY") as proxy:
            client = openai.OpenAI(base_url=proxy.url, api_key="sk-client-secret-999")
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert seen == ["Bearer sk-upstream-key-777"]
    data = lesson_ws.read_bytes() + (lesson_ws.parent / "ws.db-wal").read_bytes() \
        if (lesson_ws.parent / "ws.db-wal").exists() else lesson_ws.read_bytes()
    assert b"sk-client-secret-999" not in data and b"sk-upstream-key-777" not in data


def test_upstream_errors_come_back_with_status_and_body_and_timeouts_are_504(lesson_ws):
    def script(req, n):
        if n == 1:
            return Reply(status=429, body={"error": {"message": "slow down", "type": "rate_limit"}})
        return Reply(body=completion("late"), delay=2.0)

    with ScriptedServer(script) as upstream:
        with proxy_for(upstream.base_url, lesson_ws, timeout=0.5) as proxy:
            limited = post(f"{proxy.url}/chat/completions", json_body={"messages": [{"role": "user", "content": "a"}]})
            late = post(f"{proxy.url}/chat/completions", json_body={"messages": [{"role": "user", "content": "b"}]},
                              timeout=10)
    assert limited.status_code == 429 and limited.json()["error"]["message"] == "slow down"
    assert late.status_code == 504 and late.json()["error"]["type"] == "upstream_timeout"
    rows = _rows(lesson_ws)
    assert [r["status"] for r in rows] == ["error", "error"] and "429" in rows[0]["error"]


def test_suite_header_scopes_lessons_and_runs(tmp_path):
    path = tmp_path / "ws.db"
    with open_workspace(path) as ws:
        add_lesson(ws, "Only for letters.", scope=["letters"], allow_unknown_suite=True)
    with ScriptedServer(lambda req, n: Reply(body=completion("ok"))) as upstream:
        with proxy_for(upstream.base_url, path) as proxy:
            for suite in ("letters", None):
                post(f"{proxy.url}/chat/completions", json_body={"messages": [{"role": "user", "content": "x"}]},
                           headers={"X-Lessonlab-Suite": suite} if suite else {})
    first, second = upstream.requests
    assert "Only for letters." in first["messages"][0]["content"]
    assert first["messages"][0]["role"] == "system" and second["messages"][0]["role"] == "user"
    with open_workspace(path) as ws:
        runs = ws.query("SELECT suite, kind, status, n_done FROM runs ORDER BY suite")
    assert runs == [{"suite": "letters", "kind": "serve", "status": "completed", "n_done": 1},
                    {"suite": "serve", "kind": "serve", "status": "completed", "n_done": 1}]


def test_an_endpoint_model_of_star_passes_the_clients_model_through_and_params_fill_gaps(tmp_path):
    with ScriptedServer(lambda req, n: Reply(body=completion("ok"))) as upstream:
        with proxy_for(upstream.base_url, tmp_path / "ws.db", model="*",
                       params={"temperature": 0.2, "max_tokens": 99}) as proxy:
            post(f"{proxy.url}/chat/completions", json_body={
                "model": "client-choice", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    sent = upstream.requests[0]
    assert sent["model"] == "client-choice" and sent["max_tokens"] == 5 and sent["temperature"] == 0.2


def test_a_locked_workspace_delays_the_record_but_loses_nothing(tmp_path):
    import sqlite3
    import time

    path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion(f"reply {n}"))) as upstream:
        with proxy_for(upstream.base_url, path) as proxy:
            post(f"{proxy.url}/chat/completions", json_body={"messages": [{"role": "user", "content": "first"}]})
            time.sleep(0.3)
            blocker = sqlite3.connect(path, isolation_level=None, timeout=0)
            blocker.execute("BEGIN IMMEDIATE")   # another process holding the write lock
            started = time.perf_counter()
            ids = [post(f"{proxy.url}/chat/completions",
                        json_body={"messages": [{"role": "user", "content": f"q{i}"}]}).headers["X-Lessonlab-Rollout"]
                   for i in range(5)]
            assert time.perf_counter() - started < 3   # requests are answered while the writes wait
            time.sleep(1.0)
            blocker.execute("ROLLBACK")
            blocker.close()
    rows = _rows(path)
    assert len(rows) == 6 and set(ids) <= {r["id"] for r in rows}

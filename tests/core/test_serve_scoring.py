"""Scoring by hand: unscored rollouts stay out of means, impact cells and reflection until scored; then they count.
And a client that disconnects mid-stream leaves the exchange recorded as far as it went."""
from __future__ import annotations

import json
import socket
import time

import pytest

from lessonlab.core.errors import BadInput, NotFound
from lessonlab.core.reflection.context import build_reflect_context
from lessonlab.core.reflection.selecting import select_rollouts
from lessonlab.core.runs.scoring import score_rollout
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.proxy import post, proxy_for
from tests.helpers.scripted_server import Reply, ScriptedServer, completion


def _serve(path, questions):
    with ScriptedServer(lambda req, n: Reply(body=completion(f"Answer: {n}"))) as upstream:
        with proxy_for(upstream.base_url, path) as proxy:
            return [post(f"{proxy.url}/chat/completions",
                         json_body={"messages": [{"role": "user", "content": q}]}).headers["X-Lessonlab-Rollout"]
                    for q in questions]


def test_scores_move_means_cells_and_reflection(tmp_path):
    path = tmp_path / "ws.db"
    first, second, third = _serve(path, ["same", "same", "other"])
    with open_workspace(path) as ws:
        run = ws.one("SELECT id, mean_reward, reward_sum FROM runs")
        assert run["mean_reward"] is None
        assert ws.one("SELECT COUNT(*) AS n FROM rollout_cells")["n"] == 0
        context = build_reflect_context(ws, select_rollouts(ws, run_id=run["id"]), [], 10_000)
        assert context.included == []
        assert {o["reason"] for o in context.omitted} == {"unscored (no reward given yet)"}

        scored = score_rollout(ws, first[:9], 1, "  right  ")
        assert (scored.rollout_id, scored.previous, scored.reward, scored.feedback) == (first, None, 1.0, "right")
        score_rollout(ws, second, 0.25)
        assert ws.one("SELECT mean_reward FROM runs")["mean_reward"] == pytest.approx(0.625)
        cell = ws.one("SELECT n, reward_sum FROM rollout_cells")
        assert (cell["n"], cell["reward_sum"]) == (2, 1.25)
        score_rollout(ws, second, 0.75)           # a changed score moves its cell contribution
        cell = ws.one("SELECT n, reward_sum FROM rollout_cells")
        assert (cell["n"], cell["reward_sum"]) == (2, 1.75)
        context = build_reflect_context(ws, select_rollouts(ws, run_id=run["id"]), [], 10_000)
        assert sorted(context.included) == sorted([first, second]) and [o["rollout_id"] for o in context.omitted] == [third]
        for bad in ("x", 1.5, -0.1, float("nan"), True):
            with pytest.raises(BadInput):
                score_rollout(ws, third, bad)
        with pytest.raises(NotFound):
            score_rollout(ws, "ro_missing", 1)
        assert ws.one("SELECT reward FROM rollouts WHERE id = ?", (third,))["reward"] is None


def test_client_disconnecting_mid_stream_leaves_the_exchange_recorded(tmp_path):
    path = tmp_path / "ws.db"
    pieces = [f"word{i} " for i in range(40)]

    def script(req, n):
        return Reply(stream_chunks=pieces)

    import tests.helpers.scripted_server as scripted

    original = scripted.ScriptedServer  # slow the stream down so the client can leave in the middle
    with original(script) as upstream:
        handler = upstream.httpd.RequestHandlerClass
        plain_write = handler._stream

        def slow_stream(self, reply):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for piece in reply.stream_chunks:
                    chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass

        handler._stream = slow_stream
        with proxy_for(upstream.base_url, path) as proxy:
            host, port = proxy.url.split("//")[1].split("/")[0].split(":")
            body = json.dumps({"stream": True, "messages": [{"role": "user", "content": "talk"}]}).encode()
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                received = b""
                while received.count(b"data:") < 5:
                    received += sock.recv(65536)
            time.sleep(0.5)  # the proxy notices on its next write
        handler._stream = plain_write
    with open_workspace(path) as ws:
        row = ws.one("SELECT r.status, r.error, r.note, x.output FROM rollouts r JOIN rollout_texts x"
                     " ON x.rollout_id = r.id")
    assert row["status"] == "error" and "disconnected" in row["error"]
    assert row["output"].startswith("word0 word1 word2 word3 word4") and len(row["output"]) < len("".join(pieces))
    assert "as far as it went" in row["note"]


def test_scored_served_rollouts_export_with_the_lessons_stripped(tmp_path):
    from lessonlab.core.lessons import add_lesson
    from lessonlab.core.transfer.training import export_sft

    path = tmp_path / "ws.db"
    with open_workspace(path) as ws:
        add_lesson(ws, "Check each letter twice.")
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 3"))) as upstream:
        with proxy_for(upstream.base_url, path) as proxy:
            with_system = post(f"{proxy.url}/chat/completions", json_body={"messages": [
                {"role": "system", "content": "You are terse."}, {"role": "user", "content": "r in strawberry?"}]})
            bare = post(f"{proxy.url}/chat/completions", json_body={"messages": [{"role": "user", "content": "hi"}]})
    with open_workspace(path) as ws:
        for answer in (with_system, bare):
            score_rollout(ws, answer.headers["X-Lessonlab-Rollout"], 1)
        export_sft(ws, tmp_path / "kept.jsonl", suite="serve")
        summary = export_sft(ws, tmp_path / "stripped.jsonl", suite="serve", strip_lessons=True)
    assert summary.stripped == 2
    kept = [json.loads(line)["messages"] for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    stripped = [json.loads(line)["messages"] for line in (tmp_path / "stripped.jsonl").read_text().splitlines()]
    assert all("Check each letter twice." in m[0]["content"] for m in kept)
    by_user = {m[-2]["content"]: m for m in stripped}
    assert by_user["r in strawberry?"][0] == {"role": "system", "content": "You are terse."}
    assert [m["role"] for m in by_user["hi"]] == ["user", "assistant"]

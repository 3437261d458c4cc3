"""`lessonlab serve` as a real process: the ready line, curl, SIGTERM with everything recorded, kill -9 and a
restart, a refused host; `lessonlab score` and the rewards route."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from click.testing import CliRunner

from lessonlab.cli.root import cli
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.proxy import post
from tests.helpers.scripted_server import Reply, ScriptedServer, completion


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


_STARTED: list[subprocess.Popen] = []


def _track(proc: subprocess.Popen) -> subprocess.Popen:
    """Remember a started process so its pipes are closed (and it is stopped) after the test."""
    _STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _close_started_processes():
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def start_serve(ws_path, *args) -> tuple[subprocess.Popen, str]:
    proc = _track(subprocess.Popen([sys.executable, "-m", "lessonlab", "serve", "--endpoint", "up", "--port", "0",
                             "-w", str(ws_path), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    line = proc.stdout.readline()
    match = re.match(r"serving (http://127\.0\.0\.1:\d+/v1) → up \(model up-model\)$", line.strip())
    assert match, (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
    return proc, match.group(1)


def rollouts(ws_path):
    with open_workspace(ws_path) as ws:
        return ws.query("SELECT r.id, r.run_id, r.status, r.reward, r.feedback, u.status AS run_status,"
                        " u.mean_reward FROM rollouts r JOIN runs u ON u.id = r.run_id ORDER BY r.rowid")


def ask(url, text, **headers):
    return post(f"{url}/chat/completions", json_body={"model": "m", "messages": [{"role": "user", "content": text}]},
                headers=headers)


def test_serve_with_curl_then_sigterm_records_everything(tmp_path):
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion(f"reply {n}"))) as upstream:
        assert invoke("endpoints", "add", "up", "--base-url", upstream.base_url, "--model", "up-model").exit_code == 0
        assert invoke("lessons", "add", "Say the answer last.", "-w", ws_path).exit_code == 0
        proc, url = start_serve(ws_path)
        try:
            curl = subprocess.run(
                ["curl", "-sS", "-D", "-", f"{url}/chat/completions", "-H", "Content-Type: application/json",
                 "-H", "Authorization: Bearer sk-client-key-42",
                 "-d", json.dumps({"model": "x", "messages": [{"role": "user", "content": "hi"}]})],
                capture_output=True, text=True, timeout=30)
            assert curl.returncode == 0, curl.stderr
            head, _, body = curl.stdout.partition("\n\n")
            assert " 200 " in head.splitlines()[0] and json.loads(body)["choices"][0]["message"]["content"] == "reply 1"
            rollout = re.search(r"(?i)x-lessonlab-rollout: (ro_\w+)", head).group(1)
            models = subprocess.run(["curl", "-sS", f"{url}/models"], capture_output=True, text=True, timeout=30)
            assert json.loads(models.stdout)["data"][0]["id"] == "up-model"
            for i in range(5):
                assert ask(url, f"q{i}").status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        assert "Say the answer last." in upstream.requests[0]["messages"][0]["content"]
    rows = rollouts(ws_path)
    assert len(rows) == 6 and rows[0]["id"] == rollout
    assert {r["run_status"] for r in rows} == {"completed"} and len({r["run_id"] for r in rows}) == 1
    assert b"sk-client-key-42" not in ws_path.read_bytes()


def test_kill_9_loses_at_most_the_exchanges_in_flight_and_a_restart_serves_on(tmp_path):
    ws_path = tmp_path / "ws.db"

    def script(req, n):
        slow = req["messages"][-1]["content"].startswith("slow")
        return Reply(body=completion(f"reply {n}"), delay=5.0 if slow else 0.0)

    with ScriptedServer(script) as upstream:
        assert invoke("endpoints", "add", "up", "--base-url", upstream.base_url, "--model", "up-model").exit_code == 0
        proc, url = start_serve(ws_path)
        answered = [ask(url, f"q{i}").headers["X-Lessonlab-Rollout"] for i in range(8)]
        in_flight = _track(subprocess.Popen(["curl", "-sS", f"{url}/chat/completions", "-H", "Content-Type: application/json",
                                      "-d", json.dumps({"messages": [{"role": "user", "content": "slow one"}]})],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.5)  # the answered exchanges' batch is written within milliseconds
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        in_flight.wait(10)
        rows = rollouts(ws_path)
        assert [r["id"] for r in rows] == answered  # every answered exchange once; the one in flight is lost
        assert len({r["run_id"] for r in rows}) == 1
        with open_workspace(ws_path) as ws:
            from lessonlab.core.runs.queries import list_runs
            assert [r["status"] for r in list_runs(ws)] == ["interrupted"]
        proc, url = start_serve(ws_path)
        try:
            again = ask(url, "after restart")
            assert again.status_code == 200 and again.json()["choices"][0]["message"]["content"].startswith("reply")
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0
    rows = rollouts(ws_path)
    assert len(rows) == 9 and len({r["run_id"] for r in rows}) == 2


def test_non_loopback_host_without_token_exits_2_and_with_token_needs_it(tmp_path, monkeypatch):
    result = invoke("serve", "--host", "0.0.0.0", "--port", "0", "-w", tmp_path / "ws.db")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "--token-env" in result.output
    assert not (tmp_path / "ws.db").exists()
    monkeypatch.setenv("PROXY_TOKEN", "tok-123")
    with ScriptedServer(lambda req, n: Reply(body=completion("ok"))) as upstream:
        assert invoke("endpoints", "add", "up", "--base-url", upstream.base_url, "--model", "up-model").exit_code == 0
        proc = _track(subprocess.Popen([sys.executable, "-m", "lessonlab", "serve", "--endpoint", "up", "--port", "0",
                                 "--host", "0.0.0.0", "--token-env", "PROXY_TOKEN", "-w", str(tmp_path / "ws.db")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        try:
            port = re.search(r":(\d+)/v1", proc.stdout.readline()).group(1)
            url = f"http://127.0.0.1:{port}/v1"
            assert ask(url, "no token").status_code == 401
            assert ask(url, "wrong", Authorization="Bearer nope").status_code == 401
            assert ask(url, "right", Authorization="Bearer tok-123").status_code == 200
        finally:
            proc.terminate()
            assert proc.wait(30) == 0
        assert len(upstream.requests) == 1 and "tok-123" not in json.dumps(upstream.requests)


def test_score_from_the_cli_and_the_http_route(tmp_path):
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion("ok"))) as upstream:
        assert invoke("endpoints", "add", "up", "--base-url", upstream.base_url, "--model", "up-model").exit_code == 0
        proc, url = start_serve(ws_path)
        try:
            first = ask(url, "one").headers["X-Lessonlab-Rollout"]
            second = ask(url, "two").headers["X-Lessonlab-Rollout"]
            # Scored at once: the route waits for the batched write.
            routed = post(f"{url}/lessonlab/rewards", json_body={"rollout": second, "reward": 0, "feedback": "wrong"})
            assert routed.status_code == 200 and routed.json()["reward"] == 0.0
            bad = post(f"{url}/lessonlab/rewards", json_body={"rollout": second, "reward": 7})
            assert bad.status_code == 400 and "from 0 to 1" in bad.json()["error"]["message"]
            missing = post(f"{url}/lessonlab/rewards", json_body={"rollout": "ro_nothing", "reward": 1})
            assert missing.status_code == 404
            assert rollouts(ws_path)[0]["reward"] is None
            result = invoke("score", first, "--reward", "1", "--feedback", "right answer", "-w", ws_path)
            assert result.exit_code == 0, result.output
            assert "was unscored" in result.output
            assert invoke("score", first, "--reward", "high", "-w", ws_path).exit_code == 2
        finally:
            proc.terminate()
            assert proc.wait(30) == 0
    rows = rollouts(ws_path)
    assert [(r["reward"], r["feedback"]) for r in rows] == [(1.0, "right answer"), (0.0, "wrong")]
    assert rows[0]["mean_reward"] == 0.5


def test_no_request_content_in_the_log(tmp_path):
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(status=500, body="upstream says no: SECRET-REPLY")) as upstream:
        assert invoke("endpoints", "add", "up", "--base-url", upstream.base_url, "--model", "up-model").exit_code == 0
        proc = _track(subprocess.Popen([sys.executable, "-m", "lessonlab", "-vv", "serve", "--endpoint", "up", "--port", "0",
                                 "-w", str(ws_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        url = proc.stdout.readline().split()[1]
        try:
            ask(url, "PRIVATE-PROMPT-TEXT")
            post(f"{url}/chat/completions", content=b'{"messages": "PRIVATE-BROKEN', headers={})
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=30)
    assert "PRIVATE" not in stderr and "SECRET-REPLY" not in stderr

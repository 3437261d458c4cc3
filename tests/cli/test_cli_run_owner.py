"""A run knows which process executes it: kill -9 reads as interrupted, a second resume is refused,
and resume never sends the rest of a run to a different server."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.cli.root import cli
from lessonlab.core.storage.workspace import open_workspace


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def count(ws_path, sql="SELECT COUNT(*) AS n FROM rollouts"):
    if not ws_path.exists():
        return 0
    ws = open_workspace(ws_path)
    try:
        return ws.one(sql)["n"]
    finally:
        ws.close()


def start_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lessonlab", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def assert_each_once(ws_path, n):
    assert count(ws_path) == n
    assert count(ws_path, "SELECT COUNT(DISTINCT run_id || task_id || ':' || sample_index) AS n FROM rollouts") == n


def test_a_run_killed_with_sigkill_reads_interrupted_and_resumes(tmp_path, make_suite):
    suite = make_suite(numeric_tasks(12))
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"), delay=0.1)) as server:
        assert invoke("endpoints", "add", "slow", "--base-url", server.base_url, "--model", "m").exit_code == 0
        proc = start_cli("run", "--suite", suite, "--endpoint", "slow", "--concurrency", "1", "-w", ws_path)
        wait_for(lambda: count(ws_path) >= 3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()  # reads and closes its pipes
        runs = json.loads(invoke("runs", "--json", "-w", ws_path).stdout)
        assert [r["status"] for r in runs] == ["interrupted"]
        shown = json.loads(invoke("show", runs[0]["id"], "--json", "-w", ws_path).stdout)
        assert shown["status"] == "interrupted"
        resumed = invoke("run", "--resume", runs[0]["id"], "--json", "-w", ws_path)
        assert resumed.exit_code == 0, resumed.output
        assert json.loads(resumed.stdout)["status"] == "completed"
    assert_each_once(ws_path, 12)


def test_a_second_resume_of_a_run_being_executed_is_refused(tmp_path, make_suite):
    suite = make_suite(numeric_tasks(16))
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"), delay=0.1)) as server:
        assert invoke("endpoints", "add", "slow", "--base-url", server.base_url, "--model", "m").exit_code == 0
        first = start_cli("run", "--suite", suite, "--endpoint", "slow", "--concurrency", "1", "-w", ws_path)
        wait_for(lambda: count(ws_path) >= 2)
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)  # reads and closes its pipes
        assert first.returncode == 1
        run_id = json.loads(invoke("runs", "--json", "-w", ws_path).stdout)[0]["id"]

        resuming = start_cli("run", "--resume", run_id, "--concurrency", "1", "-w", ws_path)
        before = count(ws_path)
        wait_for(lambda: count(ws_path) > before)
        sent = len(server.requests)
        second = invoke("run", "--resume", run_id, "-w", ws_path)
        assert second.exit_code == 1
        assert f"is being executed by process {resuming.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.output
        assert len(server.requests) <= sent + 1  # only the first resume's request in flight, nothing from the second
        out, err = resuming.communicate(timeout=60)
        assert resuming.returncode == 0, err
    assert_each_once(ws_path, 16)


def test_resume_stays_on_the_server_the_run_started_on(tmp_path, make_suite):
    suite = make_suite(numeric_tasks(4))
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1", model="model-a"))) as first, \
            ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1", model="model-b"))) as second:
        assert invoke("endpoints", "add", "e", "--base-url", first.base_url, "--model", "a").exit_code == 0
        run_id = json.loads(invoke("run", "--suite", suite, "--samples", 2, "--endpoint", "e", "--json",
                                   "-w", ws_path).stdout)["run_id"]
        ws = open_workspace(ws_path)
        with ws.transaction():  # a crash half-way: the last three rollouts never came back
            for row in ws.query("SELECT id FROM rollouts ORDER BY created_at DESC, id LIMIT 3"):
                ws.conn.execute("DELETE FROM rollout_texts WHERE rollout_id = ?", (row["id"],))
                ws.conn.execute("DELETE FROM rollouts WHERE id = ?", (row["id"],))
            ws.conn.execute("UPDATE runs SET status = 'interrupted', n_done = 5, reward_sum = 5 WHERE id = ?",
                            (run_id,))
        # the profile is re-pointed at another server and model
        assert invoke("endpoints", "add", "e", "--base-url", second.base_url, "--model", "b").exit_code == 0
        before = len(first.requests)
        resumed = invoke("run", "--resume", run_id, "--json", "-w", ws_path)
        assert resumed.exit_code == 0, resumed.output
        assert not second.requests
        assert len(first.requests) == before + 3 and all(r["model"] == "a" for r in first.requests)
        assert first.base_url in resumed.stderr and second.base_url in resumed.stderr
    models = {r["model"] for r in ws.query("SELECT model FROM rollouts WHERE run_id = ?", (run_id,))}
    assert models == {"model-a"}


def test_execute_run_refuses_to_finish_a_run_on_another_server(workspace, make_suite):
    import asyncio

    import pytest

    from lessonlab.core.runs.runner import RunError, create_run, execute_run
    from lessonlab.core.settings import Endpoint
    from lessonlab.core.lessons.snapshots import current_snapshot
    from lessonlab.core.tasks.suites import load_suite

    suite = load_suite(str(make_suite(numeric_tasks(2))))
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"))) as first, \
            ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"))) as second:
        endpoint = Endpoint(name="e", base_url=first.base_url, model="m")
        run_id = create_run(workspace, suite, suite.select("train"), endpoint=endpoint,
                            snapshot=current_snapshot(workspace), samples=2, split="train", seed=1)
        asyncio.run(execute_run(workspace, run_id, endpoint))
        workspace.conn.execute("DELETE FROM rollout_texts WHERE rollout_id IN (SELECT id FROM rollouts LIMIT 1)")
        workspace.conn.execute("DELETE FROM rollouts WHERE id NOT IN (SELECT rollout_id FROM rollout_texts)")
        workspace.conn.execute("UPDATE runs SET n_done = 3, status = 'interrupted'")
        with pytest.raises(RunError, match="mix"):
            asyncio.run(execute_run(workspace, run_id, endpoint, base_url=second.base_url))
        assert not second.requests

"""Ctrl-C during `lessonlab run` finishes cleanly: finished rollouts kept, run marked interrupted, resumable."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.cli.root import cli
from lessonlab.core.storage.workspace import open_workspace


def test_ctrl_c_marks_run_interrupted_and_resume_finishes(tmp_path, make_suite):
    suite = make_suite(numeric_tasks(20))
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"), delay=0.2)) as server:
        CliRunner().invoke(cli, ["endpoints", "add", "slow", "--base-url", server.base_url, "--model", "m"])
        proc = subprocess.Popen(
            [sys.executable, "-m", "lessonlab", "run", "--suite", str(suite), "--endpoint", "slow",
             "--concurrency", "2", "--workspace", str(ws_path), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ws_path.exists():
                ws = open_workspace(ws_path)
                done = ws.one("SELECT COUNT(*) AS n FROM rollouts")["n"]
                ws.close()
                if done >= 4:
                    break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 1, err
        assert "resume" in err and "Traceback" not in err
        summary = json.loads(out)
        assert summary["status"] == "interrupted" and 4 <= summary["done"] < 20
        result = CliRunner().invoke(cli, ["run", "--resume", summary["run_id"], "--workspace", str(ws_path), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["done"] == 20
    ws = open_workspace(ws_path)
    assert ws.one("SELECT COUNT(*) AS n FROM rollouts")["n"] == 20
    assert ws.one("SELECT COUNT(DISTINCT task_id || ':' || sample_index) AS n FROM rollouts")["n"] == 20


def _verifier_workers_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"lessonlab.core.verifiers.worker" in cmdline and str(pid).encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_one_signal_stops_a_run_whose_verifier_hangs(tmp_path, make_suite, sig):
    tasks = [{"id": "evil", "prompt": "Say a lot of a's.", "verifier": {"kind": "regex", "pattern": "(a+)+$"}},
             *numeric_tasks(3)]
    suite = make_suite(tasks)
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(lambda req, n: Reply(body=completion("a" * 40 + "b"))) as server:
        CliRunner().invoke(cli, ["endpoints", "add", "e", "--base-url", server.base_url, "--model", "m"])
        proc = subprocess.Popen(
            [sys.executable, "-m", "lessonlab", "run", "--suite", str(suite), "--endpoint", "e",
             "--verify-timeout", "300", "--concurrency", "1", "--workspace", str(ws_path), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while not server.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            while not _verifier_workers_of(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the worker is now deep in the backtracking
            proc.send_signal(sig)  # once
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "resume" in err
    assert json.loads(out)["status"] == "interrupted"
    ws = open_workspace(ws_path)
    assert ws.one("SELECT status FROM runs")["status"] == "interrupted"
    assert not _verifier_workers_of(proc.pid)

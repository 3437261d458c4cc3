"""A workspace on a read-only file system (or without write permission) lists and shows; writes are one line.

Root writes files whatever their mode says, so as root the workspace's folder is bind-mounted read-only
in a private mount namespace (`unshare -m`): a real read-only file system, gone with the process.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.cli.root import cli
from lessonlab.core.storage.workspace import open_workspace

RUNNER = textwrap.dedent("""
    import json, sys
    from click.testing import CliRunner
    from lessonlab.cli.root import cli
    results = []
    for args in json.loads(sys.argv[1]):
        r = CliRunner().invoke(cli, args)
        results.append({"args": args, "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                        "exception": None if r.exception is None or isinstance(r.exception, SystemExit)
                        else repr(r.exception)})
    print(json.dumps(results))
""")


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


def run_read_only(folder, commands: list[list[str]]) -> list[dict]:
    """Run CLI commands in a process that sees `folder` read-only."""
    payload = json.dumps(commands)
    if _can_unshare():
        script = ('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && touch "$1/.probe" 2>/dev/null '
                  '&& echo "not read-only" >&2 && exit 3; exec "$2" -c "$3" "$4"')
        cmd = ["unshare", "-m", "sh", "-c", script, "sh", str(folder), sys.executable, RUNNER, payload]
    elif os.geteuid() != 0:
        for path in folder.iterdir():
            path.chmod(0o444)
        folder.chmod(0o555)
        cmd = [sys.executable, "-c", RUNNER, payload]
    else:
        pytest.skip("needs a private mount namespace (unshare -m) to make a folder read-only for root")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=os.getcwd())
    finally:
        if os.geteuid() != 0:
            folder.chmod(0o755)
            for path in folder.iterdir():
                path.chmod(0o644)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def digest(folder) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(params=["closed", "with-wal"])
def filled(request, tmp_path, make_suite):
    """A workspace alone in its folder (closed cleanly), or with the -wal and -shm files a live writer leaves."""
    folder = tmp_path / "ro"
    folder.mkdir()
    ws_path = tmp_path / "ws.db"
    suite = make_suite(numeric_tasks(2))
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"))) as server:
        invoke = CliRunner().invoke
        assert invoke(cli, ["endpoints", "add", "s", "--base-url", server.base_url, "--model", "m"]).exit_code == 0
        assert invoke(cli, ["run", "--suite", str(suite), "--endpoint", "s", "-w", str(ws_path)]).exit_code == 0
        assert invoke(cli, ["lessons", "add", "Show your work.", "-w", str(ws_path)]).exit_code == 0
    ws = open_workspace(ws_path)
    ids = {"run": ws.one("SELECT id FROM runs")["id"], "rollout": ws.one("SELECT id FROM rollouts")["id"],
           "lesson": ws.one("SELECT id FROM lessons")["id"], "suite": str(suite)}
    if request.param == "closed":
        ws.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(ws_path, folder / "ws.db")
    else:
        for name in ("ws.db", "ws.db-wal", "ws.db-shm"):
            shutil.copy(tmp_path / name, folder / name)
    ws.close()
    return folder, folder / "ws.db", ids


def test_reading_works_and_writing_is_one_clear_line(filled):
    folder, ws_path, ids = filled
    before = digest(folder)
    w = ["-w", str(ws_path)]
    reads = [["runs", *w], ["runs", "--json", *w], ["show", ids["run"], *w], ["show", ids["rollout"], *w],
             ["lessons", "list", *w], ["lessons", "show", ids["lesson"], *w], ["lessons", "history", ids["lesson"], *w],
             ["proposals", *w], ["reflections", *w], ["impact", *w], ["timeline", "--suite", "mini", *w],
             ["export", "prompt", *w]]
    writes = [["lessons", "add", "Check the units.", *w], ["lessons", "retire", ids["lesson"], *w],
              ["run", "--suite", ids["suite"], "--endpoint", "s", *w], ["run", "--resume", ids["run"], *w],
              ["reflect", "--run", ids["run"], "--endpoint", "s", *w]]
    results = run_read_only(folder, reads + writes)
    for result in results[:len(reads)]:
        assert result["code"] == 0 and result["exception"] is None, result
    assert "Show your work." in results[4]["stdout"] and ids["run"] in results[0]["stdout"]
    assert "Show your work." in results[-len(writes) - 1]["stdout"]  # the prompt with its lesson
    for result in results[len(reads):]:
        assert result["code"] in (1, 2) and result["exception"] is None, result
        assert len(result["stderr"].strip().splitlines()) == 1, result
    for result in (results[len(reads)], results[len(reads) + 1], results[len(reads) + 2], results[-1]):
        assert result["code"] == 1 and "is read-only" in result["stderr"], result
    assert digest(folder) == before


def test_a_lock_held_past_the_busy_timeout_is_one_line_for_a_run(tmp_path, make_suite, monkeypatch):
    import sqlite3

    from lessonlab.core.storage import workspace as workspace_module

    ws_path = tmp_path / "ws.db"
    open_workspace(ws_path).close()
    monkeypatch.setattr(workspace_module, "BUSY_TIMEOUT_SECONDS", 0.2)
    holder = sqlite3.connect(str(ws_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock for longer than we wait
    try:
        with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"))) as server:
            CliRunner().invoke(cli, ["endpoints", "add", "s", "--base-url", server.base_url, "--model", "m"])
            result = CliRunner().invoke(cli, ["run", "--suite", str(make_suite(numeric_tasks(2))), "--endpoint", "s",
                                              "-w", str(ws_path)])
            assert not server.requests
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1 and "is locked by another process" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.exception is None or \
        isinstance(result.exception, SystemExit)

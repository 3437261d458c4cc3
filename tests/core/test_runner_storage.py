"""Answered rollouts are never lost: any text is storable, a failing or locked write is retried, nothing dropped."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

from tests.core.test_runner_faults import FAST, right_answer, start_run, task_number
from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.core.runs import queries
from lessonlab.core.runs.runner import execute_run
from lessonlab.core.runs.writer import storable


def run(ws, run_id, endpoint, **kw):
    return asyncio.run(execute_run(ws, run_id, endpoint, retry=FAST, **kw))


def assert_complete_once(ws, run_id, n):
    rows = ws.query("SELECT task_id, sample_index, COUNT(*) AS n FROM rollouts WHERE run_id = ? GROUP BY 1, 2",
                    (run_id,))
    assert len(rows) == n and all(r["n"] == 1 for r in rows)
    assert ws.one("SELECT COUNT(*) AS n FROM rollout_texts")["n"] == n


def test_storable_replaces_what_cannot_be_encoded_and_counts_it():
    assert storable("plain") == ("plain", 0)
    assert storable("ünïcødé 🙂") == ("ünïcødé 🙂", 0)
    assert storable("a\ud800b\udfffc") == ("a\ufffdb\ufffdc", 2)
    assert storable("\ud83d\ude00") == ("😀", 0)  # a surrogate pair written as two halves is one character


def test_a_reply_with_a_lone_surrogate_is_stored_with_a_note_and_loses_nothing(workspace, make_suite):
    path = make_suite(numeric_tasks(6))

    def script(req, n):
        if task_number(req) == 2:
            # JSON allows "\\ud800"; Python decodes it to a lone surrogate that UTF-8 cannot encode.
            body = json.dumps(completion("Answer: 3 \\ud800 done", model="m\\udfff")).replace("\\\\u", "\\u")
            return Reply(body=body, headers={"Content-Type": "application/json"})
        return right_answer(req)

    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server)
        result = run(workspace, run_id, endpoint)
    assert result.status == "completed" and result.n_done == 6 and result.n_errors == 0
    assert_complete_once(workspace, run_id, 6)
    odd = workspace.one("SELECT r.id, r.note, r.reward, r.model FROM rollouts r JOIN tasks t ON t.id = r.task_id"
                        " WHERE t.name = 't2'")
    detail = queries.rollout_detail(workspace, odd["id"])
    assert detail["output"] == "Answer: 3 \ufffd done" and odd["reward"] == 1.0 and odd["model"] == "m\ufffd"
    assert odd["note"].startswith("1 character") and "replaced" in odd["note"]


def test_a_write_that_fails_is_retried_and_keeps_every_rollout(workspace, make_suite):
    path = make_suite(numeric_tasks(8))
    workspace.conn.execute("CREATE TABLE fail_writes (x)")
    workspace.conn.execute("INSERT INTO fail_writes VALUES (1)")
    workspace.conn.execute("CREATE TRIGGER fail_rollouts BEFORE INSERT ON rollouts WHEN EXISTS "
                           "(SELECT 1 FROM fail_writes) BEGIN SELECT RAISE(ABORT, 'injected write failure'); END")
    healer = threading.Timer(0.6, lambda: sqlite3.connect(str(workspace.path), isolation_level=None)
                             .execute("DELETE FROM fail_writes"))
    with ScriptedServer(lambda req, n: right_answer(req)) as server:
        run_id, endpoint = start_run(workspace, path, server, samples=2)
        healer.start()
        result = run(workspace, run_id, endpoint)
    healer.join()
    assert result.status == "completed" and result.n_done == 16 and result.mean_reward == 1.0
    assert_complete_once(workspace, run_id, 16)


def test_a_lock_held_past_the_busy_timeout_loses_no_answer(workspace, make_suite):
    # The busy timeout, shortened so that the test does not take half a minute: the lock outlasts it.
    workspace.conn.execute("PRAGMA busy_timeout = 200")
    path = make_suite(numeric_tasks(10))
    holder = sqlite3.connect(str(workspace.path), isolation_level=None, check_same_thread=False)
    locked = threading.Event()

    def script(req, n):
        if n == 3 and not locked.is_set():
            holder.execute("BEGIN IMMEDIATE")  # another process takes the write lock mid-run...
            locked.set()
            threading.Timer(1.5, lambda: holder.execute("COMMIT")).start()  # ...for longer than the busy timeout
        return right_answer(req)

    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server, samples=2, concurrency=2)
        started = time.monotonic()
        result = run(workspace, run_id, endpoint)
    assert locked.is_set() and time.monotonic() - started >= 1.0
    assert result.status == "completed" and result.n_done == 20 and result.n_errors == 0
    assert_complete_once(workspace, run_id, 20)
    holder.close()

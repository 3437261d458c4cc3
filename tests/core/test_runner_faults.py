"""Runs against a scripted OpenAI-compatible server: faults are retried or recorded, nothing is lost."""
from __future__ import annotations

import asyncio
import re
import threading

from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.core.runs import queries
from lessonlab.core.models.llm_client import RetryPolicy
from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import Endpoint
from lessonlab.core.lessons.snapshots import current_snapshot
from lessonlab.core.tasks.suites import load_suite

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


def task_number(request: dict) -> int:
    """The i in 'What is i + 1?' of the request's last user message."""
    text = request["messages"][-1]["content"]
    return int(re.search(r"What is (\d+) \+ 1", text).group(1))


def right_answer(request: dict) -> Reply:
    return Reply(body=completion(f"Answer: {task_number(request) + 1}"))


def start_run(ws, suite_path, server, *, samples=1, concurrency=4, timeout=5.0, split="train"):
    suite = load_suite(str(suite_path))
    endpoint = Endpoint(name="scripted", base_url=server.base_url, model="scripted-model", timeout=timeout)
    run_id = create_run(ws, suite, suite.select(split), endpoint=endpoint, snapshot=current_snapshot(ws),
                        samples=samples, split=split, concurrency=concurrency, seed=7)
    return run_id, endpoint


def run(ws, run_id, endpoint, **kw):
    return asyncio.run(execute_run(ws, run_id, endpoint, retry=FAST, **kw))


def test_all_correct_run_stores_rollouts_with_verdicts_and_usage(workspace, make_suite):
    path = make_suite(numeric_tasks(5))
    with ScriptedServer(lambda req, n: right_answer(req)) as server:
        run_id, endpoint = start_run(workspace, path, server, samples=2)
        result = run(workspace, run_id, endpoint)
    assert result.status == "completed"
    assert (result.n_done, result.n_errors, result.mean_reward) == (10, 0, 1.0)
    rows = queries.run_rollouts(workspace, run_id)
    assert len(rows) == 10
    assert all(r["reward"] == 1.0 and r["prompt_tokens"] == 11 and r["completion_tokens"] == 7 for r in rows)
    assert all(r["model"] == "scripted-model" for r in rows)
    detail = queries.rollout_detail(workspace, rows[0]["id"])
    assert detail["messages"][0]["role"] == "system"
    assert detail["system_prompt"] == detail["messages"][0]["content"]
    assert detail["output"].startswith("Answer:")
    # identical system prompts share one snapshot row
    assert workspace.one("SELECT COUNT(*) AS n FROM snapshots")["n"] == 1


def test_429_then_success_is_retried(workspace, make_suite):
    path = make_suite(numeric_tasks(3))
    seen: dict[int, int] = {}
    lock = threading.Lock()

    def script(req, n):
        i = task_number(req)
        with lock:
            seen[i] = seen.get(i, 0) + 1
            first = seen[i] == 1
        if first:
            return Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "0"})
        return right_answer(req)

    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server)
        result = run(workspace, run_id, endpoint)
    assert result.status == "completed" and result.n_errors == 0 and result.mean_reward == 1.0
    attempts = [r["attempts"] for r in workspace.query("SELECT attempts FROM rollouts WHERE run_id = ?", (run_id,))]
    assert attempts == [2, 2, 2]


def test_persistent_500_is_recorded_as_error_not_dropped(workspace, make_suite):
    path = make_suite(numeric_tasks(4))

    def script(req, n):
        if task_number(req) == 2:
            return Reply(status=500, body={"error": {"message": "boom"}})
        return right_answer(req)

    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server)
        result = run(workspace, run_id, endpoint)
    assert result.n_done == 4 and result.n_errors == 1
    assert result.status == "completed"
    bad = workspace.one("SELECT r.* FROM rollouts r JOIN tasks t ON t.id = r.task_id WHERE t.name = 't2'")
    assert bad["status"] == "error" and bad["reward"] is None
    assert "HTTP 500" in bad["error"] and "3 attempts" in bad["error"] and bad["attempts"] == 3
    # the mean is over scored rollouts only
    assert result.mean_reward == 1.0
    # the request messages are kept even for a failed rollout
    assert queries.rollout_detail(workspace, bad["id"])["messages"][-1]["content"].startswith("What is 2")


def test_hang_past_timeout_is_recorded(workspace, make_suite):
    path = make_suite(numeric_tasks(2))

    def script(req, n):
        if task_number(req) == 0:
            return Reply(body=completion("Answer: 1"), delay=3.0)
        return right_answer(req)

    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server, timeout=0.3)
        result = run(workspace, run_id, endpoint)
    assert result.n_done == 2 and result.n_errors == 1
    err = workspace.one("SELECT error FROM rollouts WHERE status = 'error'")["error"]
    assert "timed out" in err


def test_dropped_connection_then_success(workspace, make_suite):
    path = make_suite(numeric_tasks(3))
    drops = {"left": 2}
    lock = threading.Lock()

    def script(req, n):
        with lock:
            if drops["left"] > 0:
                drops["left"] -= 1
                return Reply(drop=True)
        return right_answer(req)

    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server, concurrency=1)
        result = run(workspace, run_id, endpoint)
    assert result.n_done == 3 and result.n_errors == 0 and result.mean_reward == 1.0


def test_always_dropped_connection_is_an_error(workspace, make_suite):
    path = make_suite(numeric_tasks(2))
    with ScriptedServer(lambda req, n: Reply(drop=True)) as server:
        run_id, endpoint = start_run(workspace, path, server)
        result = run(workspace, run_id, endpoint)
    assert result.n_done == 2 and result.n_errors == 2
    assert result.status == "failed"
    errors = [r["error"] for r in workspace.query("SELECT error FROM rollouts")]
    assert all("connection error" in e for e in errors)


def test_body_that_is_not_json_is_recorded(workspace, make_suite):
    path = make_suite(numeric_tasks(2))

    def script(req, n):
        if task_number(req) == 1:
            return Reply(body="<html>gateway exploded", headers={"Content-Type": "application/json"})
        return right_answer(req)

    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server)
        result = run(workspace, run_id, endpoint)
    assert result.n_done == 2 and result.n_errors == 1
    err = workspace.one("SELECT error FROM rollouts WHERE status = 'error'")["error"]
    assert "malformed" in err or "JSON" in err


def test_wrong_answers_get_informative_feedback(workspace, make_suite):
    path = make_suite(numeric_tasks(2))
    with ScriptedServer(lambda req, n: Reply(body=completion("I think it is\nAnswer: 42"))) as server:
        run_id, endpoint = start_run(workspace, path, server)
        result = run(workspace, run_id, endpoint)
    assert result.mean_reward == 0.0 and result.n_errors == 0
    feedback = [r["feedback"] for r in queries.run_rollouts(workspace, run_id)]
    assert all("42" in f for f in feedback)


def test_cancel_marks_interrupted_and_resume_completes_without_duplicates(workspace, make_suite):
    path = make_suite(numeric_tasks(6))
    cancel = threading.Event()
    count = {"n": 0}
    lock = threading.Lock()

    def script(req, n):
        with lock:
            count["n"] += 1
            if count["n"] == 3:
                cancel.set()  # the user presses Cancel while the third call is in flight
        return Reply(body=completion(f"Answer: {task_number(req) + 1}"), delay=0.05)

    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server, samples=2, concurrency=1)
        first = run(workspace, run_id, endpoint, cancel=cancel)
        assert first.status == "interrupted"
        assert 0 < first.n_done < 12
        row = workspace.one("SELECT status FROM runs WHERE id = ?", (run_id,))
        assert row["status"] == "interrupted"
        second = run(workspace, run_id, endpoint)
    assert second.status == "completed" and second.n_done == 12 and second.mean_reward == 1.0
    pairs = workspace.query("SELECT task_id, sample_index, COUNT(*) AS n FROM rollouts GROUP BY 1, 2")
    assert len(pairs) == 12 and all(p["n"] == 1 for p in pairs)


def test_same_seed_gives_same_rollout_seeds(workspace, make_suite):
    path = make_suite(numeric_tasks(2))
    with ScriptedServer(lambda req, n: right_answer(req)) as server:
        a, endpoint = start_run(workspace, path, server, samples=2)
        b, _ = start_run(workspace, path, server, samples=2)
        run(workspace, a, endpoint)
        run(workspace, b, endpoint)
        sent = sorted(r["seed"] for r in server.requests)
    seeds = lambda rid: sorted(r["seed"] for r in workspace.query("SELECT seed FROM rollouts WHERE run_id = ?", (rid,)))
    assert seeds(a) == seeds(b)
    assert len(set(seeds(a))) == 4
    assert sent == sorted(seeds(a) + seeds(b))

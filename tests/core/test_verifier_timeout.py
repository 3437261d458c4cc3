"""A verifier that never ends cannot hang a run: it is scored in a killable process with a time limit."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.core.test_runner_faults import FAST, start_run, task_number
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.core.runs import queries
from lessonlab.core.runs.runner import execute_run
from lessonlab.core.verifiers import VerifierPool, needs_isolation

# (a+)+$ against 40 a's and a b backtracks 2^40 times: for ever, as far as a run is concerned.
EVIL_PATTERN = "(a+)+$"
EVIL_REPLY = "a" * 40 + "b"


def tasks(verifier_for_first: dict, n: int = 6) -> list[dict]:
    return [{"id": f"t{i}", "prompt": f"What is {i} + 1?",
             "verifier": verifier_for_first if i == 0 else {"kind": "numeric", "answer": i + 1}} for i in range(n)]


def evil_or_right(req, n):
    i = task_number(req)
    return Reply(body=completion(EVIL_REPLY if i == 0 else f"Answer: {i + 1}"))


def run_with(workspace, make_suite, verifier, script=evil_or_right, **kw):
    path = make_suite(tasks(verifier))
    with ScriptedServer(script) as server:
        run_id, endpoint = start_run(workspace, path, server, samples=2, concurrency=4)
        started = time.monotonic()
        result = asyncio.run(execute_run(workspace, run_id, endpoint, retry=FAST, verify_timeout=1.0, **kw))
        elapsed = time.monotonic() - started
    rows = {(r["task"], r["sample_index"]): r for r in queries.run_rollouts(workspace, run_id)}
    return result, rows, elapsed


@pytest.mark.timeout(60, method="thread")
def test_a_catastrophic_regex_times_out_and_the_run_finishes(workspace, make_suite):
    result, rows, elapsed = run_with(workspace, make_suite, {"kind": "regex", "pattern": EVIL_PATTERN})
    assert result.status == "completed" and result.n_done == 12 and result.n_errors == 0
    assert all("verifier timed out after 1 s" in rows[("t0", k)]["feedback"] for k in (0, 1))
    assert all(rows[("t0", k)]["reward"] == 0.0 for k in (0, 1))
    assert all(rows[(f"t{i}", k)]["reward"] == 1.0 for i in range(1, 6) for k in (0, 1))
    assert elapsed < 15


@pytest.mark.timeout(60, method="thread")
def test_a_schema_pattern_that_backtracks_times_out(workspace, make_suite):
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": EVIL_PATTERN}}}

    def script(req, n):
        i = task_number(req)
        return Reply(body=completion(json.dumps({"name": EVIL_REPLY}) if i == 0 else f"Answer: {i + 1}"))

    result, rows, _ = run_with(workspace, make_suite, {"kind": "json_schema", "schema": schema}, script)
    assert result.status == "completed"
    assert "verifier timed out" in rows[("t0", 0)]["feedback"]


@pytest.mark.timeout(60, method="thread")
def test_user_code_that_never_returns_times_out(workspace, make_suite, tmp_path, monkeypatch):
    (tmp_path / "endless_verifier.py").write_text(
        "def check(output, task):\n    while True:\n        pass\n")
    monkeypatch.chdir(tmp_path)
    path = make_suite(tasks({"kind": "python", "function": "endless_verifier:check"}))
    with ScriptedServer(evil_or_right) as server:
        from lessonlab.core.runs.runner import create_run
        from lessonlab.core.settings import Endpoint
        from lessonlab.core.lessons.snapshots import current_snapshot
        from lessonlab.core.tasks.suites import load_suite

        suite = load_suite(str(path))
        endpoint = Endpoint(name="s", base_url=server.base_url, model="m")
        run_id = create_run(workspace, suite, suite.select("train"), endpoint=endpoint,
                            snapshot=current_snapshot(workspace), samples=1, split="train", seed=1,
                            trust_verifiers=True)
        result = asyncio.run(execute_run(workspace, run_id, endpoint, retry=FAST, verify_timeout=1.0))
    assert result.status == "completed" and result.n_done == 6
    feedback = {r["task"]: r["feedback"] for r in queries.run_rollouts(workspace, run_id)}
    assert "verifier timed out" in feedback["t0"] and feedback["t1"] == "correct: 2"


def test_only_verifiers_that_may_hang_leave_the_event_loop():
    assert needs_isolation({"kind": "regex", "pattern": "a"})
    assert needs_isolation({"kind": "json_schema", "schema": {"items": {"pattern": "a"}}})
    assert not needs_isolation({"kind": "json_schema", "schema": {"type": "object"}})
    assert not needs_isolation({"kind": "numeric", "answer": 1})
    assert not needs_isolation({"kind": "python", "function": "m:f"}, trust_python=False)
    assert needs_isolation({"kind": "python", "function": "m:f"}, trust_python=True)


def test_the_pool_scores_the_same_as_in_place_and_reuses_its_worker():
    async def go():
        pool = VerifierPool(timeout=5)
        try:
            first = await pool.verify({"kind": "regex", "pattern": "Answer: \\d+"}, "Answer: 42")
            second = await pool.verify({"kind": "regex", "pattern": "x{3}", "flags": "i"}, "aXXXb")
            third = await pool.verify({"kind": "regex", "pattern": "zzz"}, "no")
            return first, second, third, len(pool._all)
        finally:
            await pool.close()

    first, second, third, workers = asyncio.run(go())
    assert first.reward == 1.0 and "42" in first.feedback
    assert second.reward == 1.0 and third.reward == 0.0
    assert workers == 1

"""Issue 10: schema-constrained reflection (three modes, fallback remembered per endpoint), replies in any
shape, evidence checked against the context — against a scripted server."""
from __future__ import annotations

import asyncio
import json

import pytest

from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.core import lessons as L
from lessonlab.core import reflection as R
from lessonlab.core.llm_client import RetryPolicy
from lessonlab.core.runner import create_run, execute_run
from lessonlab.core.settings import Endpoint
from lessonlab.core.snapshots import current_snapshot
from lessonlab.core.suites import load_suite

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)

TASKS = [
    {"id": "r-strawberry", "prompt": 'How many "r" in the word "strawberry"? End with "Answer: <n>".',
     "verifier": {"kind": "numeric", "answer": 3}, "split": "train"},
    {"id": "b-blueberry", "prompt": 'How many "b" in the word "blueberry"? End with "Answer: <n>".',
     "verifier": {"kind": "numeric", "answer": 2}, "split": "train"},
    {"id": "p-pineapple", "prompt": 'How many "p" in the word "pineapple"? End with "Answer: <n>".',
     "verifier": {"kind": "numeric", "answer": 3}, "split": "heldout"},
]
GOOD = json.dumps({"analysis": "blueberry was miscounted",
                   "operations": [{"op": "add", "text": "Spell the word out, then count.", "rationale": "r",
                                   "evidence": []}]})


@pytest.fixture(scope="module")
def server():
    """One scripted server for the module; tests set .script and read .requests."""
    with ScriptedServer(lambda req, n: Reply(status=500)) as s:
        yield s


def use(server, script):
    server.script = script
    server.requests.clear()
    return server


@pytest.fixture
def run_id(workspace, make_suite, server):
    """A run of 3 tasks × 2 samples (one task held out); every reply says 'Answer: 3' (blueberry fails)."""
    suite = load_suite(str(make_suite(TASKS, name="letters")))
    use(server, lambda req, n: Reply(body=completion("I counted. Answer: 3")))
    endpoint = Endpoint(name="s", base_url=server.base_url, model="m")
    rid = create_run(workspace, suite, suite.select("all"), endpoint=endpoint,
                     snapshot=current_snapshot(workspace, None, suite.name), samples=2, split="all", seed=1)
    asyncio.run(execute_run(workspace, rid, endpoint))
    return rid


def reflector(server, name="judge-ep") -> Endpoint:
    return Endpoint(name=name, base_url=server.base_url, model="judge")


# --- replies in any shape -----------------------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    Reply(body=completion(GOOD)),                                                   # plain chat.completion JSON
    Reply(body="".join(f"data: {json.dumps(c)}\n\n" for c in [                      # SSE with the wrong content type
        {"model": "m", "choices": [{"index": 0, "delta": {"content": GOOD[:30]}}]},
        {"model": "m", "choices": [{"index": 0, "delta": {"content": GOOD[30:]}, "finish_reason": "stop"}]},
    ]) + "data: [DONE]\n\n", headers={"Content-Type": "text/plain"}),
])
def test_non_streamed_reply_to_a_streamed_request_is_kept(workspace, run_id, server, reply):
    use(server, lambda req, n: reply)
    seen: list[str] = []
    result = R.reflect(workspace, reflector(server), run_id=run_id, retry=FAST, on_chunk=seen.append)
    assert server.requests[0]["stream"] is True
    assert result.status == "ok", result.error
    assert result.analysis == "blueberry was miscounted" and result.n_pending == 1
    assert "".join(seen) == GOOD
    assert workspace.one("SELECT raw_reply FROM reflections")["raw_reply"] == GOOD

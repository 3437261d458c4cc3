"""Agent loops through the runner: native tool calls, the Hermes fallback, turn limits, failing tools, resume."""
from __future__ import annotations

import asyncio
import json
import re
import threading

import pytest

from tests.helpers.agent_tools import broken_toolboxes, spelling_suite
from tests.helpers.scripted_server import Reply, ScriptedServer, completion, rejects_tools, tool_call_completion
from lessonlab.core.lessons.snapshots import current_snapshot
from lessonlab.core.models.llm_client import RetryPolicy
from lessonlab.core.runs import agent_loop
from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.runs.trajectory import read_trajectory
from lessonlab.core.settings import Endpoint

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


def word_of(request: dict) -> str:
    first_user = next(m for m in request["messages"] if m["role"] == "user")
    return re.search(r'are in "(\w+)"', first_user["content"]).group(1)


def native_speller(request: dict, n: int) -> Reply:
    """Calls spell once, then answers by counting the letters the tool returned."""
    last = request["messages"][-1]
    if last["role"] != "tool":
        return Reply(body=tool_call_completion([("spell", json.dumps({"word": word_of(request)}))]))
    return Reply(body=completion(f"Answer: {last['content'].split(chr(10)).count('r')}"))


def hermes_speller(request: dict, n: int) -> Reply:
    last = request["messages"][-1]
    if "<tool_response>" not in last["content"]:
        call = json.dumps({"name": "spell", "arguments": {"word": word_of(request)}})
        return Reply(body=completion(f"Let me spell it.\n<tool_call>\n{call}\n</tool_call>"))
    letters = json.loads(re.search(r"<tool_response>\n(.*)\n</tool_response>", last["content"]).group(1))["content"]
    return Reply(body=completion(f"Answer: {letters.split(chr(10)).count('r')}"))


def start(ws, server, suite, *, concurrency=1, samples=1):
    endpoint = Endpoint(name="scripted", base_url=server.base_url, model="scripted-model", timeout=5)
    run_id = create_run(ws, suite, list(suite.tasks), endpoint=endpoint, snapshot=current_snapshot(ws),
                        samples=samples, split="train", concurrency=concurrency, seed=3)
    return run_id, endpoint


def run(ws, run_id, endpoint, **kw):
    return asyncio.run(execute_run(ws, run_id, endpoint, retry=FAST, **kw))


def stored(ws, run_id):
    return ws.query("SELECT r.*, t.messages_json, t.output, t.steps_json FROM rollouts r"
                    " JOIN rollout_texts t ON t.rollout_id = r.id WHERE r.run_id = ? ORDER BY r.task_id", (run_id,))


def test_native_tool_calls_are_run_and_every_step_is_stored(workspace):
    with ScriptedServer(native_speller) as server:
        run_id, endpoint = start(workspace, server, spelling_suite(3), concurrency=2)
        result = run(workspace, run_id, endpoint)
        requests = list(server.requests)
    assert (result.status, result.n_done, result.n_errors, result.mean_reward) == ("completed", 3, 0, 1.0)
    assert all(r["tools"][0]["function"]["name"] == "spell" for r in requests)
    for row in stored(workspace, run_id):
        assert (row["n_steps"], row["tool_mode"]) == (2, "native")
        assert (row["prompt_tokens"], row["completion_tokens"]) == (22, 14)     # summed over both calls
        prompt, steps = read_trajectory(json.loads(row["messages_json"]), row["output"], row["steps_json"])
        assert [s.final for s in steps] == [False, True]
        assert steps[0].tool_calls[0].name == "spell"
        word = re.search(r'are in "(\w+)"', prompt[-1]["content"]).group(1)
        assert steps[0].results[0].content == "\n".join(word)
        assert steps[0].figures.finish_reason == "tool_calls" and steps[1].figures.prompt_tokens == 11
        assert steps[0].figures.latency_ms > 0
        assert row["latency_ms"] == pytest.approx(sum(s.figures.latency_ms for s in steps), abs=1)
    assert workspace.one("SELECT mode FROM tool_modes")["mode"] == "native"


def test_an_endpoint_that_rejects_tools_falls_back_to_hermes_and_the_mode_is_remembered(workspace):
    with ScriptedServer(rejects_tools(hermes_speller)) as server:
        run_id, endpoint = start(workspace, server, spelling_suite(3))
        result = run(workspace, run_id, endpoint)
        first_requests = list(server.requests)
        second_id, _ = start(workspace, server, spelling_suite(2))
        run(workspace, second_id, endpoint)
        second_requests = server.requests[len(first_requests):]
    assert (result.status, result.mean_reward) == ("completed", 1.0)
    assert sum("tools" in r for r in first_requests) == 1          # refused once, then Hermes for every call
    assert "<tools>" in first_requests[1]["messages"][0]["content"]
    assert not any("tools" in r for r in second_requests)            # the next run starts in the remembered mode
    assert {r["tool_mode"] for r in stored(workspace, run_id)} == {"hermes"}
    mode = workspace.one("SELECT mode, note FROM tool_modes")
    assert mode["mode"] == "hermes" and "HTTP 400" in mode["note"]
    row = stored(workspace, run_id)[0]
    _, steps = read_trajectory(json.loads(row["messages_json"]), row["output"], row["steps_json"])
    assert steps[0].tool_calls[0].name == "spell" and "<tool_response>" in steps[0].results[0].content
    # what was sent never carries tool_calls in Hermes mode
    assert not any("tool_calls" in m for r in first_requests[1:] for m in r["messages"])


def test_a_model_that_never_stops_calling_tools_is_stopped_at_max_turns(workspace):
    def forever(request, n):
        return Reply(body=tool_call_completion([("spell", '{"word": "rr"}')], content="still looking"))

    with ScriptedServer(forever) as server:
        run_id, endpoint = start(workspace, server, spelling_suite(2, max_turns=3))
        result = run(workspace, run_id, endpoint)
        n_requests = len(server.requests)
    assert (result.status, result.n_done, result.n_errors) == ("completed", 2, 0)
    assert n_requests == 6
    for row in stored(workspace, run_id):
        assert row["n_steps"] == 3 and row["output"] == "still looking" and row["reward"] == 0.0
        assert "stopped at the limit of 3 model calls" in row["feedback"]
        figures = json.loads(row["steps_json"])
        assert figures[-1]["unanswered_calls"][0]["function"]["name"] == "spell"
        _, steps = read_trajectory(json.loads(row["messages_json"]), row["output"], row["steps_json"])
        assert len(steps) == 3 and steps[-1].final and steps[-1].tool_calls[0].name == "spell"


def test_failing_unknown_and_badly_called_tools_become_results_the_model_reads(workspace, monkeypatch):
    monkeypatch.setattr(agent_loop, "TOOL_CALL_TIMEOUT", 0.3)

    def script(request, n):
        if request["messages"][-1]["role"] != "tool":
            return Reply(body=tool_call_completion([
                ("boom", "{}"), ("hang", "{}"), ("nosuch", "{}"), ("spell", '{"word": '), ("spell", "[1]"),
                ("spell", json.dumps({"word": "r" * 300})), ("spell", '{"word": "ok"}')]))
        return Reply(body=completion("Answer: 3"))

    with ScriptedServer(script) as server:
        run_id, endpoint = start(workspace, server, spelling_suite(1))
        result = run(workspace, run_id, endpoint, toolboxes=broken_toolboxes)
        answered = server.requests[1]["messages"]
    assert (result.status, result.mean_reward) == ("completed", 1.0)
    results = [m["content"] for m in answered if m["role"] == "tool"]
    assert len(results) == 7 and all(r.startswith("error: ") for r in results[:6])
    assert results[0] == "error: tool boom failed: RuntimeError: the tool broke"
    assert results[1] == "error: tool hang did not answer within 0.3 s"
    assert "nosuch" in results[2] and "spell" in results[2]          # names the tools there are
    assert "JSON" in results[3] and "object" in results[4]
    assert "at most 200 characters" in results[5]
    assert results[6] == "o\nk"                                         # the loop went on after every error


def test_a_tool_result_over_64_kb_is_cut_and_the_cut_recorded(workspace):
    class BigToolbox:
        schemas = [{"type": "function", "function": {"name": "big", "parameters": {"type": "object"}}}]
        initial_state = None

        async def call(self, pool, name, arguments, state):
            return type("Outcome", (), {"content": "x" * 100_000, "error": False, "state": None})()

    def script(request, n):
        if request["messages"][-1]["role"] != "tool":
            return Reply(body=tool_call_completion([("big", "{}")]))
        return Reply(body=completion("Answer: 3"))

    with ScriptedServer(script) as server:
        run_id, endpoint = start(workspace, server, spelling_suite(1))
        run(workspace, run_id, endpoint, toolboxes=lambda job, trust: BigToolbox())
        sent = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"][0]
    assert len(sent.encode()) < 70_000 and "cut: 100,000 bytes" in sent
    row = stored(workspace, run_id)[0]
    assert json.loads(row["steps_json"])[0]["cut"] == {"call_1": 100_000}
    _, steps = read_trajectory(json.loads(row["messages_json"]), row["output"], row["steps_json"])
    assert steps[0].results[0].cut_bytes == 100_000


def test_resume_in_the_middle_of_multi_step_rollouts_duplicates_nothing(workspace):
    cancel = threading.Event()

    def slow(request, n):
        reply = native_speller(request, n)
        reply.delay = 0.05
        return reply

    def stop_after_first(progress):
        if progress.done >= 1:
            cancel.set()

    with ScriptedServer(slow) as server:
        run_id, endpoint = start(workspace, server, spelling_suite(8), concurrency=3, samples=2)
        first = run(workspace, run_id, endpoint, cancel=cancel, progress=stop_after_first)
        done_before = workspace.one("SELECT COUNT(*) AS n FROM rollouts WHERE run_id = ?", (run_id,))["n"]
        second = run(workspace, run_id, endpoint)
    assert first.status == "interrupted" and 1 <= done_before < 16
    assert (second.status, second.n_done, second.n_errors) == ("completed", 16, 0)
    rows = stored(workspace, run_id)
    assert len(rows) == 16 == len({(r["task_id"], r["sample_index"]) for r in rows})
    assert all(r["n_steps"] == 2 and len(json.loads(r["steps_json"])) == 2 for r in rows)
    assert all([m["role"] for m in json.loads(r["messages_json"])][-2:] == ["assistant", "tool"] for r in rows)


def test_a_task_without_tools_is_one_call_with_nothing_new_stored(workspace, make_suite):
    from lessonlab.core.tasks.suites import load_suite

    suite = load_suite(str(make_suite([{"id": "a", "prompt": "Say 3.", "verifier": {"kind": "numeric", "answer": 3}}])))
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 3"))) as server:
        run_id, endpoint = start(workspace, server, suite)
        run(workspace, run_id, endpoint)
        assert "tools" not in server.requests[0]
    row = stored(workspace, run_id)[0]
    assert (row["n_steps"], row["tool_mode"], row["steps_json"], row["reward"]) == (None, None, None, 1.0)


@pytest.mark.model
def test_an_agent_suite_on_the_embedded_model_stores_every_rollout_with_its_steps(workspace, local_model_url,
                                                                                  local_endpoint):
    suite = spelling_suite(3, max_turns=3)
    run_id = create_run(workspace, suite, list(suite.tasks), endpoint=local_endpoint, snapshot=current_snapshot(workspace),
                        samples=1, split="train", concurrency=2, seed=5)
    result = asyncio.run(execute_run(workspace, run_id, local_endpoint, base_url=local_model_url, retry=FAST))
    assert (result.status, result.n_done, result.n_errors) == ("completed", 3, 0)
    rows = stored(workspace, run_id)
    assert len(rows) == 3
    for row in rows:
        assert row["tool_mode"] == "hermes"          # the embedded model starts with the text protocol
        assert 1 <= row["n_steps"] <= 3 and row["output"] is not None and row["reward"] is not None
        _, steps = read_trajectory(json.loads(row["messages_json"]), row["output"], row["steps_json"])
        assert len(steps) == row["n_steps"] and steps[-1].final
        assert all(s.figures.completion_tokens for s in steps) or row["n_steps"] == 1
        assert "<tools>" in json.loads(row["messages_json"])[0]["content"]


def test_the_tools_final_state_reaches_the_verifier(workspace):
    from lessonlab.core.tasks.suites import load_suite

    shop = load_suite("shop")
    task = shop.tasks[0]
    wanted = task.verifier["expect"]["shop.cart"]
    item, qty = next(iter(wanted.items()))
    plan = [("add_to_cart", json.dumps({"item": item, "qty": qty})), ("checkout", "{}")]

    def shopper(request, n):
        done = sum(m["role"] == "tool" for m in request["messages"])
        if done < len(plan):
            return Reply(body=tool_call_completion([plan[done]]))
        return Reply(body=completion("Bought it."))

    with ScriptedServer(shopper) as server:
        endpoint = Endpoint(name="scripted", base_url=server.base_url, model="scripted-model", timeout=5)
        run_id = create_run(workspace, shop, [task], endpoint=endpoint, snapshot=current_snapshot(workspace),
                            samples=1, split="train", seed=3)
        result = run(workspace, run_id, endpoint)
    row = stored(workspace, run_id)[0]
    assert (result.mean_reward, row["n_steps"]) == (1.0, 3)


def test_a_wrong_final_state_scores_zero(workspace):
    from lessonlab.core.tasks.suites import load_suite

    shop = load_suite("shop")
    with ScriptedServer(lambda request, n: Reply(body=completion("I bought nothing."))) as server:
        endpoint = Endpoint(name="scripted", base_url=server.base_url, model="scripted-model", timeout=5)
        run_id = create_run(workspace, shop, [shop.tasks[0]], endpoint=endpoint,
                            snapshot=current_snapshot(workspace), samples=1, split="train", seed=3)
        result = run(workspace, run_id, endpoint)
    assert result.mean_reward == 0.0 and stored(workspace, run_id)[0]["n_steps"] == 1


def test_step_figures_are_stored_with_every_field():
    import dataclasses

    from lessonlab.core.runs.trajectory import StepFigures, figures_json

    figures = [StepFigures(1.5, 20, 3, "tool_calls", cut={"call_1": 70_000}),
               StepFigures(2.0, 30, 4, "stop", unanswered_calls=[{"id": "call_2", "type": "function"}])]
    assert json.loads(figures_json(figures)) == [dataclasses.asdict(f) for f in figures]


def test_a_model_call_that_fails_mid_loop_keeps_the_steps_before_it_with_the_error(workspace):
    def fail_second(request, n):
        if request["messages"][-1]["role"] != "tool":
            return Reply(body=tool_call_completion([("spell", '{"word": "rr"}')]))
        return Reply(status=500, body={"error": {"message": "down"}})

    with ScriptedServer(fail_second) as server:
        run_id, endpoint = start(workspace, server, spelling_suite(1))
        result = run(workspace, run_id, endpoint)
    assert (result.status, result.n_errors) == ("failed", 1)
    row = stored(workspace, run_id)[0]
    assert row["status"] == "error" and "HTTP 500" in row["error"] and row["output"] is None
    assert (row["n_steps"], row["tool_mode"], row["attempts"]) == (1, "native", 1 + FAST.max_attempts)
    _, steps = read_trajectory(json.loads(row["messages_json"]), row["output"], row["steps_json"])
    assert len(steps) == 1 and steps[0].results[0].content == "r\nr" and not steps[0].final

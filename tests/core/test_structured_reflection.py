"""Issue 10: schema-constrained reflection (three modes, fallback remembered per endpoint), replies in any
shape, evidence checked against the context — against a scripted server."""
from __future__ import annotations

import asyncio
import json

import pytest

from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.core import lessons as L
from lessonlab.core import reflection as R
from lessonlab.core.models.llm_client import RetryPolicy
from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import Endpoint
from lessonlab.core.lessons.snapshots import current_snapshot
from lessonlab.core.tasks.suites import load_suite

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


# --- the schema in each mode, fallback, memory ---------------------------------------------------------


def _walk_objects(schema):
    """Every object schema inside `schema`."""
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from _walk_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _walk_objects(value)


def _included(workspace) -> list[str]:
    return json.loads(workspace.one("SELECT context_json FROM reflections ORDER BY created_at DESC LIMIT 1")
                      ["context_json"])["included_rollouts"]


@pytest.mark.parametrize("mode", ["json_schema", "json_object_schema", "text"])
def test_request_carries_the_schema_in_each_mode(workspace, run_id, server, mode):
    lesson = L.add_lesson(workspace, "Count each letter.").lesson_ids[0]
    endpoint = reflector(server, f"ep-{mode}")
    R.remember_mode(workspace, endpoint, mode)
    use(server, lambda req, n: Reply(body=completion(GOOD)))
    result = R.reflect(workspace, endpoint, run_id=run_id, retry=FAST)
    assert result.status == "ok" and result.response_mode == mode
    assert workspace.one("SELECT response_mode FROM reflections WHERE id = ?",
                         (result.reflection_id,))["response_mode"] == mode
    (request,) = server.requests
    stored = json.loads(workspace.one("SELECT request_json FROM reflections")["request_json"])
    if mode == "text":
        assert "response_format" not in request and "response_format" not in stored
        assert '"operations"' in request["messages"][0]["content"]  # the prompt still describes the shape
        return
    assert stored["response_format"] == request["response_format"]
    if mode == "json_schema":
        assert request["response_format"]["type"] == "json_schema"
        spec = request["response_format"]["json_schema"]
        assert spec["name"] == "lesson_operations" and spec["strict"] is True
        schema = spec["schema"]
        # strict mode: every object lists all its properties as required and allows nothing else
        for obj in _walk_objects(schema):
            assert obj["additionalProperties"] is False and sorted(obj["required"]) == sorted(obj["properties"])
        assert "maxLength" not in json.dumps(schema)
    else:
        assert request["response_format"]["type"] == "json_object"
        schema = request["response_format"]["schema"]
        assert schema["properties"]["analysis"]["maxLength"] > 0  # a small model cannot ramble forever
    ops = schema["properties"]["operations"]
    assert ops["minItems"] == 1  # blueberry scored 0, so something must be proposed
    shapes = {shape["properties"]["op"]["enum"][0]: shape for shape in ops["items"]["anyOf"]}
    assert sorted(shapes) == ["add", "edit", "retire"]  # one lesson: nothing to merge
    assert shapes["edit"]["properties"]["lesson"]["enum"] == [lesson]
    assert shapes["add"]["properties"]["evidence"]["items"]["enum"] == _included(workspace)


@pytest.mark.parametrize("refusal", [
    Reply(status=400, body={"error": {"message": "response_format json_schema is not supported"}}),
    Reply(status=422, body={"detail": [{"loc": ["body", "response_format"], "msg": "bad type"}]}),
    # llama-cpp-python's server reports a request validation error as HTTP 500
    Reply(status=500, body={"error": {"message": "1 validation error: ('body', 'response_format', 'type') "
                                                 "Input should be 'text' or 'json_object'"}}),
])
def test_refused_mode_falls_back_and_is_remembered(workspace, run_id, server, refusal):
    def script(req, n):
        if req.get("response_format", {}).get("type") == "json_schema":
            return refusal
        return Reply(body=completion(GOOD))

    endpoint = reflector(server)
    use(server, script)
    first = R.reflect(workspace, endpoint, run_id=run_id, retry=FAST)
    assert first.status == "ok" and first.response_mode == "json_object_schema"
    types = [r["response_format"]["type"] for r in server.requests]
    assert types[0] == "json_schema" and types[-1] == "json_object"
    assert R.remembered_mode(workspace, endpoint) == "json_object_schema"
    note = workspace.one("SELECT note FROM reflection_modes")["note"]
    assert "refused response mode json_schema" in note
    # the second reflection starts with what worked
    use(server, script)
    second = R.reflect(workspace, endpoint, run_id=run_id, retry=FAST)
    assert second.response_mode == "json_object_schema"
    assert [r["response_format"]["type"] for r in server.requests] == ["json_object"]
    # another endpoint (or another model on it) is remembered apart
    assert R.remembered_mode(workspace, Endpoint(name="judge-ep", base_url=server.base_url, model="other")) is None


def test_a_server_error_that_is_not_a_refusal_does_not_change_mode(workspace, run_id, server):
    use(server, lambda req, n: Reply(status=500, body={"error": {"message": "out of memory"}}))
    endpoint = reflector(server)
    result = R.reflect(workspace, endpoint, run_id=run_id, retry=FAST)
    assert result.status == "failed" and "HTTP 500" in result.error
    assert {r["response_format"]["type"] for r in server.requests} == {"json_schema"}
    assert R.remembered_mode(workspace, endpoint) is None


def test_every_mode_refused_ends_in_plain_text(workspace, run_id, server):
    def script(req, n):
        if "response_format" in req:
            return Reply(status=400, body={"error": {"message": "unsupported"}})
        return Reply(body=completion("Here you go:\n```json\n" + GOOD + "\n```"))

    endpoint = reflector(server)
    use(server, script)
    result = R.reflect(workspace, endpoint, run_id=run_id, retry=FAST)
    assert result.status == "ok" and result.response_mode == "text" and result.n_pending == 1
    assert len(server.requests) == 3 and R.remembered_mode(workspace, endpoint) == "text"


def test_embedded_model_starts_with_the_grammar_mode(workspace, run_id, server):
    from lessonlab.core.settings import local_endpoint

    use(server, lambda req, n: Reply(body=completion(GOOD)))
    result = R.reflect(workspace, local_endpoint(), base_url=server.base_url, run_id=run_id, retry=FAST)
    assert result.response_mode == "json_object_schema"
    assert server.requests[0]["response_format"]["type"] == "json_object"


def test_no_operation_is_required_when_every_rollout_succeeded(workspace, make_suite, server):
    suite = load_suite(str(make_suite(TASKS[:1], name="easy")))
    use(server, lambda req, n: Reply(body=completion("Answer: 3")))
    endpoint = Endpoint(name="s", base_url=server.base_url, model="m")
    rid = create_run(workspace, suite, suite.select(), endpoint=endpoint,
                     snapshot=current_snapshot(workspace, None, suite.name), samples=2, split="train")
    asyncio.run(execute_run(workspace, rid, endpoint))
    use(server, lambda req, n: Reply(body=completion('{"analysis": "all right", "operations": []}')))
    result = R.reflect(workspace, reflector(server), run_id=rid, retry=FAST)
    assert result.status == "ok" and result.n_pending == 0
    ops = server.requests[0]["response_format"]["json_schema"]["schema"]["properties"]["operations"]
    assert "minItems" not in ops
    assert ops["items"]["properties"]["op"]["enum"] == ["add"]  # no lessons yet: only add is possible


def test_distill_asks_for_merge_edit_retire_without_evidence(workspace, server):
    a = L.add_lesson(workspace, "Count letters one at a time.").lesson_ids[0]
    b = L.add_lesson(workspace, "Write each letter down and count.").lesson_ids[0]
    use(server, lambda req, n: Reply(body=completion(json.dumps(
        {"analysis": "overlap", "operations": [{"op": "merge", "lessons": [a, b], "text": "Count letters one by one.",
                                                "rationale": "same advice"}]}))))
    result = R.distill(workspace, reflector(server), budget=5, retry=FAST)
    assert result.status == "ok" and result.n_pending == 1 and result.response_mode == "json_schema"
    schema = server.requests[0]["response_format"]["json_schema"]["schema"]
    shapes = schema["properties"]["operations"]["items"]["anyOf"]
    assert sorted(s["properties"]["op"]["enum"][0] for s in shapes) == ["edit", "merge", "retire"]
    assert all("evidence" not in s["properties"] for s in shapes)
    merge = next(s for s in shapes if s["properties"]["op"]["enum"] == ["merge"])
    assert merge["properties"]["lessons"]["minItems"] == 2 and sorted(merge["properties"]["lessons"]["items"]["enum"]) == sorted([a, b])


def test_grammar_schema_converts_for_llama_cpp():
    """llama-cpp-python silently drops to a plain JSON grammar when a schema fails to convert; ours must not."""
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    from lessonlab.core.reflection.schema import operations_schema

    for ops, lessons in [(R.OPS, ["les_a", "les_b"]), (R.OPS, []), (("merge", "edit", "retire"), ["les_a"])]:
        schema = operations_schema(ops, lessons, ["ro_1", "ro_2"], require_operation=True, grammar=True)
        gbnf = grammar.json_schema_to_gbnf(json.dumps(schema))
        assert "analysis" in gbnf and ("les_a" in gbnf) == bool(lessons)


def test_raw_newline_inside_a_string_is_read(workspace, run_id, server):
    reply = '{"analysis": "line one\nline two", "operations": [{"op": "add", "text": "Spell it\nout.", "evidence": []}]}'
    use(server, lambda req, n: Reply(body=completion(reply)))
    result = R.reflect(workspace, reflector(server), run_id=run_id, retry=FAST)
    assert result.status == "ok" and result.analysis == "line one\nline two" and result.n_pending == 1


# --- evidence ---------------------------------------------------------------------------------------------


def test_evidence_ids_not_in_the_context_are_dropped_with_a_note(workspace, run_id, server, tmp_path):
    train = [r["id"] for r in workspace.query(
        "SELECT r.id FROM rollouts r JOIN tasks t ON t.id = r.task_id WHERE t.split = 'train' ORDER BY r.id")]
    heldout = workspace.one("SELECT r.id FROM rollouts r JOIN tasks t ON t.id = r.task_id WHERE t.split = 'heldout'")["id"]
    reply = {"analysis": "a", "operations": [
        {"op": "add", "text": "Spell the word out, then count.", "evidence": [train[0], "ro_made_up", heldout, train[0]]},
        {"op": "add", "text": "Check the count twice.", "evidence": [train[1]]},
    ]}
    use(server, lambda req, n: Reply(body=completion(json.dumps(reply))))
    result = R.reflect(workspace, reflector(server), run_id=run_id, retry=FAST)
    assert (result.n_pending, result.n_invalid) == (2, 0)
    first, second = L.list_proposals(workspace)
    assert first["evidence"] == [train[0]]                 # only what was in the context, once
    assert "ro_made_up" in first["note"] and heldout in first["note"] and train[0] not in first["note"]
    assert second["evidence"] == [train[1]] and second["note"] is None

    from click.testing import CliRunner
    from lessonlab.cli.root import cli

    runner = CliRunner()
    ws_path = str(workspace.path)
    out = runner.invoke(cli, ["proposals", "-w", ws_path]).output
    assert "note: dropped evidence id(s)" in out and "ro_made_up" in out
    out = runner.invoke(cli, ["reflections", result.reflection_id, "-w", ws_path]).output
    assert "ro_made_up" in out and "response mode json_schema" in out
    assert "json_schema" in runner.invoke(cli, ["reflections", "-w", ws_path]).output
    assert json.loads(runner.invoke(cli, ["proposals", "-w", ws_path, "--json"]).output)[0]["note"] == first["note"]


# --- the real embedded model ---------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_reflection_yields_a_valid_proposal(workspace, local_model_url, local_endpoint):
    suite = load_suite("game24")  # SmolLM2-135M does not solve 24 puzzles, so the context holds failures
    run_id = create_run(workspace, suite, suite.select("train", 2), endpoint=local_endpoint,
                        snapshot=current_snapshot(workspace, None, suite.name), samples=1, split="train", seed=5)
    run = asyncio.run(execute_run(workspace, run_id, local_endpoint, base_url=local_model_url))
    assert run.n_done == 2 and run.mean_reward < 1
    result = R.reflect(workspace, local_endpoint, base_url=local_model_url, run_id=run_id, context_tokens=900)
    assert result.status == "ok", result.error
    assert result.response_mode == "json_object_schema"  # llama-cpp-python's grammar mode
    assert result.n_pending >= 1
    included = set(_included(workspace))
    for prop in L.list_proposals(workspace):
        assert prop["text"] and set(prop["evidence"]) <= included
    assert L.active_lessons(workspace) == []  # nothing applied without a person

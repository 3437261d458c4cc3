"""Reflection on trajectories: numbered steps in the request, step citations parsed and validated, shown in Review."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from tests.helpers.agent_jsonl import long_and_failing, right_and_wrong, write_jsonl
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.cli.root import cli
from lessonlab.core import lessons as L
from lessonlab.core import reflection as R
from lessonlab.core.lessons import review
from lessonlab.core.models.llm_client import RetryPolicy
from lessonlab.core.settings import Endpoint
from lessonlab.core.transfer.importer import import_file

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)


@pytest.fixture(scope="module")
def server():
    with ScriptedServer(lambda req, n: Reply(status=500)) as scripted:
        yield scripted


def imported(ws, tmp_path, lines, name="agent"):
    """Import the lines as one run; its rollout ids in file order."""
    run_id = import_file(ws, write_jsonl(tmp_path / f"{name}.jsonl", lines)).run_id
    ids = [r["id"] for r in ws.query("SELECT id FROM rollouts WHERE run_id = ? ORDER BY sample_index", (run_id,))]
    return run_id, ids


def reflect_replying(ws, server, reply: dict, **kw):
    server.script = lambda req, n: Reply(body=completion(json.dumps(reply)))
    server.requests.clear()
    result = R.reflect(ws, Endpoint(name="judge", base_url=server.base_url, model="judge"), retry=FAST, **kw)
    return result, server.requests[0]["messages"][0]["content"]


def test_the_request_carries_each_call_and_result_numbered(workspace, tmp_path, server):
    run_id, (right, wrong) = imported(workspace, tmp_path, right_and_wrong())
    result, prompt = reflect_replying(workspace, server, {"analysis": "a", "operations": []}, run_id=run_id)
    assert result.status == "ok"
    # one task with two attempts: the task is what came before the first model call, not each trajectory
    assert re.search(r"— 2 attempt\(s\), rewards (1.00 0.00|0.00 1.00)\nTask prompt:\nWhat is 1 \+ 2\? Use the add tool",
                     prompt)   # the rewards in import order; one import stamps both rollouts with the same time
    for rollout, y, answer in ((right, 2, 3), (wrong, 3, 4)):
        assert f"cite one as {rollout}#N" in prompt
        assert f'[{rollout}#1]\n  → add(x=1, y={y})\n  ← add (1 character): {answer}' in prompt
        assert f"[{rollout}#2] final answer:\nAnswer: {answer}" in prompt
    assert "Output:" not in prompt   # a trajectory shows its steps instead of only its output
    assert "Find the step where such an attempt went wrong" in prompt   # the meta-prompt asks for the step
    context = json.loads(workspace.one("SELECT context_json FROM reflections WHERE id = ?",
                                       (result.reflection_id,))["context_json"])
    assert context["steps"] == {right: 2, wrong: 2}


def test_long_results_are_cut_in_the_middle_but_failing_and_last_steps_stay_whole(workspace, tmp_path, server):
    run_id, (rollout,) = imported(workspace, tmp_path, [long_and_failing(5000)])
    _result, prompt = reflect_replying(workspace, server, {"analysis": "a", "operations": []}, run_id=run_id)
    first = prompt[prompt.index(f"[{rollout}#1]"):prompt.index(f"[{rollout}#2]")]
    assert "← lookup (5,000 characters): AAAA" in first and "characters cut" in first and first.rstrip().endswith("BBBB")
    assert len(first) < 600     # cut to the earlier-step budget, not 5,000 characters
    assert f"[{rollout}#2]\n  → mul(x=1, y=2)\n  ← mul (25 characters): Error: unknown tool 'mul'" in prompt
    assert f"[{rollout}#3]\n  → add(x=1, y=2)\n  ← add (1 character): 3" in prompt
    assert f"[{rollout}#4] final answer:\nAnswer: 2" in prompt


def test_a_trajectory_over_its_budget_keeps_the_failing_and_last_steps_and_summarises_the_rest():
    from lessonlab.core.runs.trajectory import read_trajectory
    from lessonlab.core.reflection.steps_text import render_steps
    from tests.helpers.agent_jsonl import call, result

    messages = [{"role": "user", "content": "q"}]
    for n in range(1, 41):
        messages += [call(f"c{n}", "spell", {"word": f"w{n}"}), result(f"c{n}", "x" * 300, name="spell")]
    messages[21 * 2 - 1:21 * 2 + 1] = [call("c21", "spell", "{not json"), result("c21", "Error: bad arguments", "spell")]
    _prompt, steps = read_trajectory(messages, "Answer: 3", None)
    text = render_steps("ro_t", steps, 2000)
    assert "[ro_t#1]" in text and "[ro_t#21]\n  → spell({not json  [arguments are not valid JSON])" in text and "[ro_t#40]" in text
    assert "[ro_t#41] final answer:\nAnswer: 3" in text
    assert "[steps 2–20 of ro_t left out: 19 step(s); spell ×19]" in text
    assert "[steps 22–39 of ro_t left out: 18 step(s); spell ×18]" in text


def test_a_single_call_rollout_reads_exactly_as_before(workspace, tmp_path, server):
    line = {"task_id": "t", "messages": [{"role": "user", "content": "What is 1 + 2?"},
                                         {"role": "assistant", "content": "Answer: 4"}], "reward": 0}
    run_id, (rollout,) = imported(workspace, tmp_path, [line], name="plain")
    _result, prompt = reflect_replying(workspace, server, {"analysis": "a", "operations": []}, run_id=run_id)
    assert f"#### Attempt {rollout} — reward 0.00\nVerifier feedback: (none)\nLessons in its system prompt: none\n" \
           f"Output:\nAnswer: 4\n" in prompt
    assert f"{rollout}#" not in prompt and "multi-step" not in prompt   # nor the guidance about steps


def test_step_evidence_is_parsed_validated_and_stored(workspace, tmp_path, server):
    run_id, (right, wrong) = imported(workspace, tmp_path, right_and_wrong())
    reply = {"analysis": "the wrong attempt passed y=3", "operations": [
        {"op": "add", "text": "Pass the numbers from the question to the tool exactly as written.",
         "rationale": "step 1 added the wrong number", "evidence": [f"{wrong}#1", f"{wrong}#7", right, "ro_nope#1"]},
    ]}
    result, _prompt = reflect_replying(workspace, server, reply, run_id=run_id)
    (prop,) = L.list_proposals(workspace)
    assert result.n_pending == 1 and prop["status"] == "pending"
    assert prop["evidence"] == [wrong, right]            # rollout ids, as every reader of evidence expects
    assert prop["evidence_steps"] == [f"{wrong}#1"]      # the step that exists; #7 does not
    assert f"{wrong}#7 ({wrong} has 2 numbered step(s))" in prop["note"] and "ro_nope#1" in prop["note"]
    # the schema names every step that may be cited
    stored = json.loads(workspace.one("SELECT request_json FROM reflections WHERE id = ?",
                                      (result.reflection_id,))["request_json"])
    schema = json.dumps(stored["response_format"])
    assert f'"{wrong}#2"' in schema and f'"{wrong}#3"' not in schema


def test_check_evidence_refuses_steps_of_single_call_rollouts_and_unknown_rollouts():
    checked = R.check_evidence(["ro_a#2", "ro_b#1", "ro_c", "ro_a", "ro_a#0", "ro_x#1"], {"ro_a", "ro_b", "ro_c"},
                               {"ro_a": 3})
    assert checked.rollout_ids == ["ro_a", "ro_b", "ro_c"] and checked.step_cites == ["ro_a#2"]
    assert checked.unknown == ["ro_x#1"]
    assert checked.bad_steps == ["ro_b#1 (ro_b is a single reply without numbered steps)",
                                 "ro_a#0 (ro_a has 3 numbered step(s))"]
    assert R.split_cite("ro_a#12") == ("ro_a", 12) and R.split_cite("ro_a") == ("ro_a", None)


def test_the_review_queue_shows_the_cited_step(workspace, tmp_path, server):
    run_id, (_right, wrong) = imported(workspace, tmp_path, right_and_wrong())
    reply = {"analysis": "a", "operations": [
        {"op": "add", "text": "Pass the numbers from the question to the tool exactly as written.",
         "rationale": "r", "evidence": [f"{wrong}#1"]}]}
    reflect_replying(workspace, server, reply, run_id=run_id)
    (group,) = review.review_queue(workspace)
    (step,) = group["items"][0]["steps"]
    assert step["cite"] == f"{wrong}#1" and step["calls"] == ["add(x=1, y=3)"]
    assert step["results"] == [{"name": "add", "content": "4", "cut_bytes": 0}]
    assert R.cited_step_text(step) == f"{wrong}#1 — step 1 of {wrong}\n→ add(x=1, y=3)\n← add: 4"
    listed = CliRunner().invoke(cli, ["proposals", "-w", str(workspace.path)])
    assert listed.exit_code == 0 and f"    evidence: {wrong}\n    steps:    {wrong}#1\n" in listed.output

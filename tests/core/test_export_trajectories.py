"""Trajectories out and back: SFT and DPO keep tool calls in the fine-tuning shape; chat JSONL round-trips the steps."""
from __future__ import annotations

import json

import pytest

from lessonlab.core.runs.trajectory import read_trajectory
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.core.transfer import export_dpo, export_rollouts, export_sft, import_file
from lessonlab.core.transfer.errors import MalformedFile
from tests.helpers.agent_jsonl import ADD_TOOL, QUESTION, SYSTEM, agent_line, call, result, right_and_wrong, write_jsonl

PROMPT = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]


def steps_of(y: int, answer: int) -> list[dict]:
    """What the model did after the prompt, in the fine-tuning shape: a call, its result, the final answer."""
    return [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": f"call_{'a' if y == 2 else 'b'}", "type": "function",
             "function": {"name": "add", "arguments": json.dumps({"x": 1, "y": y})}}]},
        {"role": "tool", "tool_call_id": f"call_{'a' if y == 2 else 'b'}", "content": str(answer)},
        {"role": "assistant", "content": f"Answer: {answer}"},
    ]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def imported_run(ws, tmp_path, lines, name="agent") -> str:
    return import_file(ws, write_jsonl(tmp_path / f"{name}.jsonl", lines)).run_id


def test_sft_keeps_tool_calls_tool_messages_and_the_tools_list(workspace, tmp_path):
    run_id = imported_run(workspace, tmp_path, right_and_wrong())
    summary = export_sft(workspace, tmp_path / "sft.jsonl", runs=[run_id])
    assert summary.examples == 1
    (line,) = read_jsonl(tmp_path / "sft.jsonl")
    assert line == {"messages": [*PROMPT, *steps_of(2, 3)], "tools": [ADD_TOOL]}


def test_sft_of_a_log_without_tool_schemas_keeps_the_calls_and_derives_no_tools(workspace, tmp_path):
    run_id = imported_run(workspace, tmp_path, [agent_line([call("call_a", "add", {"x": 1, "y": 2}),
                                                             result("call_a", "3")], "Answer: 3", 1.0, tools=False)])
    export_sft(workspace, tmp_path / "sft.jsonl", runs=[run_id])
    (line,) = read_jsonl(tmp_path / "sft.jsonl")
    assert "tools" not in line and line["messages"] == [*PROMPT, *steps_of(2, 3)]


def test_dpo_pairs_trajectories_on_their_prompt_and_prefers_the_whole_continuation(workspace, tmp_path):
    run_id = imported_run(workspace, tmp_path, right_and_wrong())
    summary = export_dpo(workspace, tmp_path / "dpo.jsonl", runs=[run_id])
    assert summary.examples == 1
    (pair,) = read_jsonl(tmp_path / "dpo.jsonl")
    assert pair == {"input": {"messages": PROMPT, "tools": [ADD_TOOL]},
                    "preferred_output": steps_of(2, 3), "non_preferred_output": steps_of(3, 4)}


FIGURES = [
    {"latency_ms": 120.5, "prompt_tokens": 40, "completion_tokens": 9, "finish_reason": "tool_calls",
     "cut": {"call_a": 70000}, "unanswered_calls": []},
    {"latency_ms": 80.0, "prompt_tokens": 55, "completion_tokens": 4, "finish_reason": "stop", "cut": {},
     "unanswered_calls": []},
]


def stored(ws, run_id) -> dict:
    row = ws.one("SELECT r.n_steps, r.tool_mode, x.messages_json, x.output, x.steps_json, x.tools_json"
                 " FROM rollouts r JOIN rollout_texts x ON x.rollout_id = r.id WHERE r.run_id = ?", (run_id,))
    prompt, steps = read_trajectory(json.loads(row["messages_json"]), row["output"], row["steps_json"])
    return {"prompt": prompt, "steps": [step.to_dict() for step in steps], "messages": row["messages_json"],
            "tools": row["tools_json"], "n_steps": row["n_steps"], "tool_mode": row["tool_mode"]}


def test_chat_jsonl_export_then_import_round_trips_a_trajectory(workspace, tmp_path):
    (line, _wrong) = right_and_wrong()
    line.update(steps=FIGURES, tool_mode="native")
    run_id = imported_run(workspace, tmp_path, [line])
    before = stored(workspace, run_id)
    assert before["n_steps"] == 2 and before["tool_mode"] == "native"
    assert before["steps"][0]["tool_calls"][0]["arguments"] == '{"x": 1, "y": 2}'
    assert before["steps"][0]["results"][0]["cut_bytes"] == 70000 and before["steps"][1]["final"]
    export_rollouts(workspace, tmp_path / "out.jsonl", runs=[run_id])
    (exported,) = read_jsonl(tmp_path / "out.jsonl")
    assert exported["steps"] == FIGURES and exported["tools"] == [ADD_TOOL] and exported["tool_mode"] == "native"
    other = open_workspace(tmp_path / "other.db")
    try:
        again = import_file(other, tmp_path / "out.jsonl").run_id
        assert stored(other, again) == before
        export_rollouts(other, tmp_path / "again.jsonl", runs=[again])
        drop = ("id", "run_id")
        assert ([{k: v for k, v in r.items() if k not in drop} for r in read_jsonl(tmp_path / "again.jsonl")]
                == [{k: v for k, v in exported.items() if k not in drop}])
    finally:
        other.close()


@pytest.mark.parametrize("field, value", [("steps", "fast"), ("tools", [ADD_TOOL, 2])])
def test_malformed_steps_or_tools_name_the_line(workspace, tmp_path, field, value):
    lines = right_and_wrong()
    lines[1][field] = value
    with pytest.raises(MalformedFile, match=rf"line 2.*\"{field}\" must be an array of objects, got "):
        import_file(workspace, write_jsonl(tmp_path / "bad.jsonl", lines))
    assert workspace.one("SELECT COUNT(*) AS n FROM rollouts")["n"] == 0

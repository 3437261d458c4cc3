"""An agent log written by inspect-ai's own writer (an eval whose sample calls add(x=1, y=2), gets 3 and answers),
imported: the trajectory is stored in the shared shape, reflection reads its call and result, SFT keeps them."""
from __future__ import annotations

import gc
import json

import pytest

from lessonlab.core import reflection as R
from lessonlab.core.models.llm_client import RetryPolicy
from lessonlab.core.reflection.steps_text import step_failed
from lessonlab.core.runs.trajectory import read_trajectory
from lessonlab.core.settings import Endpoint
from lessonlab.core.transfer import export_sft, import_file
from tests.helpers.scripted_server import Reply, ScriptedServer, completion

QUESTION = "What is 1 + 2? Use the add tool."
BROKEN = "the adder is out of order"
# inspect-ai's own retry setup passes tenacity an argument tenacity has deprecated; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated:DeprecationWarning"),
    # inspect-ai's own eval leaves an anyio stream and a /dev/null handle for the garbage collector.
    pytest.mark.filterwarnings("ignore:Exception ignored in.*MemoryObject:pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore:Exception ignored in.*/dev/null:pytest.PytestUnraisableExceptionWarning"),
]

ADD_SCHEMA = {"type": "function", "function": {
    "name": "add", "description": "Add two integers exactly.",
    "parameters": {"type": "object", "properties": {"x": {"type": "integer", "description": "The first number."},
                                                    "y": {"type": "integer", "description": "The second number."}},
                   "required": ["x", "y"], "additionalProperties": False}}}


def _write_agent_eval(log_dir, broken_tool: bool = False) -> str:
    """Run a one-sample eval on inspect's mockllm with scripted outputs: a call to add(x=1, y=2), then the answer
    (with `broken_tool`, the tool raises inspect's ToolError instead of adding)."""
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate, use_tools
    from inspect_ai.tool import ToolError, tool

    @tool
    def add():
        async def execute(x: int, y: int):
            """Add two integers exactly.

            Args:
                x: The first number.
                y: The second number.
            """
            if broken_tool:
                raise ToolError(BROKEN)
            return x + y
        return execute

    def with_usage(output: ModelOutput, prompt: int, completion_tokens: int) -> ModelOutput:
        # Given usage keeps mockllm from counting tokens with tiktoken, which would download an encoding.
        output.usage = ModelUsage(input_tokens=prompt, output_tokens=completion_tokens,
                                  total_tokens=prompt + completion_tokens)
        return output

    model = get_model("mockllm/model", custom_outputs=[
        with_usage(ModelOutput.for_tool_call(model="mockllm/model", tool_name="add", tool_arguments={"x": 1, "y": 2}),
                   30, 8),
        with_usage(ModelOutput.from_content(model="mockllm/model", content="1 + 2 = 3. Answer: 3"), 45, 9),
    ])
    task = Task(dataset=[Sample(input=QUESTION, target="3")], solver=[use_tools(add()), generate()], scorer=includes())
    (log,) = inspect_eval(task, model=model, log_dir=str(log_dir), display="none")
    assert log.status == "success", log.error
    return log.location


def _inspect_eval_file(tmp_path_factory, broken_tool: bool = False) -> str:
    home = tmp_path_factory.mktemp("inspect-home")
    with pytest.MonkeyPatch.context() as patch:   # inspect keeps traces and caches under the user's dirs
        for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
            patch.setenv(name, str(home / name.lower()))
        path = _write_agent_eval(tmp_path_factory.mktemp("inspect-logs"), broken_tool)
    gc.collect()   # what inspect left for the collector is reported here, under this module's filters
    return path


@pytest.fixture(scope="module")
def agent_eval(tmp_path_factory):
    """The .eval file inspect-ai wrote (once per module: an eval takes a few seconds)."""
    return _inspect_eval_file(tmp_path_factory)


@pytest.fixture(scope="module")
def broken_tool_eval(tmp_path_factory):
    """The same eval with a tool that raises inspect's ToolError."""
    return _inspect_eval_file(tmp_path_factory, broken_tool=True)


def test_the_trajectory_is_stored_in_the_shared_shape(workspace, agent_eval):
    result = import_file(workspace, agent_eval)
    assert (result.format, result.new, result.scored, result.mean_reward) == ("inspect", 1, 1, 1.0)
    row = workspace.one("SELECT r.n_steps, r.reward, x.messages_json, x.output, x.tools_json FROM rollouts r"
                        " JOIN rollout_texts x ON x.rollout_id = r.id")
    messages = json.loads(row["messages_json"])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    (call,) = messages[1]["tool_calls"]
    assert call["function"] == {"name": "add", "arguments": '{"x": 1, "y": 2}'} and call["type"] == "function"
    assert messages[2] == {"role": "tool", "content": "3", "name": "add", "tool_call_id": call["id"]}
    assert row["output"] == "1 + 2 = 3. Answer: 3" and row["n_steps"] == 2
    assert json.loads(row["tools_json"]) == [ADD_SCHEMA]   # from the model event's tools
    prompt, steps = read_trajectory(messages, row["output"])
    assert prompt == [{"role": "user", "content": QUESTION}]
    assert [s.tool_calls[0].parsed_arguments() for s in steps[:1]] == [{"x": 1, "y": 2}]
    assert steps[0].results[0].content == "3" and steps[1].final


def test_the_reflection_request_carries_the_call_and_its_result(workspace, agent_eval):
    run_id = import_file(workspace, agent_eval).run_id
    rollout = workspace.one("SELECT id FROM rollouts")["id"]
    with ScriptedServer(lambda req, n: Reply(body=completion('{"analysis": "fine", "operations": []}'))) as server:
        result = R.reflect(workspace, Endpoint(name="judge", base_url=server.base_url, model="judge"), run_id=run_id,
                           retry=RetryPolicy(max_attempts=1))
        prompt = server.requests[0]["messages"][0]["content"]
    assert result.status == "ok" and result.n_included == 1
    assert f"[{rollout}#1] model: tool call for tool add\n  → add(x=1, y=2)\n  ← add (1 character): 3" in prompt
    assert f"[{rollout}#2] final answer:\n1 + 2 = 3. Answer: 3" in prompt


def test_sft_of_the_inspect_log_keeps_the_call_and_the_tools(workspace, agent_eval, tmp_path):
    run_id = import_file(workspace, agent_eval).run_id
    export_sft(workspace, tmp_path / "sft.jsonl", runs=[run_id])
    (line,) = [json.loads(text) for text in (tmp_path / "sft.jsonl").read_text().splitlines()]
    assert line["tools"] == [ADD_SCHEMA]
    assert [m["role"] for m in line["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert line["messages"][1]["tool_calls"][0]["function"]["name"] == "add"
    assert line["messages"][2] == {"role": "tool", "tool_call_id": line["messages"][1]["tool_calls"][0]["id"],
                                   "content": "3"}


def test_a_failed_tool_call_is_stored_as_the_error_inspect_sent_the_model(workspace, broken_tool_eval):
    import asyncio

    from inspect_ai.log import read_eval_log
    from inspect_ai.model._openai import openai_chat_message

    import_file(workspace, broken_tool_eval)
    row = workspace.one("SELECT x.messages_json, x.output FROM rollout_texts x")
    messages = json.loads(row["messages_json"])
    (sample,) = read_eval_log(broken_tool_eval).samples
    (inspect_tool,) = [m for m in sample.messages if m.role == "tool"]
    assert inspect_tool.error is not None and inspect_tool.error.message == BROKEN
    sent = asyncio.run(openai_chat_message(inspect_tool))   # what inspect's OpenAI provider sends
    assert messages[2]["content"] == sent["content"] == f"Error: {BROKEN}"
    _, steps = read_trajectory(messages, row["output"])
    assert step_failed(steps[0]) and not step_failed(steps[1])

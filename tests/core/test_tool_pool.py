"""A user's own tool set (`python:module:factory`): trusted only on request, run in the killable worker pool."""
from __future__ import annotations

import asyncio
import time

import pytest

from lessonlab.core.tools import (
    ToolSpecError, UntrustedToolSet, check_tasks_trusted, describe_python_tool_sets, toolbox_for,
)
from lessonlab.core.verifiers import WorkerPool

USER_TOOLS = '''
import time
from lessonlab.core.tools import Tool, ToolSet, ToolError, tool


def echo(text: str, times: int = 1) -> str:
    """Say the text again."""
    return text * times


def explode(reason: str) -> str:
    """Fail on purpose."""
    raise RuntimeError(reason)


def stall(seconds: float) -> str:
    """Sleep for a while."""
    time.sleep(seconds)
    return "awake"


def forever() -> str:
    """Never return."""
    while True:
        pass


def bye() -> str:
    """Call sys.exit."""
    raise SystemExit(3)


def tools():
    return [echo, explode, stall, forever, bye]


def count(state, by: int):
    """Add to the counter."""
    return f"now {state['n'] + by}", {**state, "n": state["n"] + by}


def counter():
    return ToolSet("counter", (tool(count, {"by": ("integer", "how much")}, stateful=True),),
                   initial_state=lambda metadata: {"n": metadata.get("start", 0)})
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module of user tools importable from the current directory, under a name unique to the test."""
    name = f"user_tools_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(USER_TOOLS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return name


async def with_pool(work):
    pool = WorkerPool()
    try:
        return await work(pool)
    finally:
        await pool.close()


def test_python_tool_set_needs_trust(user_module):
    task = {"tools": [f"python:{user_module}:tools"]}
    with pytest.raises(UntrustedToolSet, match="--trust-verifiers"):
        toolbox_for(task)
    with pytest.raises(UntrustedToolSet, match=f"python:{user_module}:tools"):
        check_tasks_trusted([task], trust=False)
    check_tasks_trusted([task], trust=True)


def test_python_tool_set_schema_comes_from_the_functions(user_module):
    box = toolbox_for({"tools": [f"python:{user_module}:tools.echo"]}, trust=True)
    assert box.schemas == [{"type": "function", "function": {
        "name": "echo", "description": "Say the text again.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}, "times": {"type": "integer"}},
                       "required": ["text"], "additionalProperties": False}}}]


def test_describe_names_module_and_file(user_module, tmp_path):
    described = describe_python_tool_sets([{"tools": ["letters", f"python:{user_module}:tools.echo"]}])
    assert described == [(f"python:{user_module}:tools", str(tmp_path / f"{user_module}.py"))]


def test_a_missing_factory_is_bad_input(user_module):
    with pytest.raises(ToolSpecError, match="has no attribute 'nothing'"):
        toolbox_for({"tools": [f"python:{user_module}:nothing"]}, trust=True)
    with pytest.raises(ToolSpecError, match="has no tool 'nope'"):
        toolbox_for({"tools": [f"python:{user_module}:tools.nope"]}, trust=True)


@pytest.mark.timeout(60, method="thread")
def test_user_tools_run_in_the_worker_pool(user_module):
    box = toolbox_for({"tools": [f"python:{user_module}:tools"]}, trust=True, timeout=1.0)

    async def work(pool):
        ok = await box.call(pool, "echo", '{"text": "ab", "times": 2}', None)
        raised = await box.call(pool, "explode", '{"reason": "on purpose"}', None)
        exited = await box.call(pool, "bye", "{}", None)
        started = time.monotonic()
        hung = await box.call(pool, "forever", "{}", None)
        hung_for = time.monotonic() - started
        after = await box.call(pool, "echo", '{"text": "still here"}', None)
        return ok, raised, exited, hung, hung_for, after, pool

    ok, raised, exited, hung, hung_for, after, pool = asyncio.run(with_pool(work))
    assert (ok.content, ok.error) == ("abab", False)
    assert (raised.content, raised.error) == ("error: RuntimeError: on purpose", True)
    assert (exited.content, exited.error) == ("error: the tool called sys.exit(3)", True)
    assert hung.error and hung.content == "error: the tool forever timed out after 1 s and was stopped"
    assert hung_for < 5
    assert (after.content, after.error) == ("still here", False)   # a new worker replaced the killed one


@pytest.mark.timeout(60, method="thread")
def test_a_timed_out_worker_is_killed(user_module):
    box = toolbox_for({"tools": [f"python:{user_module}:tools"]}, trust=True, timeout=0.5)

    async def work(pool):
        await box.call(pool, "echo", '{"text": "warm"}', None)
        (worker,) = pool._all
        outcome = await box.call(pool, "stall", '{"seconds": 30}', None)
        return outcome, worker.proc.returncode, worker in pool._all

    outcome, returncode, still_pooled = asyncio.run(with_pool(work))
    assert outcome.error and "timed out after 0.5 s" in outcome.content
    assert returncode is not None and not still_pooled


@pytest.mark.timeout(60, method="thread")
def test_state_crosses_the_process_boundary(user_module):
    box = toolbox_for({"tools": [f"python:{user_module}:counter"], "metadata": {"start": 5}}, trust=True)
    assert box.initial_state == {"counter": {"n": 5}}      # a ToolSet's own name keys its state

    async def work(pool):
        first = await box.call(pool, "count", '{"by": 2}', box.initial_state)
        second = await box.call(pool, "count", '{"by": 3}', first.state)
        wrong = await box.call(pool, "count", '{"by": "x"}', second.state)
        return first, second, wrong

    first, second, wrong = asyncio.run(with_pool(work))
    assert first.content == "now 7" and second.content == "now 10"
    assert second.state == {"counter": {"n": 10}}
    assert wrong.error and wrong.state == second.state
    assert box.initial_state == {"counter": {"n": 5}}      # the first state is untouched


def test_two_stateful_sets_cannot_share_a_state_name(user_module, tmp_path):
    (tmp_path / f"{user_module}_b.py").write_text(
        "from lessonlab.core.tools import ToolSet, tool\n"
        "def tally(state):\n    \"\"\"Tally.\"\"\"\n    return 'ok', state\n"
        "def make():\n    return ToolSet('counter', (tool(tally, stateful=True),), initial_state=lambda m: {})\n",
        encoding="utf-8")
    with pytest.raises(ToolSpecError, match="both keep their state as 'counter'"):
        toolbox_for({"tools": [f"python:{user_module}:counter", f"python:{user_module}_b:make"]}, trust=True)


def test_a_failing_initial_state_is_bad_input(user_module, tmp_path):
    (tmp_path / f"{user_module}_c.py").write_text(
        "from lessonlab.core.tools import ToolSet\n"
        f"from {user_module} import counter\n"
        "def make():\n    return ToolSet('broken', counter().tools, initial_state=lambda m: m['absent'])\n",
        encoding="utf-8")
    with pytest.raises(ToolSpecError, match="its initial state failed: KeyError: 'absent'"):
        toolbox_for({"tools": [f"python:{user_module}_c:make"]}, trust=True)


def test_builtin_sets_also_run_in_a_worker():
    async def work(pool):
        return await pool.run_tool("calc", "div", {"a": 1, "b": 0}, None, timeout=5)

    reply = asyncio.run(with_pool(work))
    assert reply == {"content": "error: division by zero", "error": True, "state": None}


@pytest.mark.timeout(60, method="thread")
def test_a_large_result_comes_back_whole_and_a_huge_one_is_an_error(user_module):
    box = toolbox_for({"tools": [f"python:{user_module}:tools.echo"]}, trust=True)

    async def work(pool):
        large = await box.call(pool, "echo", '{"text": "abcd", "times": 50000}', None)         # 200 KB
        huge = await box.call(pool, "echo", '{"text": "abcdefgh", "times": 5000000}', None)    # 40 MB
        after = await box.call(pool, "echo", '{"text": "ok"}', None)
        return large, huge, after

    large, huge, after = asyncio.run(with_pool(work))
    assert not large.error and large.content == "abcd" * 50000       # the loop cuts it when it stores it
    assert huge.error and "at most 33,554,432 can come back" in huge.content
    assert after.content == "ok"

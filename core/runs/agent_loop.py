"""The agent-loop sender: a task with tools is model → tool calls → results → model … until a final answer.

Native function calling first (`tools` in the request, `tool_calls` in the reply). When the endpoint rejects
`tools` the rollout starts again under the Hermes text protocol (`hermes`), and the run's `ToolModeMemo`
switches every later rollout and remembers the mode for the endpoint. The task's `Toolbox`
(`lessonlab.core.tools.toolbox_for`) runs each call and turns an unknown tool, bad arguments, an exception
or a timeout into an "error: …" result the model reads; the loop only guards against a toolbox that breaks
that promise, and reads a Hermes block that is not JSON as such an error. After `max_turns` model calls the
last reply is the output and its calls are recorded as unanswered. Every model call keeps llm_client's
retries and backoff.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from lessonlab.core.models import llm_client
from lessonlab.core.runs import hermes
from lessonlab.core.runs.jobs import RolloutJob
from lessonlab.core.runs.senders import SendContext, Sent, register_sender
from lessonlab.core.runs.tool_modes import ToolModeMemo
from lessonlab.core.runs.trajectory import StepFigures, cut_tool_result

# A tool call that has not answered after this long is given up on (the toolbox's own limit comes first).
TOOL_CALL_TIMEOUT = 30.0


class Toolbox(Protocol):
    """What the loop needs of `lessonlab.core.tools.Toolbox`: schemas, a first state, and calls that never raise."""

    schemas: list[dict]
    initial_state: Any

    async def call(self, pool, name: str, arguments: str, state: Any) -> Any:
        """Run one call: an outcome with `.content` (the text the model reads), `.error` and `.state`."""
        ...


ToolboxFactory = Callable[[RolloutJob, bool], Toolbox]


@dataclass
class _Trajectory:
    """One rollout in progress: stored messages, per-step figures and the running totals."""

    mode: str
    messages: list[dict]
    state: Any
    figures: list[StepFigures] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 0
    replaced: int = 0

    def count(self, reply: llm_client.ChatResult) -> None:
        self.figures.append(StepFigures(latency_ms=round(reply.latency_ms, 1), prompt_tokens=reply.prompt_tokens,
                                        completion_tokens=reply.completion_tokens,
                                        finish_reason=reply.finish_reason))
        self.prompt_tokens += reply.prompt_tokens or 0
        self.completion_tokens += reply.completion_tokens or 0
        self.latency_ms += reply.latency_ms
        self.attempts += reply.attempts
        self.replaced += reply.replaced


class _ToolsRejected(Exception):
    """The endpoint refused `tools`: the rollout starts again in Hermes mode."""


class AgentLoopSender:
    """Sends a rollout of a task with tools as an agent loop (see the module docstring)."""

    def __init__(self, client, model: str, params: dict, retry: llm_client.RetryPolicy, *, modes: ToolModeMemo,
                 toolboxes: ToolboxFactory, pool, trust: bool):
        self.client, self.model, self.params, self.retry = client, model, params, retry
        self.modes, self.toolboxes, self.pool, self.trust = modes, toolboxes, pool, trust
        self.tool_timeout = TOOL_CALL_TIMEOUT
        # One toolbox per task for the whole run: a toolbox holds no rollout's state (every call takes the
        # state and returns a new one), and building it resolves the task's tool names each time.
        self._toolboxes: dict[str, Toolbox] = {}

    async def send(self, job: RolloutJob, seed: int) -> Sent:
        """The whole loop; a rejected `tools` restarts it once under Hermes."""
        toolbox = self._toolboxes.get(job.task_id)
        if toolbox is None:
            toolbox = self._toolboxes[job.task_id] = self.toolboxes(job, self.trust)
        mode = self.modes.mode
        try:
            return await self._loop(job, seed, toolbox, mode)
        except _ToolsRejected as exc:
            self.modes.rejected_native(str(exc))
            return await self._loop(job, seed, toolbox, "hermes")

    async def _loop(self, job: RolloutJob, seed: int, toolbox: Toolbox, mode: str) -> Sent:
        messages = job.messages if mode == "native" else hermes.with_tools_in_system_prompt(job.messages, toolbox.schemas)
        run = _Trajectory(mode=mode, messages=list(messages), state=toolbox.initial_state)
        for turn in range(1, job.max_turns + 1):
            try:
                reply = await self._call(run, toolbox, seed)
            except llm_client.ModelCallError as exc:
                if mode == "native" and turn == 1 and llm_client.rejects_tools(exc):
                    raise _ToolsRejected(str(exc)) from exc
                return self._failed(run, exc)
            self.modes.worked(mode)
            run.count(reply)
            calls = reply.tool_calls if mode == "native" else hermes.parse_calls(reply.output, turn)
            if not calls:
                return self._sent(run, reply, None)
            if turn == job.max_turns:
                run.figures[-1].unanswered_calls = calls
                return self._sent(run, reply, job.max_turns)
            await self._answer(run, toolbox, reply, calls)
        raise AssertionError("unreachable: the loop returns at its last turn")

    async def _call(self, run: _Trajectory, toolbox: Toolbox, seed: int) -> llm_client.ChatResult:
        params = {**self.params, "seed": seed}
        if run.mode == "native":
            return await llm_client.chat(self.client, self.model, run.messages, {**params, "tools": toolbox.schemas},
                                         retry=self.retry)
        return await llm_client.chat(self.client, self.model, hermes.wire_messages(run.messages), params,
                                     retry=self.retry)

    async def _answer(self, run: _Trajectory, toolbox: Toolbox, reply: llm_client.ChatResult,
                      calls: list[dict]) -> None:
        """Append the assistant message and the result of every call it made, in order."""
        run.messages.append({"role": "assistant", "content": reply.output, "tool_calls": calls})
        results = []
        for call in calls:
            text = await self._run_call(run, toolbox, call)
            text, size = cut_tool_result(text)
            if size:
                run.figures[-1].cut[call["id"]] = size
            results.append((call["function"]["name"], text))
            if run.mode == "native":
                run.messages.append({"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"],
                                     "content": text})
        if run.mode == "hermes":
            run.messages.append(hermes.response_message(results))

    async def _run_call(self, run: _Trajectory, toolbox: Toolbox, call: dict) -> str:
        """The result text of one call; every failure is a readable error, never an exception."""
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        if not name:  # a Hermes block that did not parse: the toolbox would only say the name is unknown
            return f"error: a tool call must be JSON with a name and arguments, got: {arguments[:200]}"
        try:
            outcome = await asyncio.wait_for(toolbox.call(self.pool, name, arguments or "{}", run.state),
                                             self.tool_timeout)
        except (asyncio.TimeoutError, TimeoutError):
            return f"error: tool {name} did not answer within {self.tool_timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - a tool set's bug becomes a result the model can read
            return f"error: tool {name} failed: {type(exc).__name__}: {exc}"
        run.state = outcome.state
        return str(outcome.content)

    def _sent(self, run: _Trajectory, reply: llm_client.ChatResult, stopped_at: int | None) -> Sent:
        total = llm_client.ChatResult(
            output=reply.output, model=reply.model, prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens, finish_reason=reply.finish_reason,
            latency_ms=run.latency_ms, attempts=run.attempts, replaced=run.replaced)
        return Sent(run.messages, total, None, run.figures, tool_mode=run.mode, tool_state=run.state,
                    stopped_at_limit=stopped_at)

    def _failed(self, run: _Trajectory, exc: llm_client.ModelCallError) -> Sent:
        exc.latency_ms += run.latency_ms      # the rollout's totals, not only the failed call's
        exc.attempts += run.attempts
        return Sent(run.messages, None, exc, run.figures, tool_mode=run.mode, tool_state=run.state)


def _agent_loop_for_run(ctx: SendContext) -> AgentLoopSender:
    return AgentLoopSender(ctx.client, ctx.model, ctx.params, ctx.retry, modes=ToolModeMemo(ctx.ws, ctx.endpoint),
                           toolboxes=ctx.toolboxes, pool=ctx.pool, trust=ctx.trust)


register_sender("agent_loop", lambda job: bool(job.tools), _agent_loop_for_run)

"""What a reader yields for each rollout it finds, whatever the file format, and chat messages made uniform."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lessonlab.core.runs.trajectory import is_multi_step
from lessonlab.core.transfer.limits import RecordError
from lessonlab.core.transfer.scores import Score


@dataclass
class ImportedRollout:
    """One rollout read from a file, before it is matched to a task and a snapshot and written."""

    where: str                         # "entry samples/3_epoch_1.json" or "line 12", for messages
    source_key: str                    # stable identity: the same rollout read again has the same key
    task_name: str                     # "": named after the prompt
    messages: list[dict]               # the request messages (system first when there is one), not the reply
    output: str | None
    prompt: str | list[dict] | None = None   # the task prompt; None: the messages after the system prompt
    verifier: dict = field(default_factory=lambda: {"kind": "imported"})
    task_metadata: dict = field(default_factory=dict)
    suite: str | None = None           # None: the file's suite
    split: str | None = None           # None: the import's split
    sample_index: int | None = None    # None: numbered per task in file order
    status: str = "ok"                 # ok | error
    error: str | None = None
    scores: list[Score] = field(default_factory=list)
    reward: float | None = None        # an explicit reward (JSONL "reward"); else one score gives it
    reward_given: bool = False
    feedback: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    finish_reason: str | None = None
    steps: list[dict] | None = None    # per-step figures (`steps_json`, see runs.trajectory.StepFigures)
    tools: list[dict] | None = None    # the OpenAI `tools` list the rollout was sent with, where known
    tool_mode: str | None = None       # native | hermes, where known
    origin_id: str | None = None       # the rollout id lessonlab gave it, when the file is lessonlab's own export


def step_count(messages: list[dict], output: str | None) -> int | None:
    """Model calls in a trajectory (assistant messages, plus the final reply); None for a one-call rollout."""
    if not is_multi_step(messages):
        return None
    calls = sum(message.get("role") == "assistant" for message in messages) + (output is not None)
    return calls if calls > 1 else None


@dataclass
class RunInfo:
    """What a file says about the run as a whole."""

    format: str                        # inspect | openai-jsonl
    suite: str
    model: str | None = None
    params: dict = field(default_factory=dict)
    note: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


def content_text(content: Any) -> str:
    """A message's content as text: text parts joined, other parts named ([image], [audio], ...)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                kind = part.get("type")
                if kind == "text" or (kind is None and "text" in part):
                    parts.append(str(part.get("text") or ""))
                elif kind in ("reasoning", "tool_use", "data"):
                    continue  # hidden thinking and tool plumbing are not part of what the message says
                elif kind in ("image", "image_url", "input_image"):
                    parts.append("[image]")
                elif kind:
                    parts.append(f"[{kind}]")
        return "\n".join(part for part in parts if part)
    return str(content)


def tool_call(call: dict) -> dict:
    """A tool call in the OpenAI chat format (Inspect writes `function` as a name and `arguments` as an object)."""
    function = call.get("function")
    if isinstance(function, dict):
        return {"id": call.get("id"), "type": call.get("type") or "function", "function": function}
    arguments = call.get("arguments", {})
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": function, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)},
    }


def tool_error_text(error) -> str | None:
    """A tool result's error as text: Inspect writes `{"type": ..., "message": ...}`; None when there is none."""
    if isinstance(error, dict):
        error = next((value for value in (error.get("message"), error.get("type")) if isinstance(value, str) and value),
                     None)
    return error if isinstance(error, str) and error else None


def chat_message(message: dict) -> dict:
    """A chat message with text content, keeping tool calls and tool results (role, content, name, tool ids).

    A tool result that failed becomes what the model was sent for it, `Error: <message>` (as Inspect sends
    it), so the step reads as failed in `show`, in the trajectory view and to the reflecting model."""
    out = {"role": message["role"], "content": content_text(message.get("content"))}
    error = tool_error_text(message.get("error")) if message["role"] == "tool" else None
    if error is not None:
        out["content"] = f"Error: {error}"
    name = message.get("name") or (message.get("function") if message["role"] == "tool" else None)
    if isinstance(name, str) and name:
        out["name"] = name   # Inspect names the tool of a tool message `function`
    if message.get("tool_calls"):
        if not isinstance(message["tool_calls"], list):
            raise RecordError(f'"tool_calls" must be an array of tool calls, got {json.dumps(message["tool_calls"])[:40]}')
        out["tool_calls"] = [tool_call(call) for call in message["tool_calls"] if isinstance(call, dict)]
    if message.get("tool_call_id"):
        out["tool_call_id"] = message["tool_call_id"]
    return out

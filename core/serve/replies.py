"""Reading an upstream reply for the record: a chat.completion body, or a stream put back together."""
from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class ReplyParts:
    """What a reply said: the assistant message, why it stopped, the model, token counts."""

    message: dict | None
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tool_calls: list[dict] = field(default_factory=list)

    @property
    def text(self) -> str:
        content = (self.message or {}).get("content")
        return content if isinstance(content, str) else ""


def _usage(parts: ReplyParts, usage) -> None:
    if isinstance(usage, dict):
        if isinstance(usage.get("prompt_tokens"), int):
            parts.prompt_tokens = usage["prompt_tokens"]
        if isinstance(usage.get("completion_tokens"), int):
            parts.completion_tokens = usage["completion_tokens"]


def from_body(body: dict) -> ReplyParts:
    """The first choice of a chat.completion body."""
    choices = body.get("choices") if isinstance(body, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else None
    parts = ReplyParts(message=message, finish_reason=choice.get("finish_reason"),
                       model=body.get("model") if isinstance(body, dict) else None)
    if message and isinstance(message.get("tool_calls"), list):
        parts.tool_calls = [c for c in message["tool_calls"] if isinstance(c, dict)]
    _usage(parts, body.get("usage") if isinstance(body, dict) else None)
    return parts


def sse_events(raw: bytes):
    """The JSON events of a server-sent-event stream (complete `data:` lines only; `[DONE]` and junk skipped)."""
    for line in raw.split(b"\n"):
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if not data or data == b"[DONE]":
            continue
        try:
            event = json.loads(data)
        except ValueError:
            continue  # a line cut by a disconnect, or not JSON
        if isinstance(event, dict):
            yield event


def from_stream(raw: bytes) -> ReplyParts:
    """The reply a stream of chat.completion.chunk events adds up to (as far as it went)."""
    content: list[str] = []
    calls: dict[int, dict] = {}
    parts = ReplyParts(message=None)
    role = "assistant"
    for event in sse_events(raw):
        parts.model = event.get("model") or parts.model
        _usage(parts, event.get("usage"))
        for choice in event.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            parts.finish_reason = choice.get("finish_reason") or parts.finish_reason
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            role = delta.get("role") or role
            if isinstance(delta.get("content"), str):
                content.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    _add_call_delta(calls, call)
    parts.tool_calls = [calls[i] for i in sorted(calls)]
    parts.message = {"role": role, "content": "".join(content) if content or not parts.tool_calls else None}
    if parts.tool_calls:
        parts.message["tool_calls"] = parts.tool_calls
    return parts


def _add_call_delta(calls: dict[int, dict], delta: dict) -> None:
    index = delta.get("index", len(calls))
    call = calls.setdefault(index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    if delta.get("id"):
        call["id"] = delta["id"]
    function = delta.get("function") if isinstance(delta.get("function"), dict) else {}
    if isinstance(function.get("name"), str):
        call["function"]["name"] += function["name"]
    if isinstance(function.get("arguments"), str):
        call["function"]["arguments"] += function["arguments"]

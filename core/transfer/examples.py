"""Training examples from stored rollouts: the fine-tuning shape of messages, and each request worked out once.

A run's samples of one task share their request text (system prompt, lessons, task), so `Requests` parses,
checks and keys each distinct text once and hands the result to every sample that has it; only the reply
differs from sample to sample. Plain requests (system, user and assistant messages with text, no tool
traffic) are already in the fine-tuning shape and go out as the text the workspace stores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from lessonlab.core.lessons import estimate_tokens
from lessonlab.core.runs.trajectory import is_multi_step, prompt_length
from lessonlab.core.transfer.imported import tool_call
from lessonlab.core.transfer.jsontext import stored_json
from lessonlab.core.transfer.selection import without_lessons

_FINE_TUNING_KEYS = {"assistant": ("role", "content", "name", "tool_calls"),
                     "tool": ("role", "tool_call_id", "content")}
_PLAIN_KEYS = frozenset(("role", "content", "name"))
_PLAIN_ROLES = frozenset(("system", "user", "assistant"))


def fine_tuning_message(message: dict) -> dict:
    """A stored message with only the keys the fine-tuning format has for its role (tool calls made uniform)."""
    keys = _FINE_TUNING_KEYS.get(message.get("role"), ("role", "content", "name"))
    out = {key: message[key] for key in keys if message.get(key) is not None}
    out.setdefault("content", "" if message.get("role") != "assistant" or not out.get("tool_calls") else None)
    if out.get("tool_calls"):
        out["tool_calls"] = [tool_call(call) for call in out["tool_calls"] if isinstance(call, dict)]
    return out


def prompt_and_continuation(messages: list[dict], output: str) -> tuple[list[dict], list[dict]]:
    """The request before the first model call, and everything the model did from there (its steps, the reply)."""
    first = prompt_length(messages) if is_multi_step(messages) else len(messages)
    continuation = [*messages[first:], {"role": "assistant", "content": output}]
    return ([fine_tuning_message(m) for m in messages[:first]], [fine_tuning_message(m) for m in continuation])


def is_plain(messages: list) -> bool:
    """Whether messages are a one-call request already in the fine-tuning shape: each a system, user or
    assistant message with text content (and perhaps a name), no tool traffic. For these
    `prompt_and_continuation` keeps the messages as they are and adds the reply."""
    for message in messages:
        if (type(message) is not dict or not message.keys() <= _PLAIN_KEYS or message.get("role") not in _PLAIN_ROLES
                or type(message.get("content")) is not str or type(message.get("name", "")) is not str):
            return False
        if message["role"] == "user" and "<tool_response>" in message["content"]:
            return False
    return True


def message_tokens(messages: list[dict]) -> int:
    """Estimated tokens of messages: their text and their tool calls."""
    return sum(estimate_tokens(m.get("content") or "")
               + (estimate_tokens(json.dumps(m["tool_calls"])) if m.get("tool_calls") else 0) for m in messages)


@dataclass
class Request:
    """One distinct stored request, worked out for training exports."""

    messages: list[dict]           # the request (lessons stripped when asked)
    stripped: bool                 # rebuilt on the snapshot's base prompt without lessons
    plain: bool
    verbatim: str | None           # the stored text, fit to go out as it is (plain, not rebuilt, no tools)
    prompt: list[dict]             # what came before the first model call, in the fine-tuning shape
    prompt_tokens: int
    key: tuple                     # what two samples must share to be paired: the prompt and tools, as values

    def example(self, output: str) -> tuple[list[dict], list[dict]]:
        """The prompt and the continuation ending in `output`."""
        if self.plain:
            return self.prompt, [{"role": "assistant", "content": output}]
        return prompt_and_continuation(self.messages, output)


def _key(prompt: list[dict], tools: list[dict] | None) -> tuple:
    return (json.dumps(tools, sort_keys=True) if tools else None,
            *((m.get("role"), m.get("content"), m.get("name")) if m.keys() <= _PLAIN_KEYS
              else json.dumps(m, sort_keys=True) for m in prompt))


class Requests:
    """The requests of rows (read with `messages_json` left as text), each distinct one worked out once."""

    LIMIT = 512   # distinct requests kept; a selection streams task by task, so few are live at once

    def __init__(self, strip_lessons: bool):
        self.strip_lessons = strip_lessons
        self._seen: dict[tuple, Request] = {}

    def of(self, row: dict) -> Request:
        """The row's request."""
        snapshot = (row["system_prompt"], row["base_prompt"], row["lesson_count"]) if self.strip_lessons else ()
        cache_key = (row["messages_json"], row["tools_json"], *snapshot)
        request = self._seen.get(cache_key)
        if request is None:
            if len(self._seen) >= self.LIMIT:
                self._seen.clear()
            request = self._seen[cache_key] = self._work_out(row)
        return request

    def _work_out(self, row: dict) -> Request:
        stored = json.loads(row["messages_json"])
        messages = without_lessons(stored, row) if self.strip_lessons else stored
        plain = is_plain(messages)
        verbatim = (stored_json(row["messages_json"], "[")
                    if plain and messages is stored and not row["tools"] else None)
        prompt = messages if plain else prompt_and_continuation(messages, "")[0]
        return Request(messages, messages is not stored, plain, verbatim, prompt,
                       message_tokens(messages) if plain else 0, _key(prompt, row["tools"]))

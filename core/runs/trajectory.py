"""Trajectories: a multi-step rollout read as numbered steps (model reply → tool calls → their results).

One shape for every source. A rollout stores its messages in OpenAI chat form (`rollout_texts.messages_json`:
every message before the final reply, the assistant messages carrying `tool_calls` and the `tool` messages
answering them) and the final reply as `output`; a run, an import and the proxy all write that. The optional
`steps_json` column adds per-step figures that messages cannot carry (`StepFigures`). `read_trajectory`
turns the two into `Step`s that `show`, Compare, reflection and export all read.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# A tool result longer than this (in UTF-8 bytes) is cut when stored; the cut is recorded in its step.
MAX_TOOL_RESULT_BYTES = 64 * 1024


@dataclass
class ToolCall:
    """One call the model asked for: its id, the tool's name, and the arguments as the model wrote them (JSON text)."""

    id: str | None
    name: str
    arguments: str

    def parsed_arguments(self) -> Any:
        """The arguments as JSON, or None when the model wrote something that does not parse."""
        try:
            return json.loads(self.arguments) if self.arguments else {}
        except (TypeError, ValueError):
            return None


@dataclass
class ToolResult:
    """What one tool call returned, as the model saw it; `cut_bytes` > 0 when the stored text was cut."""

    tool_call_id: str | None
    name: str | None
    content: str
    cut_bytes: int = 0


@dataclass
class StepFigures:
    """Per-step figures stored in `steps_json` (one per model call, in order)."""

    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    cut: dict[str, int] = field(default_factory=dict)   # tool_call_id -> original size in bytes
    # Only on the final step of a rollout stopped at its turn limit: the calls its last reply asked for,
    # never run (no model call was left to read their results). OpenAI `tool_calls` dicts.
    unanswered_calls: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The figures as stored in `steps_json` (asdict without its deep copy, which a busy run pays per rollout)."""
        return {"latency_ms": self.latency_ms, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "finish_reason": self.finish_reason,
                "cut": dict(self.cut), "unanswered_calls": list(self.unanswered_calls)}

    @classmethod
    def from_dict(cls, data: dict) -> "StepFigures":
        """Figures from a stored entry, ignoring keys this version does not know."""
        known = {k: data[k] for k in ("latency_ms", "prompt_tokens", "completion_tokens", "finish_reason", "cut",
                           "unanswered_calls")
                 if k in data}
        return cls(**known)


@dataclass
class Step:
    """One model call (1-based `index`): what it said, the tool calls it made and their results."""

    index: int
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    figures: StepFigures = field(default_factory=StepFigures)
    final: bool = False                 # the reply that ended the rollout (it is the rollout's output)

    def to_dict(self) -> dict:
        """The step as plain JSON-ready data (for `show --json` and exports)."""
        return asdict(self)


def message_text(content: Any) -> str:
    """A message's content as text; parts that are not text become a placeholder naming type and size."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(filter(None, (part_text(part) for part in content)))
    return json.dumps(content, ensure_ascii=False)


def part_text(part: Any) -> str:
    """One content part as text: its text, or a placeholder naming its type and size ("" for a non-part)."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = part.get("type")
    if kind == "text" or (kind is None and "text" in part):
        return str(part.get("text") or "")
    size = len(json.dumps(part, ensure_ascii=False).encode())
    return f"[{kind or 'part'}, {size:,} bytes]"


def _tool_calls(message: dict) -> list[ToolCall]:
    calls = []
    for call in message.get("tool_calls") or []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append(ToolCall(id=call.get("id"), name=str(function.get("name") or ""), arguments=arguments))
    return calls


def prompt_length(messages: list[dict]) -> int:
    """How many messages come before the first model call (the first assistant message): the prompt."""
    return next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))


def read_trajectory(messages: list[dict], output: str | None,
                    steps_json: str | list | None = None) -> tuple[list[dict], list[Step]]:
    """Split stored messages into the prompt (everything before the first assistant message) and the steps.

    Every assistant message opens a step; the `tool` messages after it are its results (a user message
    there, as the Hermes protocol sends results, counts as a result too). The final reply (`output`,
    never part of the messages) is the last step; None means the rollout got no final reply.
    """
    figures = _figures(steps_json)
    first = prompt_length(messages)
    prompt, steps = list(messages[:first]), []
    for message in messages[first:]:
        role = message.get("role")
        if role == "assistant":
            steps.append(Step(index=len(steps) + 1, content=message_text(message.get("content")),
                              tool_calls=_tool_calls(message)))
        elif role == "tool" and steps:
            steps[-1].results.append(ToolResult(tool_call_id=message.get("tool_call_id"), name=message.get("name"),
                                                content=message_text(message.get("content"))))
        elif steps:
            # A user message inside a trajectory (the Hermes protocol returns results this way) ends no step.
            steps[-1].results.append(ToolResult(tool_call_id=None, name=role, content=message_text(message.get("content"))))
    if output is not None:
        steps.append(Step(index=len(steps) + 1, content=output, final=True))
    for step, fig in zip(steps, figures):
        step.figures = fig
        for result in step.results:
            result.cut_bytes = fig.cut.get(result.tool_call_id or "", 0)
    if steps and steps[-1].final and steps[-1].figures.unanswered_calls:
        steps[-1].tool_calls = _tool_calls({"tool_calls": steps[-1].figures.unanswered_calls})
    return prompt, steps


def _figures(steps_json: str | list | None) -> list[StepFigures]:
    if not steps_json:
        return []
    data = json.loads(steps_json) if isinstance(steps_json, str) else steps_json
    return [StepFigures.from_dict(item) for item in data if isinstance(item, dict)]


def cut_tool_result(text: str, limit: int = MAX_TOOL_RESULT_BYTES) -> tuple[str, int]:
    """A tool result cut to `limit` UTF-8 bytes (with a note saying so) and its original size (0: not cut)."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text, 0
    head = raw[:limit].decode("utf-8", "ignore")
    return f"{head}\n[… cut: {len(raw):,} bytes, first {limit:,} kept]", len(raw)


def figures_json(figures: list[StepFigures]) -> str | None:
    """`steps_json` for a rollout (None for a one-call rollout with nothing to add)."""
    if len(figures) <= 1 and not any(f.cut for f in figures):
        return None
    return json.dumps([f.to_dict() for f in figures])


def is_multi_step(messages: list[dict]) -> bool:
    """Whether stored messages hold a trajectory (tool calls, tool results, or Hermes `<tool_response>`s).

    A prompt with few-shot assistant turns and no tool traffic is a single-call rollout.
    """
    for message in messages:
        role = message.get("role")
        if message.get("tool_calls") or role == "tool":
            return True
        if role == "user" and "<tool_response>" in message_text(message.get("content")):
            return True
    return False

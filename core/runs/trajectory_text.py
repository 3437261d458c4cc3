"""Trajectories as people read them: a call as `spell(word="strawberry")`, sizes, cut results, where two part.

`show` in the terminal and the Compare page both read steps through these, so a call and a result look
the same wherever they appear.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lessonlab.core.runs.trajectory import Step, StepFigures, ToolCall, part_text

# What the terminal shows of one tool result unless asked for all of it.
TERMINAL_RESULT_CHARS = 600
TERMINAL_RESULT_LINES = 12


@dataclass(frozen=True)
class ContentPart:
    """One part of a message's content: text, or a placeholder for an image, file, audio… (its kind)."""

    kind: str          # "text" or the part's own type ("image_url", "file", "input_audio", …)
    text: str          # the text, or the placeholder that stands for the part

    @property
    def is_text(self) -> bool:
        """Whether this part is text the model wrote or read (not a placeholder)."""
        return self.kind == "text"


def content_parts(content: Any) -> list[ContentPart]:
    """A message's content split into text parts and named placeholders (never a Python repr)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [ContentPart("text", content)] if content else []
    if not isinstance(content, list):
        return [ContentPart("text", json.dumps(content, ensure_ascii=False))]
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(ContentPart("text", part))
        elif isinstance(part, dict):   # text, or the placeholder every reader of steps uses (trajectory.part_text)
            kind = part.get("type")
            is_text = kind == "text" or (kind is None and "text" in part)
            parts.append(ContentPart("text" if is_text else str(kind or "part"), part_text(part)))
    return [p for p in parts if p.text]


def size_text(n_bytes: int) -> str:
    """A size as people say it: '812 bytes', '12.4 KB', '1.0 MB'."""
    if n_bytes < 1000:
        return f"{n_bytes} byte{'s' if n_bytes != 1 else ''}"
    if n_bytes < 1_000_000:
        return f"{n_bytes / 1000:.1f} KB"
    return f"{n_bytes / 1_000_000:.1f} MB"


def text_size(text: str) -> int:
    """UTF-8 bytes of a text (what a tool result's size means everywhere)."""
    return len(text.encode("utf-8", "surrogatepass"))


def call_signature(call: ToolCall) -> str:
    """A call on one line as the model made it: `spell(word="strawberry")`; raw text when the JSON is bad."""
    arguments = call.parsed_arguments()
    if isinstance(arguments, dict):
        inner = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in arguments.items())
    elif arguments is None:
        inner = f"{call.arguments}  [arguments are not valid JSON]"
    else:
        inner = json.dumps(arguments, ensure_ascii=False)
    return f"{call.name or '?'}({inner})"


def pretty_arguments(call: ToolCall, width: int = 44) -> str:
    """The arguments indented as JSON for reading (the model's own text when it does not parse)."""
    arguments = call.parsed_arguments()
    if arguments is None:
        return call.arguments
    return pretty_json(arguments, width)


def pretty_json(value: Any, width: int = 56, indent: str = "") -> str:
    """JSON indented by two spaces, but a list or object that fits in `width` characters stays on one line."""
    compact = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or not value or (indent and len(indent) + len(compact) <= width):
        return compact
    inner = indent + "  "
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {pretty_json(v, width, inner).lstrip()}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if all(not isinstance(v, (dict, list)) for v in value):   # scalars: as many to a line as fit
        lines, line = [], ""
        for text in (json.dumps(v, ensure_ascii=False) for v in value):
            if line and len(inner) + len(line) + len(text) + 2 > width:
                lines.append(line)
                line = ""
            line = f"{line} {text}," if line else f"{text},"
        lines.append(line.rstrip(","))
        return "[\n" + "\n".join(inner + row for row in lines) + f"\n{indent}]"
    items = [f"{inner}{pretty_json(v, width, inner).lstrip()}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{indent}]"


def figures_text(figures: StepFigures) -> str:
    """'1,234 ms · 40+12 tokens' for a step, empty when nothing is known."""
    parts = []
    if figures.latency_ms is not None:
        parts.append(f"{figures.latency_ms:,.0f} ms")
    if figures.prompt_tokens is not None or figures.completion_tokens is not None:
        prompt = "?" if figures.prompt_tokens is None else figures.prompt_tokens
        completion = "?" if figures.completion_tokens is None else figures.completion_tokens
        parts.append(f"{prompt}+{completion} tokens")
    return " · ".join(parts)


def cut_for_terminal(text: str, *, chars: int = TERMINAL_RESULT_CHARS, lines: int = TERMINAL_RESULT_LINES) -> str:
    """A result short enough for a terminal, with a note of its whole size when cut."""
    kept = text[:chars]
    kept_lines = kept.split("\n")
    if len(kept_lines) > lines:
        kept = "\n".join(kept_lines[:lines])
    if len(kept) == len(text):
        return text
    return f"{kept.rstrip()}\n[… {size_text(text_size(text))} in all; --full shows everything]"


def step_signature(step: Step) -> list[tuple[str, str]]:
    """What a step did, for comparing trajectories: each call's tool and its arguments (canonical JSON)."""
    signature = []
    for call in step.tool_calls:
        arguments = call.parsed_arguments()
        canonical = call.arguments if arguments is None else json.dumps(arguments, sort_keys=True)
        signature.append((call.name, canonical))
    return signature


def first_parting_step(a: list[Step], b: list[Step]) -> int | None:
    """The 1-based step where two trajectories part (another tool, other arguments, or one has ended), or None."""
    return first_parting_of_signatures([step_signature(s) for s in a], [step_signature(s) for s in b])


def first_parting_of_signatures(a: list[list[tuple[str, str]]], b: list[list[tuple[str, str]]]) -> int | None:
    """`first_parting_step` over steps' signatures (computed once, e.g. off the GUI thread)."""
    for index in range(max(len(a), len(b))):
        if index >= len(a) or index >= len(b):
            # One ended; that is a parting only when the other still acts (calls a tool) from here on.
            longer = a if index < len(a) else b
            return index + 1 if any(longer[index:]) else None
        if a[index] != b[index]:
            return index + 1
    return None


def is_trajectory(steps: list[Step]) -> bool:
    """Whether a rollout has more to show than one reply: a tool call, a tool result or several steps."""
    return len(steps) > 1 or any(step.tool_calls or step.results for step in steps)

"""The names a suite line's `"tools"` holds: `set`, `set.tool`, `python:module:factory[.tool]`.

`check_tool_refs` validates a task's list when its suite loads (unknown set or tool, two tools of one name,
metadata a stateful set cannot start from); `resolve_tools` turns the list into the tools themselves.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lessonlab.core.tools.registry import Tool, ToolSet, ToolSpecError, builtin_set, set_names

PYTHON_PREFIX = "python:"
DEFAULT_MAX_TURNS = 10
MAX_TURNS_LIMIT = 200
_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
_BUILTIN_RE = re.compile(rf"^({_NAME})(?:\.({_NAME}))?$")
_PYTHON_RE = re.compile(rf"^python:([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*)(?:\.({_NAME}))?$")


@dataclass(frozen=True)
class ToolRef:
    """One entry of a task's `"tools"`: the set it names and, optionally, one tool of it."""

    set_ref: str            # "letters" or "python:module:factory"
    tool: str | None        # None: every tool of the set

    @property
    def is_python(self) -> bool:
        """Whether the set is the user's own code (`python:module:factory`)."""
        return self.set_ref.startswith(PYTHON_PREFIX)


def parse_ref(text: Any) -> ToolRef:
    """The ToolRef a `"tools"` entry names; ToolSpecError when it is not a tool name at all."""
    if not isinstance(text, str) or not text.strip():
        raise ToolSpecError(f"a tool must be named by a non-empty string, got {json.dumps(text, ensure_ascii=False)}")
    if text.startswith(PYTHON_PREFIX):
        found = _PYTHON_RE.match(text)
        if not found:
            raise ToolSpecError(f'python tool set {json.dumps(text, ensure_ascii=False)} must look like '
                                '"python:module:factory" or "python:module:factory.tool"')
        return ToolRef(PYTHON_PREFIX + found.group(1), found.group(2))
    found = _BUILTIN_RE.match(text)
    if not found:
        raise ToolSpecError(f'tool {json.dumps(text, ensure_ascii=False)} must look like "set" or "set.tool"')
    return ToolRef(found.group(1), found.group(2))


def builtin_tools(ref: ToolRef) -> tuple[ToolSet, list[Tool]]:
    """The built-in set a ref names and the tools it selects; ToolSpecError for an unknown set or tool."""
    tool_set = builtin_set(ref.set_ref)
    if tool_set is None:
        raise ToolSpecError(f"unknown tool set {ref.set_ref!r} (built-in: {', '.join(set_names())}; "
                            "or your own as python:module:factory)")
    return tool_set, selected_tools(tool_set, ref, tool_set.name)


def selected_tools(tool_set: ToolSet, ref: ToolRef, label: str) -> list[Tool]:
    """The tools a ref selects from its set (all of them for a set name alone); ToolSpecError for an unknown one."""
    if ref.tool is None:
        return list(tool_set.tools)
    chosen = tool_set.tool(ref.tool)
    if chosen is None:
        raise ToolSpecError(f"tool set {label!r} has no tool {ref.tool!r} "
                            f"(its tools: {', '.join(tool_set.tool_names())})")
    return [chosen]


def check_unique(selected: list[tuple[str, Tool]]) -> None:
    """ToolSpecError when two selected tools share the name the model would see."""
    seen: dict[str, str] = {}
    for set_ref, chosen in selected:
        if chosen.name in seen:
            first = seen[chosen.name]
            where = f"both {first} and {set_ref}" if first != set_ref else f"{set_ref}, twice"
            raise ToolSpecError(f"two tools are named {chosen.name!r} ({where}); the model could not tell them apart")
        seen[chosen.name] = set_ref


def check_tool_refs(value: Any, metadata: dict) -> tuple[str, ...]:
    """A task's validated `"tools"` list as a tuple; ToolSpecError naming the first problem.

    Python sets are checked for form only: importing user code needs the caller's trust, so their tools
    are looked at when a rollout starts (`toolbox_for`).
    """
    if not isinstance(value, list) or not value:
        raise ToolSpecError('"tools" must be a non-empty list of tool names such as ["letters.spell", "calc"]')
    refs = [parse_ref(item) for item in value]
    selected: list[tuple[str, Tool]] = []
    checked: set[str] = set()
    for ref in refs:
        if ref.is_python:
            continue
        tool_set, tools = builtin_tools(ref)
        selected.extend((tool_set.name, t) for t in tools)
        if tool_set.name not in checked:
            checked.add(tool_set.name)
            tool_set.check_metadata(metadata)
    check_unique(selected)
    return tuple(value)


def check_max_turns(value: Any) -> int:
    """A validated `"max_turns"`: an integer from 1 to MAX_TURNS_LIMIT."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TURNS_LIMIT:
        raise ToolSpecError(f'"max_turns" must be an integer from 1 to {MAX_TURNS_LIMIT}, '
                            f"got {json.dumps(value, ensure_ascii=False)}")
    return value

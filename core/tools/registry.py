"""Tool sets by name: what a tool is, what a set is, and the registry a suite's `"tools"` names are looked up in.

A built-in set is one module that builds a `ToolSet` and registers it on import (the package imports them
all). A user's own set is named `python:module:factory` and is loaded by `python_tools`, never registered.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from lessonlab.core.errors import BadInput


class ToolSpecError(BadInput, ValueError):
    """A tool reference or a tool set's task data that is malformed."""


class ToolError(Exception):
    """Raised by a tool for a mistake the model made (bad argument, empty cart): shown as "error: <message>"."""


@dataclass(frozen=True)
class Tool:
    """One function the model may call: its name, the docstring it reads, its argument schema and its code.

    A stateless tool is called as `function(**arguments)`; a stateful one as `function(state, **arguments)`
    and returns `(result, new_state)`, never changing `state` in place, so state can cross a process boundary.
    """

    name: str
    description: str
    parameters: dict
    function: Callable[..., Any]
    stateful: bool = False

    def schema(self) -> dict:
        """The tool as one entry of the OpenAI `tools` list."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass(frozen=True)
class ToolSet:
    """A named group of tools; a stateful set also says how its state starts from the task's metadata."""

    name: str
    tools: tuple[Tool, ...]
    # metadata -> the set's first state (JSON-ready); None for a set without state.
    initial_state: Callable[[dict], Any] | None = None
    # Raises ToolSpecError when the task's metadata cannot start the set (checked when a suite loads).
    check_metadata: Callable[[dict], None] = field(default=lambda metadata: None)
    # Whether a call may run without end (user code): such calls run in a killable worker with a time limit.
    may_hang: bool = False
    # How a worker process finds the set: "python:module:factory" for a user's set; None for a built-in one.
    source: str | None = None

    @property
    def ref(self) -> str:
        """The name a worker loads the set by."""
        return self.source or self.name

    def tool(self, name: str) -> Tool | None:
        """The set's tool of that name, or None."""
        return next((t for t in self.tools if t.name == name), None)

    def tool_names(self) -> list[str]:
        """The names of the set's tools, in order."""
        return [t.name for t in self.tools]


def parameters(properties: dict[str, tuple[str | list[str], str]], required: list[str] | None = None) -> dict:
    """A JSON schema for keyword arguments, from `{name: (json type, description)}`; all required by default."""
    return {
        "type": "object",
        "properties": {name: {"type": kind, "description": text} for name, (kind, text) in properties.items()},
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


def tool(function: Callable[..., Any], properties: dict[str, tuple[str | list[str], str]] | None = None,
         *, stateful: bool = False, name: str | None = None) -> Tool:
    """A Tool from a function whose docstring is what the model reads."""
    description = " ".join((function.__doc__ or "").split())
    return Tool(name=name or function.__name__, description=description, parameters=parameters(properties or {}),
                function=function, stateful=stateful)


SET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SETS: dict[str, ToolSet] = {}


def register(tool_set: ToolSet) -> None:
    """Make a built-in tool set available under its name."""
    if tool_set.name in _SETS:
        raise ValueError(f"tool set {tool_set.name!r} is already registered")
    if tool_set.name == "python" or not SET_NAME_RE.match(tool_set.name):
        raise ValueError(f"tool set name {tool_set.name!r} is reserved or not a plain name (letters, digits, _ and -)")
    _SETS[tool_set.name] = tool_set


def set_names() -> tuple[str, ...]:
    """The registered built-in sets, in registration order."""
    return tuple(_SETS)


def builtin_set(name: str) -> ToolSet | None:
    """The built-in set of that name, or None."""
    return _SETS.get(name)


def describe_builtin_sets() -> list[dict]:
    """Every built-in set with its tools as plain data: name, whether stateful, each tool's schema."""
    return [{"set": tool_set.name, "stateful": tool_set.initial_state is not None,
             "tools": [t.schema()["function"] for t in tool_set.tools]} for tool_set in _SETS.values()]


def signature(function_schema: dict) -> str:
    """A tool as the model would call it: `add(a: number|string, b: number|string)`."""
    params = function_schema.get("parameters", {})
    required = set(params.get("required", []))
    parts = []
    for name, spec in (params.get("properties") or {}).items():
        kinds = spec.get("type") if isinstance(spec, dict) else None
        kinds = "|".join(kinds) if isinstance(kinds, list) else kinds
        parts.append(f"{name}{'' if name in required else '?'}" + (f": {kinds}" if kinds else ""))
    return f"{function_schema['name']}({', '.join(parts)})"

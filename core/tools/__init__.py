"""Tools: the functions a model may call during a task, grouped in named tool sets, and running one call.

This package owns what a tool is (an OpenAI function schema, a docstring the model reads, deterministic
code), the built-in sets (`letters`, `calc`, `shop`) and the registry they join, users' own sets
(`python:module:factory`, trusted like `python` verifiers), checking a suite line's `"tools"`, and the
per-rollout `Toolbox` the agent loop calls. It does not run the model: the agent loop lives in `core/runs`.

A new built-in set is one module that registers a `ToolSet`, plus its import below.
"""
from __future__ import annotations

from lessonlab.core.tools import letters, calc, shop  # noqa: F401 - registers the built-in sets
from lessonlab.core.tools.python_tools import (
    UntrustedToolSet, check_tasks_trusted, describe_python_tool_sets, python_tool_sets,
)
from lessonlab.core.tools.refs import DEFAULT_MAX_TURNS, MAX_TURNS_LIMIT, check_max_turns, check_tool_refs
from lessonlab.core.tools.registry import (
    Tool, ToolError, ToolSet, ToolSpecError, describe_builtin_sets, register, set_names, signature, tool,
)
from lessonlab.core.tools.toolbox import DEFAULT_TOOL_TIMEOUT, ToolOutcome, Toolbox, toolbox_for

__all__ = [
    "DEFAULT_MAX_TURNS",
    "DEFAULT_TOOL_TIMEOUT",
    "MAX_TURNS_LIMIT",
    "Tool",
    "ToolError",
    "ToolOutcome",
    "ToolSet",
    "ToolSpecError",
    "Toolbox",
    "UntrustedToolSet",
    "check_max_turns",
    "check_tasks_trusted",
    "check_tool_refs",
    "describe_builtin_sets",
    "describe_python_tool_sets",
    "python_tool_sets",
    "register",
    "set_names",
    "signature",
    "tool",
    "toolbox_for",
]

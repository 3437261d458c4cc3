"""Running one tool call in this process: the code both the inline path and the worker process use.

`execute` never raises: whatever the tool does (returns anything, raises, calls sys.exit, returns a state
that is not JSON) becomes `(content, error, state)`, with error text the model can read.
"""
from __future__ import annotations

import json
from typing import Any

from lessonlab.core.tools.python_tools import load_python_set
from lessonlab.core.tools.refs import PYTHON_PREFIX
from lessonlab.core.tools.registry import Tool, ToolError, ToolSet, builtin_set

_loaded: dict[str, ToolSet] = {}


def find_set(set_ref: str) -> ToolSet:
    """A built-in set, or a python set imported once per process (the caller has checked trust)."""
    if set_ref.startswith(PYTHON_PREFIX):
        if set_ref not in _loaded:
            _loaded[set_ref] = load_python_set(set_ref)
        return _loaded[set_ref]
    found = builtin_set(set_ref)
    if found is None:
        raise LookupError(f"unknown tool set {set_ref!r}")
    return found


def result_text(result: Any) -> str:
    """What the model reads for a tool's return value: text as it is, anything else as JSON."""
    if isinstance(result, str):
        return result
    if result is None:
        return "(done, nothing returned)"
    try:
        return json.dumps(result, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(result)


def execute(tool_set: ToolSet, tool: Tool, arguments: dict, state: Any) -> tuple[str, bool, Any]:
    """Call the tool: (text for the model, whether it is an error, the set's new state)."""
    try:
        if tool.stateful:
            returned = tool.function(state, **arguments)
            if not (isinstance(returned, tuple) and len(returned) == 2):
                return (f"error: tool {tool.name} is stateful but returned {type(returned).__name__}, "
                        "not (result, new_state)"), True, state
            result, new_state = returned
            if tool_set.may_hang:
                # User code: its state must cross the process boundary (built-in sets keep theirs JSON-ready).
                new_state = json.loads(json.dumps(new_state))
        else:
            result, new_state = tool.function(**arguments), state
        return result_text(result), False, new_state
    except ToolError as exc:
        return f"error: {exc}", True, state
    except SystemExit as exc:
        return f"error: the tool called sys.exit({exc.code})", True, state
    except Exception as exc:  # noqa: BLE001 - a tool's failure is a result the model reads, never a crash
        return f"error: {type(exc).__name__}: {exc}", True, state


def execute_request(request: dict) -> dict:
    """A worker's answer to one tool request: {"content", "error", "state"}."""
    try:
        tool_set = find_set(request["set"])
    except Exception as exc:  # noqa: BLE001 - loading user code can fail in any way
        return {"content": f"error: cannot load tool set {request['set']!r}: {type(exc).__name__}: {exc}",
                "error": True, "state": request.get("state")}
    chosen = tool_set.tool(request["tool"])
    if chosen is None:
        return {"content": f"error: tool set {request['set']!r} has no tool {request['tool']!r}", "error": True,
                "state": request.get("state")}
    content, error, state = execute(tool_set, chosen, request["arguments"], request.get("state"))
    return {"content": content, "error": error, "state": state}

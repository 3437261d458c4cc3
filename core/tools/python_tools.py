"""A user's own tool set, `python:module:factory`: trusted like `python` verifiers, loaded only with trust.

`factory()` returns a `ToolSet`, or a list of `Tool`s and plain functions. A plain function is a stateless
tool: its name is the tool's name, its docstring what the model reads, and its annotated parameters
(str, int, float, bool, list, dict) its argument schema.
"""
from __future__ import annotations

import inspect
import typing
from typing import Callable, Iterable

from lessonlab.core.errors import BadInput
from lessonlab.core.tools.refs import PYTHON_PREFIX, parse_ref
from lessonlab.core.tools.registry import SET_NAME_RE, Tool, ToolSet, ToolSpecError
from lessonlab.core.verifiers.python_function import code_file, load_function

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


class UntrustedToolSet(BadInput):
    """A task names a python tool set but the caller did not trust user code."""


def require_trust(set_ref: str, trust: bool) -> None:
    """UntrustedToolSet unless the caller trusts user code."""
    if not trust:
        raise UntrustedToolSet(f"tool set {set_ref!r} runs your own Python code: rerun with --trust-verifiers "
                               "to allow it")


def load_python_set(set_ref: str) -> ToolSet:
    """Import `python:module:factory` and build its ToolSet (the caller has checked trust)."""
    factory = load_function(set_ref[len(PYTHON_PREFIX):])
    try:
        made = factory()
    except SystemExit as exc:
        raise ToolSpecError(f"tool set {set_ref!r}: the factory called sys.exit({exc.code})") from None
    if isinstance(made, ToolSet):
        # Its own name keys its state (a path the state verifier reads, so a plain name); `source` finds it again.
        if not SET_NAME_RE.match(made.name):
            raise ToolSpecError(f"tool set {set_ref!r}: its ToolSet name {made.name!r} must be a plain name "
                                "(letters, digits, _ and -)")
        return ToolSet(name=made.name, tools=made.tools, initial_state=made.initial_state,
                       check_metadata=made.check_metadata, may_hang=True, source=set_ref)
    if not isinstance(made, (list, tuple)) or not made:
        raise ToolSpecError(f"tool set {set_ref!r}: the factory must return a ToolSet or a non-empty list of "
                            f"tools or functions, got {type(made).__name__}")
    tools = tuple(item if isinstance(item, Tool) else function_tool(item, set_ref) for item in made)
    return ToolSet(name=set_ref, tools=tools, may_hang=True, source=set_ref)


def function_tool(function: Callable, set_ref: str = "") -> Tool:
    """A stateless Tool from a plain function: name, docstring, and a schema from its signature."""
    if not callable(function):
        raise ToolSpecError(f"tool set {set_ref!r}: {function!r} is neither a Tool nor a function")
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - unresolvable annotations only lose their types
        hints = {}
    properties, required = {}, []
    for name, param in inspect.signature(function).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        kind = _JSON_TYPES.get(hints.get(name))
        properties[name] = {"type": kind} if kind else {}
        if param.default is param.empty:
            required.append(name)
    description = " ".join((function.__doc__ or "").split()) or f"the tool {function.__name__}"
    return Tool(name=function.__name__, description=description,
                parameters={"type": "object", "properties": properties, "required": required,
                            "additionalProperties": False},
                function=function)


def python_tool_sets(tasks: Iterable) -> list[str]:
    """The distinct python tool sets the tasks name, in order of first use."""
    found: list[str] = []
    for task in tasks:
        names = task.tools if hasattr(task, "tools") else (task.get("tools") or ())
        for name in names or ():
            try:
                ref = parse_ref(name)
            except ToolSpecError:
                continue
            if ref.is_python and ref.set_ref not in found:
                found.append(ref.set_ref)
    return found


def describe_python_tool_sets(tasks: Iterable) -> list[tuple[str, str | None]]:
    """Each python tool set of the tasks with the file its factory would be imported from (None: not found)."""
    return [(ref, code_file(ref[len(PYTHON_PREFIX):])) for ref in python_tool_sets(tasks)]


def check_tasks_trusted(tasks: Iterable, trust: bool, source: str | None = None) -> None:
    """UntrustedToolSet naming the suite file, the task and its python tool set, unless trusted."""
    if trust:
        return
    for task in tasks:
        found = python_tool_sets([task])
        if found:
            task_id = task.id if hasattr(task, "id") else task.get("id")
            where = f"{source}: " if source else ""
            raise UntrustedToolSet(f"{where}task {task_id!r} uses the tool set {found[0]!r}, which runs your own "
                                   "Python code: rerun with --trust-verifiers to allow it")

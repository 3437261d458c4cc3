"""The per-rollout API the agent loop calls: `toolbox_for(task)` and `Toolbox.call(...)`.

A Toolbox holds the tools a task selected (their OpenAI schemas), the state its stateful sets start from,
and runs one call at a time. `call` never raises: an unknown tool, arguments that are not a JSON object,
missing or extra arguments, an exception or a timeout each become an "error: …" result the model reads.
Built-in sets run in place (they are bounded and deterministic); a python set runs in the killable worker
pool with a time limit.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lessonlab.core.tools.arguments import ArgumentCheck, argument_check
from lessonlab.core.tools.python_tools import require_trust
from lessonlab.core.tools.refs import DEFAULT_MAX_TURNS, ToolRef, builtin_tools, check_unique, parse_ref, selected_tools
from lessonlab.core.tools.registry import Tool, ToolSet, ToolSpecError
from lessonlab.core.tools.running import execute, find_set

DEFAULT_TOOL_TIMEOUT = 5.0


@dataclass(frozen=True)
class ToolOutcome:
    """One call's result: the text the model reads, whether it is an error, and the state after it."""

    content: str
    error: bool
    state: Any


@dataclass(frozen=True)
class _Selected:
    tool_set: ToolSet
    tool: Tool
    check: ArgumentCheck


class Toolbox:
    """The tools of one task, ready to be offered to a model and called."""

    def __init__(self, selected: list[tuple[ToolSet, Tool]], metadata: dict, *,
                 max_turns: int = DEFAULT_MAX_TURNS, timeout: float = DEFAULT_TOOL_TIMEOUT):
        self._by_name = {t.name: _Selected(s, t, argument_check(t)) for s, t in selected}
        self.schemas: list[dict] = [t.schema() for _, t in selected]
        self.max_turns = max_turns
        self.timeout = timeout
        states = {}
        for tool_set, _ in selected:
            if tool_set.initial_state is not None and tool_set.name not in states:
                states[tool_set.name] = _first_state(tool_set, metadata)
        self.initial_state: dict | None = states or None

    @property
    def names(self) -> list[str]:
        """The names the model sees, in order."""
        return list(self._by_name)

    async def call(self, pool, name: str, arguments: str, state: dict | None) -> ToolOutcome:
        """Run one tool call; never raises (every failure is an error result with the state unchanged)."""
        chosen = self._by_name.get(name) if isinstance(name, str) else None
        if chosen is None:
            known = ", ".join(self._by_name) or "none"
            return ToolOutcome(f"error: there is no tool named {name!r} (tools: {known})", True, state)
        parsed = chosen.check.parse(arguments)
        if isinstance(parsed, str):
            return ToolOutcome(parsed, True, state)
        set_name = chosen.tool_set.name
        set_state = (state or {}).get(set_name) if chosen.tool.stateful else None
        try:
            if chosen.tool_set.may_hang:
                if pool is None:
                    return ToolOutcome(f"error: tool {name} needs a worker pool to run in", True, state)
                reply = await pool.run_tool(chosen.tool_set.ref, chosen.tool.name, parsed, set_state,
                                            timeout=self.timeout)
                content, error, new_set_state = reply["content"], reply["error"], reply["state"]
            else:
                content, error, new_set_state = execute(chosen.tool_set, chosen.tool, parsed, set_state)
        except Exception as exc:  # noqa: BLE001 - the contract is that a call never raises
            return ToolOutcome(f"error: {type(exc).__name__}: {exc}", True, state)
        if error or not chosen.tool.stateful:
            return ToolOutcome(content, error, state)
        return ToolOutcome(content, False, {**(state or {}), set_name: new_set_state})


def _first_state(tool_set: ToolSet, metadata: dict) -> Any:
    """A set's initial state; a user's set gets its own copy of the metadata, and its failure is bad input."""
    if not tool_set.may_hang:
        return tool_set.initial_state(metadata)  # built-in sets never change what they are given
    try:
        return json.loads(json.dumps(tool_set.initial_state(json.loads(json.dumps(metadata)))))
    except Exception as exc:  # noqa: BLE001 - user code can fail in any way
        raise ToolSpecError(f"tool set {tool_set.ref!r}: its initial state failed: "
                            f"{type(exc).__name__}: {exc}") from None


def _task_fields(task: Any) -> tuple[list, dict, int | None]:
    """(tools, metadata, max_turns) of a Task or of a task dict as the runner builds it."""
    if isinstance(task, dict):
        return list(task.get("tools") or []), dict(task.get("metadata") or {}), task.get("max_turns")
    tools, metadata = getattr(task, "tools", ()) or (), getattr(task, "metadata", {}) or {}
    return list(tools), dict(metadata), getattr(task, "max_turns", None)


def check_state_names(selected: list[tuple[ToolSet, Tool]]) -> None:
    """ToolSpecError when two different stateful sets would keep their state under one name."""
    refs: dict[str, str] = {}
    for tool_set, _ in selected:
        if tool_set.initial_state is None:
            continue
        first = refs.setdefault(tool_set.name, tool_set.ref)
        if first != tool_set.ref:
            raise ToolSpecError(f"tool sets {first!r} and {tool_set.ref!r} both keep their state as "
                                f"{tool_set.name!r}; rename one")


def _python_tools(ref: ToolRef, trust: bool) -> tuple[ToolSet, list[Tool]]:
    """A python set (imported once, only with trust) and the tools a ref selects from it."""
    require_trust(ref.set_ref, trust)
    try:
        tool_set = find_set(ref.set_ref)
    except ToolSpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - importing user code can fail in any way
        raise ToolSpecError(f"cannot load tool set {ref.set_ref!r}: {type(exc).__name__}: {exc}") from None
    return tool_set, selected_tools(tool_set, ref, ref.set_ref)


def toolbox_for(task: Any, trust: bool = False, *, timeout: float = DEFAULT_TOOL_TIMEOUT) -> Toolbox:
    """The Toolbox for a task (a Task or a task dict); BadInput for a python set without trust or a bad set."""
    names, metadata, max_turns = _task_fields(task)
    selected: list[tuple[ToolSet, Tool]] = []
    for name in names:
        ref = parse_ref(name)
        tool_set, chosen = _python_tools(ref, trust) if ref.is_python else builtin_tools(ref)
        selected.extend((tool_set, t) for t in chosen)
    check_unique([(s.ref, t) for s, t in selected])
    check_state_names(selected)
    return Toolbox(selected, metadata, max_turns=max_turns or DEFAULT_MAX_TURNS, timeout=timeout)

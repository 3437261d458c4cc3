"""Checking a tool call's arguments against the tool's schema, with messages the model can act on.

Most tool schemas only name each argument's JSON type; those are checked here directly (microseconds,
which matters at thousands of calls per run). A schema using anything more (enum, pattern, nested
objects) is checked by jsonschema as well.
"""
from __future__ import annotations

import json
from typing import Any, Callable


from lessonlab.core.tools.registry import Tool

_SIMPLE_KEYS = {"type", "description"}
_IS_TYPE: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


class ArgumentCheck:
    """The checks for one tool's arguments, built once."""

    def __init__(self, tool: Tool):
        self.tool = tool
        params = tool.parameters
        self.properties: dict = params.get("properties", {}) or {}
        self.required: list = list(params.get("required", []) or [])
        self.closed = params.get("additionalProperties") is False
        simple = set(params) <= {"type", "properties", "required", "additionalProperties", "description"} and all(
            isinstance(p, dict) and set(p) <= _SIMPLE_KEYS and _known_types(p.get("type"))
            for p in self.properties.values())
        self.validator = None if simple else _draft_2020_12()(params)

    def parse(self, arguments: Any) -> dict | str:
        """The arguments as a checked dict, or the error text for the model."""
        name = self.tool.name
        if isinstance(arguments, dict):
            parsed = arguments
        elif arguments is None or (isinstance(arguments, str) and not arguments.strip()):
            parsed = {}
        else:
            try:
                parsed = json.loads(arguments)
            except (TypeError, ValueError) as exc:
                return f"error: the arguments of {name} are not valid JSON ({exc}); send a JSON object"
        if not isinstance(parsed, dict):
            return f"error: the arguments of {name} must be a JSON object, got {json.dumps(parsed)[:80]}"
        missing = [key for key in self.required if key not in parsed]
        if missing:
            return f"error: {name} needs the argument(s) {', '.join(missing)}"
        extra = [key for key in parsed if key not in self.properties]
        if extra and self.closed:
            return (f"error: {name} has no argument(s) {', '.join(extra)} "
                    f"(its arguments: {', '.join(self.properties) or 'none'})")
        if self.validator is not None:
            problem = next(iter(self.validator.iter_errors(parsed)), None)
            if problem is not None:
                where = ".".join(str(p) for p in problem.absolute_path) or "arguments"
                return f"error: {name}: {where}: {problem.message}"
            return parsed
        return self._check_types(parsed)

    def _check_types(self, parsed: dict) -> dict | str:
        checked = dict(parsed)
        for key, value in parsed.items():
            kinds = self.properties.get(key, {}).get("type")
            if kinds is None:
                continue
            kinds = [kinds] if isinstance(kinds, str) else kinds
            if "integer" in kinds and isinstance(value, float) and value.is_integer():
                checked[key] = value = int(value)  # JSON Schema counts 2.0 as an integer; the tool gets 2
            if not any(_IS_TYPE[kind](value) for kind in kinds):
                wanted = " or ".join(kinds)
                return f"error: {self.tool.name}: {key}: {json.dumps(value)[:40]} is not of type {wanted}"
        return checked


def _known_types(kinds: Any) -> bool:
    if kinds is None:
        return True
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return isinstance(kinds, list) and all(isinstance(k, str) and k in _IS_TYPE for k in kinds)


_CHECKS: dict[int, ArgumentCheck] = {}


def argument_check(tool: Tool) -> ArgumentCheck:
    """The (cached) ArgumentCheck of a tool."""
    check = _CHECKS.get(id(tool))
    if check is None or check.tool is not tool:  # an id can be reused once a tool is gone
        check = _CHECKS[id(tool)] = ArgumentCheck(tool)
    return check


def _draft_2020_12():
    """jsonschema's validator class, imported when a tool's schema needs more than the fast checks."""
    from jsonschema import Draft202012Validator   # a fifth of a second to import: only richer schemas pay

    return Draft202012Validator

"""JSON inside a model's reply: the whole reply, a fenced block, or an object somewhere in the text.

Used by the json_schema verifier (a value) and by reflection and distill (an object with known keys).
"""
from __future__ import annotations

import json
import re
from typing import Any

_JSON_FENCE_RE = re.compile(r"```[ \t]*json[^\n]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_ANY_FENCE_RE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
_INLINE_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def describe_error(exc: Exception) -> str:
    """'Expecting value at line 1 column 2', or 'nested too deeply'."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def fenced_blocks(text: str) -> list[str]:
    """The contents of the reply's ``` blocks, ```json ones first."""
    json_blocks = [m.group(1).strip() for m in _JSON_FENCE_RE.finditer(text)]
    blocks = list(json_blocks)
    for regex in (_ANY_FENCE_RE, _INLINE_FENCE_RE):
        blocks += [b for b in (m.group(1).strip() for m in regex.finditer(text)) if b not in blocks]
    return blocks


def parse_value(output: str) -> tuple[Any, str | None]:
    """(value, None) for the reply's JSON (whole reply, else its first fenced block), or (None, reason)."""
    try:
        return json.loads(output.strip()), None
    except (json.JSONDecodeError, RecursionError) as exc:
        whole_error = exc
    blocks = fenced_blocks(output)
    if not blocks:
        return None, f"response is not valid JSON: {describe_error(whole_error)}"
    try:
        return json.loads(blocks[0]), None
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, f"fenced block is not valid JSON: {describe_error(exc)}"


def find_object(text: str, keys: tuple[str, ...], *, strict: bool = True) -> tuple[dict | None, str | None]:
    """The reply's JSON object: the whole reply, a fenced block, or the first {...} in it.

    An object having one of `keys` wins over other objects (a broken reply often contains small
    fragments that parse on their own). strict=False accepts control characters inside strings.
    """
    text = (text or "").strip()
    if not text:
        return None, "the reply is empty"
    found: list[dict] = []
    first_error = None
    for candidate in [text, *fenced_blocks(text)]:
        try:
            value = json.loads(candidate, strict=strict)
        except (ValueError, RecursionError) as exc:
            first_error = first_error or f"not valid JSON: {exc}"
            continue
        if isinstance(value, dict):
            found.append(value)
        else:
            first_error = first_error or f"JSON but not an object ({type(value).__name__})"
    decoder = json.JSONDecoder(strict=strict)
    for match in re.finditer(r"\{", text):
        if any(k in v for v in found for k in keys):
            break
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            found.append(value)
    for value in found:
        if any(k in value for k in keys):
            return value, None
    if found and not first_error:
        return found[0], None
    if first_error and first_error.startswith("JSON but"):
        return None, first_error
    if "{" not in text:
        return None, "no JSON object found in the reply"
    if found:
        return None, f"no JSON object with {' or '.join(map(repr, keys))} in the reply ({first_error})"
    return None, f"no JSON object found in the reply (no complete {{...}} block; {first_error})"

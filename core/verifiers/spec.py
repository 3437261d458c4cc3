"""Checking the fields of a verifier spec, and the error a malformed spec raises."""
from __future__ import annotations

from typing import Any

from lessonlab.core.errors import BadInput


class VerifierSpecError(BadInput, ValueError):
    """A verifier spec that is malformed."""


def type_name(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_number(value: Any) -> bool:
    """True for ints and floats, but not for booleans."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require(spec: dict, field: str, kind: str) -> Any:
    """The value of a required spec field; VerifierSpecError when it is missing."""
    if field not in spec:
        raise VerifierSpecError(f'{kind} verifier needs a "{field}" field')
    return spec[field]


def check_fields(spec: dict, kind: str, allowed: set[str]) -> None:
    """Reject fields the kind does not know."""
    # Unknown fields are rejected so a typo such as "tolerence" cannot silently change scoring.
    unknown = sorted(set(spec) - allowed - {"kind"})
    if unknown:
        names = ", ".join(f'"{name}"' for name in unknown)
        raise VerifierSpecError(f"{kind} verifier has unknown field(s) {names} (allowed: {', '.join(sorted(allowed))})")
